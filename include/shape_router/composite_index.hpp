// Composite atoms (router.h, SR_ATOM_COMPOSITE): "column a has key k, and the
// order key of column b lies in [lo, hi]". Shapes that share one equality key
// and each add a threshold on another column (project_id = p AND priority >= k)
// are kept per (relation, a, k, b) in a range column of their own, so a row
// with a = k reaches only the shapes whose threshold its b satisfies.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "shape_router/flat_map.hpp"
#include "shape_router/range_index.hpp"
#include "shape_router/router.h"

namespace shape_router {

class CompositeIndex {
 public:
  // Files slot under the atom (kind SR_ATOM_COMPOSITE) of relation relid.
  void add(uint32_t slot, uint32_t relid, const sr_index_atom& atom);
  // Removes every atom of slot; no effect when it has none.
  void drop(uint32_t slot);

  // Calls emit(slot) for each shape of relid filed under key on column attnum
  // (0: whichever column) whose range holds the row's value of its range
  // column: value_of(range_attnum) is a pointer to that order key, or nullptr
  // when the row has none (NULL, or not probed).
  template <typename ValueOf, typename Emit>
  void stab(uint32_t relid, uint64_t key, uint16_t attnum, ValueOf&& value_of, Emit&& emit) const {
    if (!may_have_key(key)) return;
    const uint32_t* first = by_key_.find(stored(key));
    for (uint32_t g = first == nullptr ? kNone : *first; g != kNone; g = groups_[g].next) {
      const Group& group = groups_[g];
      if (group.key != key || group.relid != relid || (attnum != 0 && group.attnum != attnum)) continue;
      if (const uint64_t* value = value_of(group.range_attnum)) group.ranges.stab(*value, emit);
    }
  }
  // Whether a group may be filed under key (any relation, column): never false for one that is.
  bool may_have_key(uint64_t key) const noexcept {
    if (key_words_.empty()) return false;
    const uint64_t h = key_hash(key), bits = key_bits(h);
    return (key_words_[(h >> 12) & (key_words_.size() - 1)] & bits) == bits;
  }
  bool has_slot(uint32_t slot) const { return groups_of_slot_.count(slot) > 0; }
  // Shapes filed under key (any column, any range column) in relid.
  size_t shapes_under(uint32_t relid, uint64_t key) const noexcept;

  // Folds the groups changed since the last call (all of them, with force).
  bool maintain(bool force);
  size_t entries() const noexcept { return entries_; }
  size_t bytes() const noexcept;  // an estimate, in O(1)

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static uint64_t stored(uint64_t key) noexcept { return key == 0 ? 1 : key; }  // FlatMap reserves 0
  struct Group {
    uint64_t key;
    uint32_t relid;
    uint16_t attnum;
    uint16_t range_attnum;
    uint32_t next;  // the next group whose key is stored alike, or kNone
    bool dirty = false;
    RangeColumn ranges;
  };
  void mark_dirty(uint32_t g);
  // Two bits of one word for each group's key (at least 16 bits a group; never
  // cleared, as groups stay): most keys of a row have no group and skip the
  // probe of by_key_ (about 1.5% of them do not).
  static uint64_t key_hash(uint64_t key) noexcept {  // half of mix64: enough for two bits and a word
    key = stored(key);
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    return key ^ (key >> 29);
  }
  static uint64_t key_bits(uint64_t h) noexcept { return (uint64_t{1} << (h & 63)) | (uint64_t{1} << ((h >> 6) & 63)); }
  std::vector<uint64_t> key_words_;  // a power of two of them

  FlatMap by_key_;  // stored key → its first group
  std::vector<Group> groups_;
  std::unordered_map<uint32_t, std::vector<uint32_t>> groups_of_slot_;
  std::vector<uint32_t> dirty_;
  size_t entries_ = 0;
};

}  // namespace shape_router
