// Composite atoms: per (relation, equality column, key, range column), a range
// column of the shapes filed there. No PostgreSQL header may be included here.
#include "shape_router/composite_index.hpp"

#include <algorithm>
#include <stdexcept>

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {

void CompositeIndex::add(uint32_t slot, uint32_t relid, const sr_index_atom& atom) {
  if (atom.kind != SR_ATOM_COMPOSITE || atom.lower > atom.upper) throw std::invalid_argument("composite atom");
  // The head's value, not a pointer into by_key_: reserve() below may move it.
  const uint32_t* found = by_key_.find(stored(atom.key));
  const uint32_t head = found == nullptr ? kNone : *found;
  uint32_t g = head;
  while (g != kNone && !(groups_[g].key == atom.key && groups_[g].relid == relid && groups_[g].attnum == atom.attnum &&
                         groups_[g].range_attnum == atom.range_attnum))
    g = groups_[g].next;
  // Every allocation before any change: a bad_alloc leaves the index as it was.
  std::vector<uint32_t>& of_slot = groups_of_slot_[slot];
  reserve_one_more(of_slot);
  reserve_one_more(dirty_);
  if (g == kNone) {
    reserve_one_more(groups_);
    by_key_.reserve(by_key_.size() + 1);
    if ((groups_.size() + 1) * 16 > key_words_.size() * 64) {
      std::vector<uint64_t> words(std::max<size_t>(8, key_words_.size() * 2), 0);
      for (const Group& group : groups_) {
        const uint64_t h = key_hash(group.key);
        words[(h >> 12) & (words.size() - 1)] |= key_bits(h);
      }
      key_words_.swap(words);
    }
    g = static_cast<uint32_t>(groups_.size());
    groups_.push_back(Group{atom.key, relid, atom.attnum, atom.range_attnum, head, false, RangeColumn()});
    by_key_.put(stored(atom.key), g);
    const uint64_t h = key_hash(atom.key);
    key_words_[(h >> 12) & (key_words_.size() - 1)] |= key_bits(h);
  }
  try {
    groups_[g].ranges.add(slot, atom.lower, atom.upper);
  } catch (...) {
    if (of_slot.empty()) groups_of_slot_.erase(slot);
    throw;
  }
  if (std::find(of_slot.begin(), of_slot.end(), g) == of_slot.end()) of_slot.push_back(g);
  mark_dirty(g);
  entries_++;
}

void CompositeIndex::drop(uint32_t slot) {
  auto it = groups_of_slot_.find(slot);
  if (it == groups_of_slot_.end()) return;
  for (uint32_t g : it->second) {
    const size_t before = groups_[g].ranges.entries();
    groups_[g].ranges.drop(slot);
    entries_ -= before - groups_[g].ranges.entries();
    mark_dirty(g);
  }
  groups_of_slot_.erase(it);
}

void CompositeIndex::mark_dirty(uint32_t g) {
  if (groups_[g].dirty) return;
  groups_[g].dirty = true;
  dirty_.push_back(g);  // within the capacity reserved by add(), or growing in drop()
}

size_t CompositeIndex::shapes_under(uint32_t relid, uint64_t key) const noexcept {
  const uint32_t* first = groups_.empty() ? nullptr : by_key_.find(stored(key));
  size_t n = 0;
  for (uint32_t g = first == nullptr ? kNone : *first; g != kNone; g = groups_[g].next)
    if (groups_[g].key == key && groups_[g].relid == relid) n += groups_[g].ranges.entries();
  return n;
}

bool CompositeIndex::maintain(bool force) {
  bool rebuilt = false;
  size_t kept = 0;
  for (uint32_t g : dirty_) {
    rebuilt |= groups_[g].ranges.maintain(force);
    // Still unfolded changes (below a quarter of the group): looked at again next time.
    if (groups_[g].ranges.pending_changes() > 0)
      dirty_[kept++] = g;
    else
      groups_[g].dirty = false;
  }
  dirty_.resize(kept);
  return rebuilt;
}

// An estimate in O(1) (it is read at every commit): each entry as a range
// column keeps it (24 bytes, and its slot again once built), each slot's group list.
size_t CompositeIndex::bytes() const noexcept {
  return groups_.capacity() * sizeof(Group) + by_key_.capacity() * 16 + dirty_.capacity() * 4 + entries_ * 28 +
         key_words_.capacity() * 8 +
         groups_of_slot_.size() * 48;
}

}  // namespace shape_router
