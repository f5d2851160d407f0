// A set of 64-bit keys emptied in O(1): each entry carries the epoch it was
// inserted in, and next() starts a new epoch. For deduplicating the keys of one
// call (a text's repeated grams) without clearing a table per call.
#pragma once

#include "shape_router/flat_map.hpp"

#include <cstdint>
#include <vector>

namespace shape_router {

class EpochKeySet {
 public:
  EpochKeySet() : entries_(64) {}

  void next() noexcept {
    size_ = 0;
    if (++epoch_ == 0) {  // wrapped: forget every entry
      for (Entry& e : entries_) e = Entry{};
      epoch_ = 1;
    }
  }

  // Adds key; false when it was already in (this epoch).
  bool insert(uint64_t key) {
    if ((size_ + 1) * 2 > entries_.size()) grow();
    const size_t mask = entries_.size() - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
      Entry& e = entries_[i];
      if (e.epoch != epoch_) {
        e = Entry{key, epoch_};
        size_++;
        return true;
      }
      if (e.key == key) return false;
    }
  }

 private:
  struct Entry {
    uint64_t key = 0;
    uint32_t epoch = 0;
  };
  void grow() {
    std::vector<Entry> old(entries_.size() * 2);
    old.swap(entries_);
    const size_t mask = entries_.size() - 1;
    for (const Entry& e : old) {
      if (e.epoch != epoch_) continue;
      size_t i = mix64(e.key) & mask;
      while (entries_[i].epoch == epoch_) i = (i + 1) & mask;
      entries_[i] = e;
    }
  }
  std::vector<Entry> entries_;
  uint32_t epoch_ = 1;
  size_t size_ = 0;
};

}  // namespace shape_router
