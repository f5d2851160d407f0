// The substring gram keys some shape is filed under, as a small blocked Bloom
// filter (two bits a key in one word, about 16 bits a key) in front of the
// equality index. A row has a gram key per window of its text, and most are no
// shape's: this filter, a few KB for thousands of grams, answers them from
// cache, where the index's own front filter (a bit a key of every key) would
// cost a cache miss a window. Exact counts of each key's shapes are kept so
// that a key no shape has any more stops passing after the next rebuild.
#pragma once

#include "shape_router/flat_map.hpp"

#include <cstdint>
#include <new>
#include <vector>

namespace shape_router {

class GramFilter {
 public:
  bool may_have(uint64_t key) const noexcept { return view().may_have(key); }

  // The filter's words as locals, for a loop of probes (its members would be
  // reloaded after every store the loop makes).
  struct View {
    const uint64_t* words;
    size_t mask;
    bool may_have(uint64_t key) const noexcept { return words != nullptr && has(key); }
    // may_have of a filter with words (a loop checks that once).
    bool has(uint64_t key) const noexcept {
      const uint64_t k = stored(key);
      const uint64_t bits = bits_of(k);
      return (words[(k >> 12) & mask] & bits) == bits;
    }
  };
  View view() const noexcept { return View{words_.empty() ? nullptr : words_.data(), mask_}; }

  // One more shape under key. Throws only before changing anything.
  void add(uint64_t key) {
    const uint64_t k = stored(key);
    if (words_.empty()) rebuild(8);
    const uint32_t* n = counts_.find(k);
    counts_.put(k, n == nullptr ? 1 : *n + 1);
    words_[(k >> 12) & mask_] |= bits_of(k);
    if (counts_.size() * 16 > words_.size() * 64) try {
        rebuild(words_.size() * 2);
      } catch (const std::bad_alloc&) {
        // fuller than planned: more false positives, never a miss
      }
  }

  // One shape less under key, when key is a gram key at all (false otherwise).
  bool remove(uint64_t key) noexcept {
    const uint64_t k = stored(key);
    const uint32_t* n = counts_.find(k);
    if (n == nullptr) return false;
    const uint32_t left = *n - 1;
    counts_.erase(k);
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
  void rebuild(size_t words) {
    std::vector<uint64_t> fresh(words, 0);
    const size_t mask = words - 1;
    counts_.for_each([&](uint64_t k, uint32_t) { fresh[(k >> 12) & mask] |= bits_of(k); });
    words_.swap(fresh);
    mask_ = mask;
    stale_ = 0;
  }
  std::vector<uint64_t> words_;
  size_t mask_ = 0;
  FlatMap counts_;
  size_t stale_ = 0;
};

}  // namespace shape_router
