// Construction of one part of the static index (static_index.hpp): its filter,
// perfect hash, slot table and pool of shape lists.
#include "shape_router/static_index.hpp"

#include <new>

#include "radix_sort.hpp"
#include "shape_router/flat_map.hpp"

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {

bool build_static_part(std::vector<std::pair<uint64_t, uint32_t>>& pairs, Mixer mixer, StaticPart& out,
                       bool with_filter) {
  // By key, then slot (slots come in ascending order, and the sort is stable).
  radix_sort(pairs, [](const std::pair<uint64_t, uint32_t>& p) { return p.first; });
  std::vector<uint64_t> distinct;
  distinct.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); i++)
    if (i == 0 || pairs[i].first != pairs[i - 1].first) distinct.push_back(pairs[i].first);

  StaticPart part;
  if (distinct.empty()) {
    out = std::move(part);
    return true;
  }
  // Filter first, then the perfect hash: their temporaries are never held at once
  // (parts, not these two, are what runs in parallel).
  if ((with_filter && !part.filter.build(distinct, mixer)) || !part.perfect_hash.build(distinct, mixer)) return false;
  part.keys = distinct.size();
  std::vector<uint64_t>().swap(distinct);  // freed before the slot table is allocated

  part.slot_fingerprints.assign(part.perfect_hash.table_size(), 0);
  part.slot_values.assign(part.perfect_hash.table_size(), 0);
  // Lists shared by several keys are stored once (deduplicated by content).
  FlatMap list_offsets;  // hash of list → offset (collisions verified by comparison)
  std::vector<uint32_t>& pool = part.pool;
  size_t i = 0;
  while (i < pairs.size()) {
    size_t j = i;
    while (j < pairs.size() && pairs[j].first == pairs[i].first) j++;
    const uint64_t key = pairs[i].first;
    const size_t s = part.perfect_hash.slot(key);
    part.slot_fingerprints[s] = slot_fingerprint(key);
    if (j - i == 1) {
      part.slot_values[s] = pairs[i].second;
    } else {
      uint64_t list_hash = j - i;
      for (size_t k = i; k < j; k++) list_hash = mix64(list_hash ^ pairs[k].second);
      list_hash = list_hash == 0 ? 1 : list_hash;
      uint32_t offset = UINT32_MAX;
      if (const uint32_t* found = list_offsets.find(list_hash)) {
        bool same = pool[*found] == j - i;
        for (size_t k = i; same && k < j; k++) same = pool[*found + 1 + (k - i)] == pairs[k].second;
        if (same) offset = *found;
      }
      if (offset == UINT32_MAX) {
        if (pool.size() + (j - i) + 1 > kListIndexMask) throw std::bad_alloc();  // offsets have 31 bits
        offset = static_cast<uint32_t>(pool.size());
        pool.push_back(static_cast<uint32_t>(j - i));
        for (size_t k = i; k < j; k++) pool.push_back(pairs[k].second);
        list_offsets.put(list_hash, offset);
      }
      part.slot_values[s] = kListFlag | offset;
    }
    i = j;
  }
  out = std::move(part);
  return true;
}

}  // namespace shape_router
