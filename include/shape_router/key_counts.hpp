// How many shapes have each key, counted while a bulk load files its deferred
// covers (Router::file_pending_covers): the counts choose among a cover's
// alternatives, and are thrown away once they have.
//
// The table lives at the load's peak of memory, so a key is held as a 24-bit
// fingerprint beside an 8-bit count, 4 bytes a slot instead of FlatMap's 16.
// The few keys with 255 shapes or more (a low-cardinality equality such as
// status = 'open') keep their count in a map beside it, by their whole hash.
// A fingerprint shared by two keys merges their counts, which may file a shape
// under a worse (never a wrong) alternative: at a million keys, a given key
// shares one on its probe path with probability about 2^-22. Linear probing,
// load factor <= 7/8, no deletion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "shape_router/flat_map.hpp"

namespace shape_router {

class KeyCounts {
 public:
  // Room for n keys.
  explicit KeyCounts(size_t n) {
    size_t capacity = 16;
    while (capacity * 7 < (n + 1) * 8) capacity *= 2;
    slots_ = filled_on_huge_pages<uint32_t>(capacity, 0);
    mask_ = capacity - 1;
  }

  // One more shape has key. Throws std::length_error past the keys sized for.
  void add(uint64_t key) {
    const uint64_t hash = mix64(key);
    const uint32_t fp = fingerprint(hash);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      uint32_t& slot = slots_[i];
      if (slot == 0) {
        if ((size_ + 1) * 8 > slots_.size() * 7) throw std::length_error("more keys than KeyCounts was sized for");
        slot = fp << kCountBits | 1;
        size_++;
        return;
      }
      if (slot >> kCountBits == fp) {
        increment(slot, hash);
        return;
      }
    }
  }

  // One more shape has key, if some shape already had it.
  void add_if_present(uint64_t key) {
    const size_t i = find(key);
    if (i != kAbsent) increment(slots_[i], mix64(key));
  }

  // The shapes with key (0: none counted).
  uint32_t count(uint64_t key) const noexcept {
    const size_t i = find(key);
    if (i == kAbsent) return 0;
    const uint32_t inline_count = slots_[i] & kCountMask;
    if (inline_count < kCountMask) return inline_count;
    const uint32_t* n = large_.find(large_key(mix64(key)));
    return n != nullptr ? *n : kCountMask;  // (none: a key sharing the slot's fingerprint filled it)
  }

  // Asks for the line a call for key reads first.
  void prefetch(uint64_t key) const noexcept { prefetch_line(&slots_[mix64(key) & mask_]); }

  size_t size() const noexcept { return size_; }
  size_t bytes() const noexcept { return slots_.capacity() * sizeof(uint32_t) + large_.capacity() * 16; }

 private:
  static constexpr size_t kAbsent = SIZE_MAX;
  static constexpr int kCountBits = 8;
  static constexpr uint32_t kCountMask = (uint32_t{1} << kCountBits) - 1;  // the count is in large_

  // The high 24 bits of the mixed key, never 0 (0 marks a free slot); its
  // slot comes from the low bits.
  static uint32_t fingerprint(uint64_t hash) noexcept { return static_cast<uint32_t>(hash >> 40) | 1; }

  static uint64_t large_key(uint64_t hash) noexcept { return hash | 1; }  // FlatMap keys are not 0
  // The map is changed before the slot: a bad_alloc leaves the count as it was.
  void increment(uint32_t& slot, uint64_t hash) {
    const uint32_t inline_count = slot & kCountMask;
    if (inline_count + 1 < kCountMask) {
      slot++;
      return;
    }
    if (inline_count + 1 == kCountMask) {
      large_.put(large_key(hash), kCountMask);
      slot++;
      return;
    }
    // None when a key sharing the slot's fingerprint filled it: this one starts there.
    const uint32_t* found = large_.find(large_key(hash));
    const uint32_t n = found != nullptr ? *found : kCountMask;
    if (n != UINT32_MAX) large_.put(large_key(hash), n + 1);
  }

  size_t find(uint64_t key) const noexcept {
    const uint64_t hash = mix64(key);
    const uint32_t fp = fingerprint(hash);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      if (slots_[i] == 0) return kAbsent;
      if (slots_[i] >> kCountBits == fp) return i;
    }
  }

  std::vector<uint32_t> slots_;  // fingerprint << kCountBits | count; 0: free
  FlatMap large_;                // large_key(hash) → count, for counts of kCountMask or more
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace shape_router
