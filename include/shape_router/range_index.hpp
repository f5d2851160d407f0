// Range atoms: which shapes' ranges (col > c, col <= c, BETWEEN ...) hold for a
// row's value, in O(log n + matches) per column probed.
//
// Values are compared through order keys (order_key): 64-bit numbers that never
// decrease along the column type's order. For integers, dates and timestamps
// the map is exact; for floats it is exact up to -0 = 0 and NaN (largest, all
// alike); for text (C collation) and numeric it keeps the first 8 bytes of the
// value's memcmp-ordered form, so distinct values may share a key. Ranges are
// therefore stored with inclusive bounds on keys: a superset of the values the
// range admits, which the gate narrows down.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shape_router/flat_map.hpp"
#include "shape_router/program.h"

namespace shape_router {

// How exactly order keys of tag follow its order (SR_ORDER_*), and the key of a value.
int tag_order(uint8_t tag) noexcept;
uint64_t order_key(uint8_t tag, const sr_value& value) noexcept;

// A static centered interval tree (Edelsbrunner): each node holds the ranges
// containing its center, sorted by lower bound and by upper bound, so a probe
// visits O(log n) nodes and stops at the first range of a node that misses.
class RangeTree {
 public:
  struct Entry {
    uint64_t lo;
    uint64_t hi;
    uint32_t slot;
  };
  // entries are taken (and reordered).
  void build(std::vector<Entry>& entries);
  // Appends the slot of every entry with lo <= value <= hi.
  template <typename Emit>
  void stab(uint64_t value, Emit&& emit) const {
    int32_t n = nodes_.empty() ? -1 : 0;
    while (n >= 0) {
      const Node& node = nodes_[static_cast<size_t>(n)];
      if (value < node.center) {
        for (uint32_t i = node.begin; i < node.end && by_lo_[i].lo <= value; i++) emit(by_lo_[i].slot);
        n = node.left;
      } else if (value > node.center) {
        for (uint32_t i = node.begin; i < node.end && by_hi_[i].hi >= value; i++) emit(by_hi_[i].slot);
        n = node.right;
      } else {
        for (uint32_t i = node.begin; i < node.end; i++) emit(by_lo_[i].slot);
        return;
      }
    }
  }
  size_t size() const noexcept { return by_lo_.size(); }
  size_t bytes() const noexcept {
    return (by_lo_.capacity() + by_hi_.capacity()) * sizeof(Entry) + nodes_.capacity() * sizeof(Node);
  }
  // Every entry, in no particular order (for rebuilds).
  const std::vector<Entry>& entries() const noexcept { return by_lo_; }

 private:
  struct Node {
    uint64_t center;
    uint32_t begin, end;  // its entries in by_lo_ and by_hi_
    int32_t left = -1, right = -1;
  };
  std::vector<Node> nodes_;
  std::vector<Entry> by_lo_;  // per node: ascending lo
  std::vector<Entry> by_hi_;  // per node: descending hi
};

// The ranges of one column of one relation: a static tree, plus the entries
// added since it was built (scanned) and the slots dropped from it since
// (tombstones), folded into a new tree when they grow past a quarter of it.
class RangeColumn {
 public:
  void add(uint32_t slot, uint64_t lo, uint64_t hi);
  void drop(uint32_t slot);
  template <typename Emit>
  void stab(uint64_t value, Emit&& emit) const {
    if (tombstones_.size() == 0) {
      tree_.stab(value, emit);
    } else {
      tree_.stab(value, [&](uint32_t slot) {
        if (tombstones_.find(uint64_t{slot} + 1) == nullptr) emit(slot);
      });
    }
    for (const RangeTree::Entry& e : overlay_)
      if (e.lo <= value && value <= e.hi) emit(e.slot);
  }
  // Folds the overlay and tombstones into a new tree when they have grown (or always, with force).
  bool maintain(bool force);
  size_t entries() const noexcept { return tree_.size() - dropped_entries_ + overlay_.size(); }
  size_t bytes() const noexcept {
    return tree_.bytes() + overlay_.capacity() * sizeof(RangeTree::Entry) + static_slots_.capacity() * 4;
  }

 private:
  RangeTree tree_;
  std::vector<uint32_t> static_slots_;  // slots in tree_, sorted (a slot may have several entries)
  FlatMap tombstones_;                  // slot + 1 → entries of it in tree_, dropped since the build
  size_t dropped_entries_ = 0;
  std::vector<RangeTree::Entry> overlay_;
};

// Every range column of every relation: (relation, column) → RangeColumn.
class RangeIndex {
 public:
  RangeColumn& column(uint32_t relid, uint16_t attnum);
  const RangeColumn* find(uint32_t relid, uint16_t attnum) const noexcept {
    const uint32_t* i = by_column_.find(column_key(relid, attnum));
    return i == nullptr ? nullptr : &columns_[*i];
  }
  RangeColumn* find(uint32_t relid, uint16_t attnum) noexcept {
    const uint32_t* i = by_column_.find(column_key(relid, attnum));
    return i == nullptr ? nullptr : &columns_[*i];
  }
  bool maintain(bool force);
  size_t entries() const noexcept;
  size_t bytes() const noexcept;

 private:
  static uint64_t column_key(uint32_t relid, uint16_t attnum) noexcept {
    return (uint64_t{relid} << 16 | attnum) + 1;  // never 0
  }
  FlatMap by_column_;
  std::vector<RangeColumn> columns_;
};

}  // namespace shape_router
