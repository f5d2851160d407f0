// NULL and complement atoms: see column_lists.hpp.
#include "shape_router/column_lists.hpp"

namespace shape_router {

ColumnLists::Column& ColumnLists::column(uint32_t relid, uint16_t attnum) {
  if (const uint32_t* i = column_of_.find(column_key(relid, attnum))) return columns_[*i];
  reserve_one_more(columns_);
  column_of_.put(column_key(relid, attnum), static_cast<uint32_t>(columns_.size()));
  columns_.emplace_back();
  return columns_.back();
}

void ColumnLists::append(std::vector<uint32_t>& list, uint32_t slot, uint64_t position) {
  if (positions_.find(position) != nullptr) return;  // already filed
  reserve_one_more(list);
  positions_.put(position, static_cast<uint32_t>(list.size()));
  list.push_back(slot);
  entries_++;
}

// The last element moves into the hole: lists are unordered (candidates() sorts).
void ColumnLists::remove(std::vector<uint32_t>& list, uint64_t position) {
  const uint32_t* found = positions_.find(position);
  if (found == nullptr) return;
  const uint32_t i = *found;
  positions_.erase(position);
  if (i + 1 != list.size()) {
    const uint32_t moved = list.back();
    list[i] = moved;
    // same column and list as position: only the slot differs
    positions_.put((uint64_t{moved} + 1) << 17 | (position & 0x1ffff), i);
  }
  list.pop_back();
  entries_--;
}

void ColumnLists::unexclude(Column& c, uint64_t key, uint32_t slot) noexcept {
  auto range = c.excluded.equal_range(key);
  for (auto it = range.first; it != range.second; ++it)
    if (it->second == slot) {
      c.excluded.erase(it);
      return;
    }
}

void ColumnLists::add_null(uint32_t relid, uint16_t attnum, uint32_t slot) {
  Column& c = column(relid, attnum);
  append(c.nulls, slot, position_key(slot, attnum, false));
}

void ColumnLists::add_complement(uint32_t relid, uint16_t attnum, uint32_t slot, const uint64_t* excluded, size_t n) {
  Column& c = column(relid, attnum);
  if (positions_.find(position_key(slot, attnum, true)) != nullptr) {
    // A second complement on the column in one alternative (c <> 1 OR c <> 2):
    // their union excludes only the keys both exclude.
    auto own = c.excluding.find(slot);
    if (own == c.excluding.end()) return;
    std::vector<uint64_t> kept;
    for (uint64_t key : own->second)
      if (std::find(excluded, excluded + n, key) != excluded + n) kept.push_back(key);
      else
        unexclude(c, key, slot);
    own->second.swap(kept);
    return;
  }
  if (n > 0) {
    std::vector<uint64_t> keys(excluded, excluded + n);
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    auto& own = c.excluding[slot];
    try {
      for (uint64_t key : keys) {
        c.excluded.emplace(key, slot);
        own.push_back(key);
      }
    } catch (...) {
      for (uint64_t key : own) unexclude(c, key, slot);
      c.excluding.erase(slot);
      throw;
    }
  }
  try {
    append(c.complements, slot, position_key(slot, attnum, true));
  } catch (...) {
    drop(relid, attnum, slot);
    throw;
  }
}

void ColumnLists::drop(uint32_t relid, uint16_t attnum, uint32_t slot) {
  const uint32_t* i = column_of_.find(column_key(relid, attnum));
  if (i == nullptr) return;
  Column& c = columns_[*i];
  remove(c.nulls, position_key(slot, attnum, false));
  remove(c.complements, position_key(slot, attnum, true));
  auto own = c.excluding.find(slot);
  if (own == c.excluding.end()) return;
  for (uint64_t key : own->second) unexclude(c, key, slot);
  c.excluding.erase(own);
}

size_t ColumnLists::bytes() const noexcept {
  size_t total = columns_.capacity() * sizeof(Column) + positions_.size() * 16;
  for (const Column& c : columns_)
    total += (c.nulls.capacity() + c.complements.capacity()) * sizeof(uint32_t) +
             c.excluded.size() * 32 + c.excluding.size() * 48;
  return total;
}

}  // namespace shape_router
