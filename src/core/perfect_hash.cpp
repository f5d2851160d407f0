// Construction of the perfect hash (perfect_hash.hpp): buckets placed largest
// first, each on the first pilot that finds its keys free slots, else on the
// one whose evictions cost least.
#include "shape_router/perfect_hash.hpp"

#include <algorithm>
#include <cmath>

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {

bool PerfectHash::build(const std::vector<uint64_t>& keys, Mixer mixer) {
  mixer_ = mixer;
  const size_t n = keys.size();
  table_size_ = std::max<size_t>(1, static_cast<size_t>(std::ceil(static_cast<double>(n) / kPhfParams.load_factor)));
  buckets_ = std::max<size_t>(2, static_cast<size_t>(std::ceil(static_cast<double>(n) / kPhfParams.keys_per_bucket)));
  dense_buckets_ =
      std::max<size_t>(1, static_cast<size_t>(kPhfParams.dense_bucket_share * static_cast<double>(buckets_)));
  std::vector<uint64_t> hashes(n);
  for (int attempt = 0; attempt < kPhfParams.max_attempts; attempt++) {
    seed_ = mix64(kPhfParams.seed_base + static_cast<uint64_t>(attempt) * kSeedStep);
    seed_mix_ = mix64(seed_ + kGoldenGamma);
    for (int p = 0; p < kPilots; p++) pilot_keys_[p] = mix64(seed_ ^ (static_cast<uint64_t>(p) * kSeedStep + 1));
    for (size_t i = 0; i < n; i++) hashes[i] = mixer_(keys[i], seed_);
    if (try_build(hashes)) return true;
  }
  return false;
}

bool PerfectHash::try_build(const std::vector<uint64_t>& hashes) {
  const size_t n = hashes.size();
  // Keys grouped by bucket (counting sort).
  std::vector<uint32_t> start(buckets_ + 1, 0);
  std::vector<uint32_t> bucket(n);
  for (size_t i = 0; i < n; i++) {
    bucket[i] = static_cast<uint32_t>(bucket_of(hashes[i]));
    start[bucket[i] + 1]++;
  }
  for (size_t b = 0; b < buckets_; b++) start[b + 1] += start[b];
  std::vector<uint64_t> grouped(n);
  {
    std::vector<uint32_t> fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < n; i++) grouped[fill[bucket[i]]++] = hashes[i];
  }
  pilots_.assign(buckets_, 0);
  std::vector<int32_t> owner(table_size_, -1);  // slot → bucket, read only to evict
  std::vector<uint64_t> taken((table_size_ + 63) / 64, 0);  // 1 bit a slot: stays in cache
  auto is_taken = [&](size_t s) { return (taken[s >> 6] >> (s & 63)) & 1; };
  auto set_taken = [&](size_t s, bool on) {
    if (on)
      taken[s >> 6] |= uint64_t{1} << (s & 63);
    else
      taken[s >> 6] &= ~(uint64_t{1} << (s & 63));
  };
  // Largest buckets first (counting sort by size); evicted buckets are placed
  // again right away, from a stack.
  std::vector<uint32_t> order;
  {
    uint32_t max_size = 0;
    for (size_t b = 0; b < buckets_; b++) max_size = std::max(max_size, start[b + 1] - start[b]);
    std::vector<uint32_t> by_size(max_size + 2, 0);
    for (size_t b = 0; b < buckets_; b++) by_size[max_size - (start[b + 1] - start[b]) + 1]++;
    for (size_t i = 1; i < by_size.size(); i++) by_size[i] += by_size[i - 1];
    order.resize(buckets_);
    for (size_t b = 0; b < buckets_; b++) order[by_size[max_size - (start[b + 1] - start[b])]++] = static_cast<uint32_t>(b);
    while (!order.empty() && start[order.back() + 1] == start[order.back()]) order.pop_back();  // empty buckets
  }
  std::vector<uint32_t> evicted;
  size_t next = 0;

  std::vector<size_t> slots;
  std::vector<int32_t> victims;
  size_t evictions = 0;
  const size_t eviction_budget = kPhfParams.evictions_per_key * n + kPhfParams.min_evictions;
  uint32_t rotation = 0;
  while (next < order.size() || !evicted.empty()) {
    uint32_t b;
    if (!evicted.empty()) {
      b = evicted.back();
      evicted.pop_back();
    } else {
      b = order[next++];
    }
    const uint32_t first = start[b], size = start[b + 1] - start[b];
    // First a pilot that puts every key on a free slot, judged by the bitmap
    // alone (almost always found); only if none exists, the cheapest eviction.
    // (The most tried loop of a build: slots written in place, the bucket's
    // earlier slots compared inline.)
    int best_pilot = -1;
    slots.resize(size);
    for (int k = 0; k < kPilots && best_pilot < 0; k++) {
      const uint8_t pilot = static_cast<uint8_t>(k + rotation);
      uint32_t i = 0;
      for (; i < size; i++) {
        const size_t s = slot_for(grouped[first + i], pilot);
        if (is_taken(s)) break;
        uint32_t j = 0;
        while (j < i && slots[j] != s) j++;
        if (j < i) break;
        slots[i] = s;
      }
      if (i == size) best_pilot = pilot;
    }
    size_t best_cost = best_pilot >= 0 ? 0 : SIZE_MAX;
    int cheapest = -1;
    for (int k = 0; k < kPilots && best_pilot < 0; k++) {
      const uint8_t pilot = static_cast<uint8_t>(k + rotation);
      slots.clear();
      bool self_collision = false;
      size_t cost = 0;
      for (uint32_t i = 0; i < size; i++) {
        const size_t s = slot_for(grouped[first + i], pilot);
        if (std::find(slots.begin(), slots.end(), s) != slots.end()) {
          self_collision = true;
          break;
        }
        slots.push_back(s);
        if (is_taken(s)) {
          const int32_t other = owner[s];
          const size_t other_size = start[other + 1] - start[other];
          cost += other_size * other_size;  // evicting big buckets is costly
        }
      }
      if (!self_collision && cost < best_cost) {
        best_cost = cost;
        cheapest = pilot;
      }
    }
    if (best_pilot < 0) best_pilot = cheapest;
    if (best_pilot < 0) return false;  // the bucket's keys collide under every pilot
    // Hash-and-evict: displaced buckets go back to the queue.
    victims.clear();
    for (uint32_t i = 0; i < size; i++) {
      const size_t s = slot_for(grouped[first + i], static_cast<uint8_t>(best_pilot));
      if (is_taken(s) && std::find(victims.begin(), victims.end(), owner[s]) == victims.end())
        victims.push_back(owner[s]);
    }
    for (int32_t v : victims) {
      for (uint32_t i = start[v]; i < start[v + 1]; i++) {
        const size_t s = slot_for(grouped[i], pilots_[v]);
        owner[s] = -1;
        set_taken(s, false);
      }
      evicted.push_back(static_cast<uint32_t>(v));
      if (++evictions > eviction_budget) return false;
    }
    pilots_[b] = static_cast<uint8_t>(best_pilot);
    for (uint32_t i = 0; i < size; i++) {
      const size_t s = slot_for(grouped[first + i], pilots_[b]);
      owner[s] = static_cast<int32_t>(b);
      set_taken(s, true);
    }
    if (!victims.empty()) rotation += kPhfParams.rotation_step;
  }
  return true;
}

}  // namespace shape_router
