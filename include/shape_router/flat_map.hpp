// Open-addressing hash map from non-zero 64-bit keys to 32-bit values.
//
// Linear probing over a power-of-two table, load factor <= 7/8, backward-shift
// deletion (no tombstones, so probe lengths never degrade after drops). Used by
// the relation gate (relid -> relation slot) and the shape directory
// (shape id -> relid). Key 0 marks an empty slot, so callers never store it.
#pragma once

#include "shape_router/huge_pages.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace shape_router {

// What a bulk load reserves beyond its estimate of n entries. Estimates come
// from catalog statistics, off by a few percent either way; past a reservation
// the tables double.
constexpr size_t bulk_margin(size_t n) noexcept { return n / 16; }

// Gives back a vector's growth slack when it is large: over an eighth beyond a
// bulk load's margin. A small one is left: its pages, never touched, cost no
// memory, while shrinking copies the vector and holds both copies at once.
template <typename T>
void shrink_if_slack(std::vector<T>& v) {
  if (v.capacity() - v.size() > v.size() / 8 + bulk_margin(v.size())) v.shrink_to_fit();
}

// Room for one more element, growing geometrically. (reserve(size() + 1)
// reallocates to exactly that size: each call copies the whole vector, and a
// run of n calls is quadratic.)
template <typename T>
void reserve_one_more(std::vector<T>& v) {
  reserve_more_on_huge_pages(v, 1);
}

// Asks the CPU to bring in the cache line at p. g++ 12 finds a function made
// only of __builtin_prefetch calls free of side effects and drops its calls
// (the shape directory's prefetch compiled to nothing); the empty volatile asm
// keeps them.
inline void prefetch_line(const void* p) noexcept {
  __builtin_prefetch(p);
  asm volatile("");
}

// 2^64 / the golden ratio: the increment of splitmix64, and what seeds and
// words are offset by before mixing, so that 0 does not mix to 0.
constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;

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

  // Asks for the line a find or put of key reads first.
  void prefetch(uint64_t key) const noexcept { prefetch_line(&slots_[mix64(key) & mask_]); }

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

// A set of 32-bit handles found by a 64-bit key that lives elsewhere (key_of(handle)),
// so that an entry costs 5 bytes: the shape directory finds a shape's slot by its id,
// which the slot itself holds. Linear probing, load factor <= 7/8, backward-shift
// deletion. Each entry has an 8-bit tag of its key's hash beside it, so a probe
// reads a key elsewhere (a cache miss when the set is large) only on a tag match,
// 1 in 256 of the others. The table's size need not be a power of two (a key's
// home is its hash scaled to the size): a set reserved for n takes about 5.7 n
// bytes, not up to twice that. Every call that looks at keys takes key_of.
class HandleSet {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  HandleSet() : table_(16, 0), tags_(16, 0) {}

  template <typename KeyOf>
  uint32_t find(uint64_t key, KeyOf key_of) const noexcept {
    const uint64_t h = mix64(key);
    const uint8_t tag = tag_of(h);
    for (size_t i = home_of(h);; i = next(i)) {
      const uint32_t entry = table_[i];
      if (entry == 0) return kNone;
      if (tags_[i] == tag && key_of(entry - 1) == key) return entry - 1;
    }
  }

  // Starts loading the lines a find or insert of key reads first.
  void prefetch(uint64_t key) const noexcept {
    const size_t i = home_of(mix64(key));
    prefetch_line(&table_[i]);
    prefetch_line(&tags_[i]);
  }

  // Adds handle, whose key must not be present yet.
  template <typename KeyOf>
  void insert(uint32_t handle, KeyOf key_of) {
    if ((size_ + 1) * 8 > table_.size() * 7) rehash(table_.size() * 2, key_of);
    place(handle + 1, mix64(key_of(handle)));
    size_++;
  }

  // Removes the handle of key; returns false when absent.
  template <typename KeyOf>
  bool erase(uint64_t key, KeyOf key_of) noexcept {
    const uint64_t h = mix64(key);
    const uint8_t tag = tag_of(h);
    size_t i = home_of(h);
    for (;; i = next(i)) {
      if (table_[i] == 0) return false;
      if (tags_[i] == tag && key_of(table_[i] - 1) == key) break;
    }
    size_t hole = i;
    for (size_t j = next(i); table_[j] != 0; j = next(j)) {
      const size_t home = home_of(mix64(key_of(table_[j] - 1)));
      const bool home_in_gap = (hole <= j) ? (hole < home && home <= j) : (hole < home || home <= j);
      if (!home_in_gap) {
        table_[hole] = table_[j];
        tags_[hole] = tags_[j];
        hole = j;
      }
    }
    table_[hole] = 0;
    tags_[hole] = 0;
    size_--;
    return true;
  }

  // Room for n handles without growing.
  template <typename KeyOf>
  void reserve(size_t n, KeyOf key_of) {
    if (n * 8 <= table_.size() * 7) return;
    rehash(n / 7 * 8 + 16, key_of);
  }

  size_t size() const noexcept { return size_; }
  size_t bytes() const noexcept { return table_.size() * (sizeof(uint32_t) + sizeof(uint8_t)); }

 private:
  static uint8_t tag_of(uint64_t h) noexcept { return static_cast<uint8_t>(h); }
  size_t home_of(uint64_t h) const noexcept {
    return static_cast<size_t>((static_cast<unsigned __int128>(h) * table_.size()) >> 64);
  }
  size_t next(size_t i) const noexcept { return i + 1 == table_.size() ? 0 : i + 1; }
  void place(uint32_t entry, uint64_t h) noexcept {
    size_t i = home_of(h);
    while (table_[i] != 0) i = next(i);
    table_[i] = entry;
    tags_[i] = tag_of(h);
  }

  // Allocates before touching the set: on bad_alloc it is unchanged.
  template <typename KeyOf>
  void rehash(size_t capacity, KeyOf key_of) {
    std::vector<uint32_t> old = filled_on_huge_pages<uint32_t>(capacity, 0);
    std::vector<uint8_t> tags = filled_on_huge_pages<uint8_t>(capacity, 0);
    old.swap(table_);
    tags_.swap(tags);
    for (uint32_t entry : old)
      if (entry != 0) place(entry, mix64(key_of(entry - 1)));
  }

  std::vector<uint32_t> table_;  // handle + 1; 0: empty
  std::vector<uint8_t> tags_;    // low byte of the hash of the entry's key
  size_t size_ = 0;
};

}  // namespace shape_router
