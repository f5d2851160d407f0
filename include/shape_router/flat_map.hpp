// Open-addressing hash map from non-zero 64-bit keys to 32-bit values.
//
// Linear probing over a power-of-two table, load factor <= 7/8, backward-shift
// deletion (no tombstones, so probe lengths never degrade after drops). Used by
// the relation gate (relid -> relation slot) and the shape directory
// (shape id -> relid). Key 0 marks an empty slot, so callers never store it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace shape_router {

// Finalizer of MurmurHash3: a full-avalanche mixer for integer keys.
inline uint64_t mix64(uint64_t key) noexcept {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  key *= 0xc4ceb9fe1a85ec53ULL;
  key ^= key >> 33;
  return key;
}

class FlatMap {
 public:
  FlatMap() { rehash(16); }

  // Returns a pointer to the value of key, or nullptr when absent.
  const uint32_t* find(uint64_t key) const noexcept {
    if (key == 0) return nullptr;  // 0 marks empty slots: it is never stored
    size_t i = mix64(key) & mask_;
    for (;;) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == 0) return nullptr;
      i = (i + 1) & mask_;
    }
  }

  // Inserts or overwrites. key must be non-zero.
  void put(uint64_t key, uint32_t value) {
    if ((size_ + 1) * 8 > slots_.size() * 7) rehash(slots_.size() * 2);
    size_t i = mix64(key) & mask_;
    for (;;) {
      Slot& s = slots_[i];
      if (s.key == key) {
        s.value = value;
        return;
      }
      if (s.key == 0) {
        s.key = key;
        s.value = value;
        ++size_;
        return;
      }
      i = (i + 1) & mask_;
    }
  }

  // Removes key; returns false when it was absent.
  bool erase(uint64_t key) noexcept {
    if (key == 0) return false;
    size_t i = mix64(key) & mask_;
    for (;;) {
      if (slots_[i].key == 0) return false;
      if (slots_[i].key == key) break;
      i = (i + 1) & mask_;
    }
    // Backward shift: pull later members of the probe run into the hole when
    // their home slot does not lie (cyclically) between the hole and them.
    size_t hole = i;
    size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      if (slots_[j].key == 0) break;
      size_t home = mix64(slots_[j].key) & mask_;
      bool home_in_gap = (hole <= j) ? (hole < home && home <= j) : (hole < home || home <= j);
      if (!home_in_gap) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = Slot{};
    --size_;
    return true;
  }

  // Makes room for n keys without further rehashing.
  void reserve(size_t n) {
    size_t capacity = slots_.size();
    while (n * 8 > capacity * 7) capacity *= 2;
    if (capacity != slots_.size()) rehash(capacity);
  }

  size_t size() const noexcept { return size_; }
  size_t capacity() const noexcept { return slots_.size(); }

  template <typename Visit>
  void for_each(Visit&& visit) const {
    for (const Slot& s : slots_)
      if (s.key != 0) visit(s.key, s.value);
  }

 private:
  struct Slot {
    uint64_t key = 0;
    uint32_t value = 0;
  };

  // Allocates before touching the map: on bad_alloc the map is unchanged.
  void rehash(size_t capacity) {
    std::vector<Slot> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    for (const Slot& s : old) {
      if (s.key == 0) continue;
      size_t i = mix64(s.key) & mask_;
      while (slots_[i].key != 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace shape_router
