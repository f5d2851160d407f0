// The integer values a relation's shapes have equality or composite keys of,
// column by column, as one bit a value in one bit array (about 16 bits a
// value): a row's integer value the sieve has no bit for is no shape's key,
// so its key is neither made nor looked up (an integer key costs an xxh3 and
// a front filter word; the sieve, a multiply and a bit). The values come from the keys themselves (int_value_of_key:
// an 8-byte key is one-to-one), so a loaded catalog needs nothing new.
// Bits are only set: a dropped shape's bit stays until the next bulk load.
// Past its capacity it grows, up to kMaxValues; past that (or loaded with more
// than half of that) it is disabled, passing every value, until the next bulk
// load sizes it again.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

#include "shape_router/flat_map.hpp"

namespace shape_router {

class ValueSieve {
 public:
  ValueSieve() = default;
  // (the view points into the bits: made again for a copy's own)
  ValueSieve(const ValueSieve& other)
      : words_(other.words_), shift_(other.shift_), capacity_(other.capacity_), added_(other.added_),
        kept_(other.kept_), keeping_(other.keeping_) {
    repoint();
  }
  ValueSieve(ValueSieve&& other) noexcept
      : words_(std::move(other.words_)), shift_(other.shift_), capacity_(other.capacity_), added_(other.added_),
        kept_(std::move(other.kept_)), keeping_(other.keeping_) {
    repoint();
    other.disable();
  }
  ValueSieve& operator=(ValueSieve other) noexcept {
    words_.swap(other.words_);
    kept_.swap(other.kept_);
    shift_ = other.shift_;
    capacity_ = other.capacity_;
    added_ = other.added_;
    keeping_ = other.keeping_;
    repoint();
    return *this;
  }

  // Where a value of column attnum falls: its bits above the sieve's size address it.
  static uint64_t hash(uint64_t value, uint16_t attnum) noexcept { return salted_hash(value, salt(attnum)); }
  static uint64_t salt(uint16_t attnum) noexcept { return mix64(uint64_t{attnum} + kGoldenGamma); }
  static uint64_t salted_hash(uint64_t value, uint64_t salt) noexcept { return (value ^ salt) * kGoldenGamma; }

  // The bits as locals, for a row's loop.
  struct View {
    const uint64_t* words = nullptr;  // nullptr: every value passes
    unsigned shift = 64;
    bool may_have(uint64_t hash) const noexcept {
      const uint64_t bit = hash >> shift;
      return (words[bit >> 6] >> (bit & 63)) & 1;
    }
  };
  // The bits, or nullptr when the sieve passes every value.
  const View* view() const noexcept { return view_.words != nullptr ? &view_ : nullptr; }
  bool usable() const noexcept { return view_.words != nullptr; }
  size_t values() const noexcept { return added_; }

  // Empty, with room for values (kMinValues to kMaxValues; past that, none:
  // disabled); the old bits are gone. The values' hashes are kept, to grow by.
  void reset(size_t values) {
    disable();
    if (values > kMaxValues) return;
    size_bits(values);
    keeping_ = true;
  }
  // Passes every value, and takes none, until reset.
  void disable() noexcept {
    std::vector<uint64_t>().swap(words_);
    std::vector<uint64_t>().swap(kept_);
    keeping_ = false;
    capacity_ = added_ = 0;
    shift_ = 64;
    view_ = View{};
  }
  // One more value (of hash()). Past the capacity the sieve grows from the
  // kept hashes, up to kMaxValues; past that it stops being usable.
  void add(uint64_t hash) noexcept {
    if (words_.empty()) return;
    set(hash);
    added_++;
    if (keeping_ && added_ > kMaxValues) {
      keeping_ = false;  // it cannot grow again
      std::vector<uint64_t>().swap(kept_);
    }
    if (keeping_) try {
        kept_.push_back(hash);
      } catch (const std::bad_alloc&) {
        keeping_ = false;
      }
    if (added_ <= capacity_) return;
    if (keeping_) try {
        size_bits(std::min(2 * added_, kMaxValues));
        for (uint64_t h : kept_) set(h);
        return;
      } catch (const std::bad_alloc&) {
      }
    disable();
  }
  size_t bytes() const noexcept { return (words_.size() + kept_.capacity()) * sizeof(uint64_t); }

  // Sizes: 1 KB to 128 KB. A larger one costs more than it saves: at 100,000
  // mixed shapes (85,000 values, 512 KB) routing measured 3% slower with it
  // (bench/README.md, "A value sieve in front of integer keys").
  static constexpr size_t kMinValues = 512;
  static constexpr size_t kMaxValues = 65536;

 private:
  void size_bits(size_t values) {
    size_t bits = 64;
    while (bits < 16 * std::max(values, kMinValues)) bits *= 2;
    std::vector<uint64_t>(bits / 64, 0).swap(words_);
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(bits));
    capacity_ = bits / 16;
    repoint();
  }
  void repoint() noexcept { view_ = words_.empty() ? View{} : View{words_.data(), shift_}; }
  void set(uint64_t hash) noexcept {
    const uint64_t bit = hash >> shift_;
    words_[bit >> 6] |= uint64_t{1} << (bit & 63);
  }

  std::vector<uint64_t> words_;
  unsigned shift_ = 64;
  size_t capacity_ = 0;
  size_t added_ = 0;
  std::vector<uint64_t> kept_;
  bool keeping_ = true;
  View view_;  // words_ and shift_ while usable (add() disables it past its capacity)
};

}  // namespace shape_router
