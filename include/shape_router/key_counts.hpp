// How many shapes have each key, counted while a bulk load files its deferred
// covers (Router::file_pending_covers): the counts choose among a cover's
// alternatives, and are thrown away once they have.
//
// The table lives at the load's peak of memory, so a key is held as a 40-bit
// fingerprint beside a 24-bit count (saturating: "16 million or more"), 8
// bytes a slot instead of FlatMap's 16. A fingerprint shared by two keys
// merges their counts, which may file a shape under a worse (never a wrong)
// alternative: at a million keys, a given key shares one with probability
// 2^-19. Linear probing, load factor <= 7/8, no deletion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shape_router/flat_map.hpp"

namespace shape_router {

class KeyCounts {
 public:
  // Room for n keys without growing.
  explicit KeyCounts(size_t n = 0) { grow_to(n); }

  // One more shape has key.
  void add(uint64_t key) {
    if ((size_ + 1) * 8 > slots_.size() * 7) grow_to(slots_.size());
    const uint64_t fp = fingerprint(key);
    for (size_t i = home(fp);; i = (i + 1) & mask_) {
      uint64_t& slot = slots_[i];
      if (slot == 0) {
        slot = fp << kCountBits | 1;
        size_++;
        return;
      }
      if (slot >> kCountBits == fp) {
        if ((slot & kCountMask) != kCountMask) slot++;
        return;
      }
    }
  }

  // One more shape has key, if some shape already had it.
  void add_if_present(uint64_t key) noexcept {
    const size_t i = find(fingerprint(key));
    if (i != kAbsent && (slots_[i] & kCountMask) != kCountMask) slots_[i]++;
  }

  // The shapes with key (0: none counted).
  uint32_t count(uint64_t key) const noexcept {
    const size_t i = find(fingerprint(key));
    return i == kAbsent ? 0 : static_cast<uint32_t>(slots_[i] & kCountMask);
  }

  // Asks for the line a call for key reads first.
  void prefetch(uint64_t key) const noexcept { prefetch_line(&slots_[home(fingerprint(key))]); }

  size_t size() const noexcept { return size_; }
  size_t bytes() const noexcept { return slots_.capacity() * sizeof(uint64_t); }

 private:
  static constexpr size_t kAbsent = SIZE_MAX;
  static constexpr int kCountBits = 24;
  static constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;

  // The high 40 bits of the mixed key, never 0 (0 marks a free slot). A key's
  // slot comes from its fingerprint alone, so that a grown table can place
  // again what it holds.
  static uint64_t fingerprint(uint64_t key) noexcept { return (mix64(key) >> kCountBits) | 1; }
  size_t home(uint64_t fp) const noexcept { return static_cast<size_t>((fp * kGoldenGamma) >> shift_); }

  size_t find(uint64_t fp) const noexcept {
    for (size_t i = home(fp);; i = (i + 1) & mask_) {
      if (slots_[i] == 0) return kAbsent;
      if (slots_[i] >> kCountBits == fp) return i;
    }
  }

  // A table for at least n keys at <= 7/8 (and larger than now), its counts kept.
  void grow_to(size_t n) {
    size_t capacity = 16;
    int bits = 4;
    while (capacity * 7 < (n + 1) * 8 || capacity <= slots_.size()) {
      capacity *= 2;
      bits++;
    }
    std::vector<uint64_t> old(capacity, 0);
    old.swap(slots_);
    mask_ = capacity - 1;
    shift_ = 64 - bits;
    for (uint64_t slot : old)
      if (slot != 0) {
        size_t i = home(slot >> kCountBits);
        while (slots_[i] != 0) i = (i + 1) & mask_;
        slots_[i] = slot;
      }
  }

  std::vector<uint64_t> slots_;  // fingerprint << kCountBits | count; 0: free
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

}  // namespace shape_router
