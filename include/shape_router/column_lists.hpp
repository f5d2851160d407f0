// NULL and complement atoms (router.h, SR_ATOM_NULL and SR_ATOM_COMPLEMENT):
// per (relation, column), the shapes filed under "the column is NULL" and
// those filed under "the column is not NULL and its key is none of these"
// (col <> c, NOT IN, IS NOT NULL, IS DISTINCT FROM). A complement shape is a
// candidate for every non-NULL value except the few its constants exclude, so
// its list is walked whole and the value's exclusions, found by one hash
// lookup, are skipped.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "shape_router/flat_map.hpp"

namespace shape_router {

class ColumnLists {
 public:
  void add_null(uint32_t relid, uint16_t attnum, uint32_t slot);
  // excluded[0..n): the keys (index_key of the constants) whose values the atom
  // does not hold for. A slot filed there already (a second complement in one
  // alternative) keeps the keys both exclude.
  void add_complement(uint32_t relid, uint16_t attnum, uint32_t slot, const uint64_t* excluded, size_t n);
  // Removes slot from the column's lists (both kinds); no effect when absent.
  void drop(uint32_t relid, uint16_t attnum, uint32_t slot);

  // Calls emit(slot) for each shape filed under "attnum is NULL".
  template <typename Emit>
  void stab_null(uint32_t relid, uint16_t attnum, Emit&& emit) const {
    const Column* c = find(relid, attnum);
    if (c != nullptr)
      for (uint32_t slot : c->nulls) emit(slot);
  }
  // Calls emit(slot, holds) for each complement shape of the column, for a row
  // whose value there has key key: holds is true when the atom surely holds (no
  // constant of the shape has that key). A shape one of whose constants has the
  // key is left out when keys are exact for the column's type (key_exact: the
  // value is that constant), and otherwise emitted with holds false (a hash
  // collision cannot be told from a match here).
  template <typename Emit>
  void stab_complement(uint32_t relid, uint16_t attnum, uint64_t key, bool key_exact, Emit&& emit) {
    const Column* c = find(relid, attnum);
    if (c == nullptr || c->complements.empty()) return;
    excluded_scratch_.clear();
    auto range = c->excluded.equal_range(key);
    for (auto it = range.first; it != range.second; ++it) excluded_scratch_.push_back(it->second);
    if (excluded_scratch_.empty()) {
      for (uint32_t slot : c->complements) emit(slot, true);
      return;
    }
    std::sort(excluded_scratch_.begin(), excluded_scratch_.end());
    for (uint32_t slot : c->complements) {
      const bool excluded = std::binary_search(excluded_scratch_.begin(), excluded_scratch_.end(), slot);
      if (!excluded)
        emit(slot, true);
      else if (!key_exact)
        emit(slot, false);
    }
  }
  // Calls emit(slot) for every complement shape of the column (a row whose key
  // there is not known: a superset).
  template <typename Emit>
  void all_complements(uint32_t relid, uint16_t attnum, Emit&& emit) const {
    const Column* c = find(relid, attnum);
    if (c != nullptr)
      for (uint32_t slot : c->complements) emit(slot);
  }

  size_t null_count(uint32_t relid, uint16_t attnum) const noexcept {
    const Column* c = find(relid, attnum);
    return c == nullptr ? 0 : c->nulls.size();
  }
  size_t complement_count(uint32_t relid, uint16_t attnum) const noexcept {
    const Column* c = find(relid, attnum);
    return c == nullptr ? 0 : c->complements.size();
  }
  size_t entries() const noexcept { return entries_; }
  size_t bytes() const noexcept;  // an estimate

 private:
  struct Column {
    std::vector<uint32_t> nulls;
    std::vector<uint32_t> complements;
    std::unordered_multimap<uint64_t, uint32_t> excluded;          // key -> slot
    std::unordered_map<uint32_t, std::vector<uint64_t>> excluding;  // slot -> its keys
  };
  static uint64_t column_key(uint32_t relid, uint16_t attnum) noexcept { return (uint64_t{relid} << 16 | attnum) + 1; }
  // Where slot sits in a column's list: (slot + 1, attnum, list) -> index.
  static uint64_t position_key(uint32_t slot, uint16_t attnum, bool complement) noexcept {
    return (uint64_t{slot} + 1) << 17 | uint64_t{attnum} << 1 | (complement ? 1 : 0);
  }
  const Column* find(uint32_t relid, uint16_t attnum) const noexcept {
    const uint32_t* i = column_of_.find(column_key(relid, attnum));
    return i == nullptr ? nullptr : &columns_[*i];
  }
  Column& column(uint32_t relid, uint16_t attnum);
  void append(std::vector<uint32_t>& list, uint32_t slot, uint64_t position);
  void remove(std::vector<uint32_t>& list, uint64_t position);
  static void unexclude(Column& c, uint64_t key, uint32_t slot) noexcept;

  std::vector<Column> columns_;
  FlatMap column_of_;   // column_key -> index into columns_
  FlatMap positions_;   // position_key -> index into the column's list
  size_t entries_ = 0;
  std::vector<uint32_t> excluded_scratch_;
};

}  // namespace shape_router
