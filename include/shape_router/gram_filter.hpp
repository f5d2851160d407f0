// The substring gram keys some shape is filed under, as a small blocked Bloom
// filter (two bits a key in one word, about 16 bits a key) in front of the
// equality index. A row has a gram key per window of its text, and most are no
// shape's: this filter, a few KB for thousands of grams, answers them from
// cache, where the index's own front filter (a bit a key of every key) would
// cost a cache miss a window. Exact counts of each key's shapes are kept so
// that a key no shape has any more stops passing after the next rebuild.
// In front of that, a sieve of the grams' words (a bit a word, about 32 bits a
// gram, addressed by a multiply and a shift of the window's word): a window
// most grams are not is dropped before its key is even mixed, at a third of
// the instructions.
// Grams of kSampledGramMin bytes or more also put their two grams a byte
// shorter (at offsets 0 and 1) in a second sieve: a text is then read for them
// at every other offset, each window of q - 1 bytes that passes checked as the
// q-byte windows at its offset and the one before (a gram at an even offset
// starts with the first, at an odd one the second starts a byte on). Half the
// windows; the keys made are the same.
#pragma once

#include "shape_router/flat_map.hpp"

#include <algorithm>
#include <cstdint>
#include <new>
#include <vector>

namespace shape_router {

// Gram lengths from this one on are read at every other offset (above).
constexpr size_t kSampledGramMin = 6;

class GramFilter {
 public:
  bool may_have(uint64_t key) const noexcept { return view().may_have(key); }

  // The filter's words as locals, for a loop of probes (its members would be
  // reloaded after every store the loop makes).
  struct View {
    const uint64_t* words;
    size_t mask;
    const uint64_t* sieve;
    const uint64_t* short_sieve;
    unsigned sieve_shift;
    bool may_have(uint64_t key) const noexcept { return words != nullptr && has(key); }
    // Whether some gram's word may be word (of a filter with words): false
    // only when none is.
    bool sieve_has(uint64_t word) const noexcept {
      const uint64_t h = (word * kSieveMultiplier) >> sieve_shift;
      return (sieve[h >> 6] >> (h & 63)) & 1;
    }
    // Whether word may be the first or last q - 1 bytes of some gram of q >=
    // kSampledGramMin bytes: false only when it is neither.
    bool short_sieve_has(uint64_t word) const noexcept {
      const uint64_t h = (word * kShortMultiplier) >> (sieve_shift - 1);
      return (short_sieve[h >> 6] >> (h & 63)) & 1;
    }
    // may_have of a filter with words (a loop checks that once).
    bool has(uint64_t key) const noexcept {
      const uint64_t k = stored(key);
      const uint64_t bits = bits_of(k);
      return (words[(k >> 12) & mask] & bits) == bits;
    }
  };
  View view() const noexcept {
    return View{words_.empty() ? nullptr : words_.data(), mask_, sieve_.data(), short_sieve_.data(), sieve_shift_};
  }

  // One more shape under key, the gram key of window word word (gram_word_of_key),
  // a gram of len bytes. Throws only before changing anything.
  void add(uint64_t key, uint64_t word, size_t len) {
    const uint64_t k = stored(key);
    const uint32_t hash = static_cast<uint32_t>((word * kSieveMultiplier) >> 32);
    const bool sampled = len >= kSampledGramMin && len <= 8;
    const uint64_t short_mask = sampled ? (uint64_t{1} << (8 * (len - 1))) - 1 : 0;
    const uint32_t short_hashes[2] = {static_cast<uint32_t>(((word & short_mask) * kShortMultiplier) >> 32),
                                      static_cast<uint32_t>((((word >> 8) & short_mask) * kShortMultiplier) >> 32)};
    if (words_.empty()) rebuild(8);
    const uint32_t* n = counts_.find(k);
    if (n == nullptr) {
      // first: a throw leaves counts_ without k (and the maps' extra entries unread)
      if (sampled) {
        short_first_of_.put(k, short_hashes[0]);
        short_second_of_.put(k, short_hashes[1]);
      }
      words_of_.put(k, hash);
    } else if (*words_of_.find(k) != hash) {
      pass_every_word();  // another word with the same 64-bit key
    }
    counts_.put(k, n == nullptr ? 1 : *n + 1);
    words_[(k >> 12) & mask_] |= bits_of(k);
    const uint32_t bit = hash >> (sieve_shift_ - 32);  // (word * kSieveMultiplier) >> sieve_shift_
    sieve_[bit >> 6] |= uint64_t{1} << (bit & 63);
    if (sampled && n == nullptr)
      for (uint32_t h : short_hashes) {
        const uint32_t b = h >> (sieve_shift_ - 33);
        short_sieve_[b >> 6] |= uint64_t{1} << (b & 63);
      }
    if (counts_.size() * 16 > words_.size() * 64) try {
        rebuild(words_.size() * 2);
      } catch (const std::bad_alloc&) {
        // fuller than planned: more false positives, never a miss
      }
  }

  // From now on the sieve passes every word: for grams of different words that
  // share a stored key, of which the filter keeps one word a key.
  void pass_every_word() noexcept {
    sieve_full_ = true;
    std::fill(sieve_.begin(), sieve_.end(), ~uint64_t{0});
    std::fill(short_sieve_.begin(), short_sieve_.end(), ~uint64_t{0});
  }

  // One shape less under key, when key is a gram key at all (false otherwise).
  bool remove(uint64_t key) noexcept {
    const uint64_t k = stored(key);
    const uint32_t* n = counts_.find(k);
    if (n == nullptr) return false;
    const uint32_t left = *n - 1;
    counts_.erase(k);
    if (left == 0) {
      words_of_.erase(k);
      short_first_of_.erase(k);
      short_second_of_.erase(k);
    }
    if (left > 0) {
      counts_.put(k, left);  // after the erase: no rehash, no allocation
      return true;
    }
    if (++stale_ > counts_.size() + 64) try {
        rebuild(words_.size());
      } catch (const std::bad_alloc&) {
      }
    return true;
  }

  size_t keys() const noexcept { return counts_.size(); }
  size_t bytes() const noexcept { return words_.size() * sizeof(uint64_t); }

 private:
  static uint64_t stored(uint64_t key) noexcept { return key == 0 ? 1 : key; }  // FlatMap keeps no 0
  static uint64_t bits_of(uint64_t k) noexcept {
    return (uint64_t{1} << (k & 63)) | (uint64_t{1} << ((k >> 6) & 63));
  }
  // words: a power of two; the sieve has twice as many.
  void rebuild(size_t words) {
    std::vector<uint64_t> fresh(words, 0);
    const size_t mask = words - 1;
    counts_.for_each([&](uint64_t k, uint32_t) { fresh[(k >> 12) & mask] |= bits_of(k); });
    // 128 bits a word of words, up to 2^28 bits (32 MB; past that, more grams a
    // bit): a bit is read from at most the 32 bits of hash words_of_ keeps.
    const unsigned log2 = std::min(static_cast<unsigned>(__builtin_ctzll(words)) + 7, 28u);
    std::vector<uint64_t> sieve(size_t{1} << (log2 - 6), sieve_full_ ? ~uint64_t{0} : 0);
    // The short sieve: twice the bits, for two halves a gram.
    std::vector<uint64_t> short_sieve(2 * sieve.size(), sieve_full_ ? ~uint64_t{0} : 0);
    auto mark = [&](std::vector<uint64_t>& bits, unsigned bits_log2) {
      return [&bits, bits_log2](uint64_t, uint32_t hash) {
        const uint32_t bit = hash >> (32 - bits_log2);
        bits[bit >> 6] |= uint64_t{1} << (bit & 63);
      };
    };
    if (!sieve_full_) {
      words_of_.for_each(mark(sieve, log2));
      short_first_of_.for_each(mark(short_sieve, log2 + 1));
      short_second_of_.for_each(mark(short_sieve, log2 + 1));
    }
    words_.swap(fresh);
    sieve_.swap(sieve);
    short_sieve_.swap(short_sieve);
    mask_ = mask;
    sieve_shift_ = 64 - log2;
    stale_ = 0;
  }
  // Fibonacci hashing of a window's word: its top bits address the sieve.
  static constexpr uint64_t kSieveMultiplier = 0x9e3779b97f4a7c15ULL;
  static constexpr uint64_t kShortMultiplier = 0xc2b2ae3d27d4eb4fULL;  // another sieve: other bits
  std::vector<uint64_t> words_;
  size_t mask_ = 0;
  std::vector<uint64_t> sieve_;
  std::vector<uint64_t> short_sieve_;  // as sieve_ with twice the bits, for the halves of long grams
  unsigned sieve_shift_ = 0;  // 64 - log2 of the sieve's bits
  bool sieve_full_ = false;
  FlatMap counts_;
  FlatMap words_of_;  // each key's word, as its sieve hash (the top 32 bits of word * kSieveMultiplier)
  // a long gram's key's shorter grams (its first and last len - 1 bytes), as their short sieve hashes
  FlatMap short_first_of_, short_second_of_;
  size_t stale_ = 0;
};

}  // namespace shape_router
