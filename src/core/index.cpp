// The routing index: binary fuse filter, PtrHash-style perfect hash, slot table,
// shape-list pool, overlay and tombstones. See include/shape_router/index.hpp.
#include "shape_router/index.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {

uint64_t default_mixer(uint64_t key, uint64_t seed) { return mix64(key ^ mix64(seed + kSeedMixConstant)); }

namespace {

constexpr int kMaxBuildAttempts = 8;
constexpr uint64_t kSeedStep = 0xd1b54a32d192ed03ULL;

// Slot fingerprint: independent of the filter's (different mixing), so a key the
// filter wrongly lets through (1 in 256) is caught here with probability 255/256:
// about 1 probe in 65,536 of keys no shape has yields a (harmless) extra candidate.
inline uint8_t slot_fingerprint(uint64_t key) {
  return static_cast<uint8_t>(mix64(key + 0x5851f42d4c957f2dULL) >> 56);
}

// LSD radix sort on a 64-bit key, 16 bits a pass, skipping passes where every
// element has the same digit (several times faster than std::sort at 1M keys).
template <typename T, typename KeyOf>
void radix_sort(std::vector<T>& items, KeyOf key_of) {
  std::vector<T> buffer(items.size());
  std::vector<size_t> count(65536);
  for (int shift = 0; shift < 64; shift += 16) {
    std::fill(count.begin(), count.end(), 0);
    for (const T& item : items) count[(key_of(item) >> shift) & 0xffff]++;
    if (std::any_of(count.begin(), count.end(), [&](size_t c) { return c == items.size(); })) continue;
    size_t sum = 0;
    for (size_t& c : count) {
      const size_t here = c;
      c = sum;
      sum += here;
    }
    for (const T& item : items) buffer[count[(key_of(item) >> shift) & 0xffff]++] = item;
    items.swap(buffer);
  }
}

}  // namespace

// ---------------------------------------------------------------- binary fuse filter

bool BinaryFuse8::build(const std::vector<uint64_t>& keys, Mixer mixer) {
  mixer_ = mixer;
  fingerprints_.clear();
  if (keys.empty()) return true;
  const size_t n = keys.size();
  // Parameters of the paper's reference implementation for arity 3.
  const double log_n = std::log(static_cast<double>(std::max<size_t>(n, 2)));
  uint32_t segment_length = n == 0 ? 4 : 1u << static_cast<int>(std::floor(log_n / std::log(3.33) + 2.25));
  segment_length = std::min<uint32_t>(segment_length, 1u << 18);
  const double size_factor = n <= 1 ? 0 : std::max(1.125, 0.875 + 0.25 * std::log(1000000.0) / log_n);
  const size_t capacity = n <= 1 ? 0 : static_cast<size_t>(std::llround(static_cast<double>(n) * size_factor));
  size_t segment_count = (capacity + segment_length - 1) / segment_length;
  segment_count = segment_count > 2 ? segment_count - 2 : 1;
  segment_length_ = segment_length;
  segment_mask_ = segment_length - 1;

  std::vector<uint64_t> hashes(n);
  std::vector<uint8_t> count;  // a byte: a smaller working set; overflow retries
  std::vector<uint64_t> xor_hash;
  std::vector<uint32_t> queue;
  std::vector<uint64_t> stack_hash;
  std::vector<uint8_t> stack_which;
  stack_hash.reserve(n);
  stack_which.reserve(n);
  size_t array_length = 0;

  for (int attempt = 0; attempt < 64; attempt++) {
    // Just past a step of the segment length the paper's sizing can be too tight
    // to peel (also seen upstream): every 4 failed seeds, one more segment.
    if (attempt % 4 == 0) {
      if (attempt > 0) segment_count++;
      array_length = (segment_count + 2) * segment_length;
      segment_count_length_ = static_cast<uint32_t>(segment_count * segment_length);
      count.assign(array_length, 0);
      xor_hash.assign(array_length, 0);
      queue.reserve(array_length);
    }
    seed_ = mix64(0x726f757465ULL + static_cast<uint64_t>(attempt) * kSeedStep);
    seed_mix_ = mix64(seed_ + kSeedMixConstant);
    for (size_t i = 0; i < n; i++) hashes[i] = mixer_(keys[i], seed_);
    // Distinct keys may still share a hash under a weak mixer: one entry serves both.
    radix_sort(hashes, [](uint64_t h) { return h; });
    const size_t distinct = static_cast<size_t>(std::unique(hashes.begin(), hashes.end()) - hashes.begin());
    std::fill(count.begin(), count.end(), 0);
    std::fill(xor_hash.begin(), xor_hash.end(), 0);
    bool overflow = false;
    for (size_t i = 0; i < distinct; i++) {
      uint32_t p[3];
      positions(hashes[i], p[0], p[1], p[2]);
      for (uint32_t q : p) {
        overflow |= count[q] == 255;
        count[q]++;
        xor_hash[q] ^= hashes[i];
      }
    }
    if (overflow) continue;  // a cell shared by 255+ keys (only with a broken mixer): new seed
    // Peel cells holding a single key.
    queue.clear();
    for (uint32_t i = 0; i < array_length; i++)
      if (count[i] == 1) queue.push_back(i);
    stack_hash.clear();
    stack_which.clear();
    while (!queue.empty()) {
      const uint32_t cell = queue.back();
      queue.pop_back();
      if (count[cell] != 1) continue;
      const uint64_t h = xor_hash[cell];
      uint32_t p[3];
      positions(h, p[0], p[1], p[2]);
      const uint8_t which = p[0] == cell ? 0 : (p[1] == cell ? 1 : 2);
      stack_hash.push_back(h);
      stack_which.push_back(which);
      for (uint32_t q : p) {
        count[q]--;
        xor_hash[q] ^= h;
        if (count[q] == 1) queue.push_back(q);
      }
    }
    if (stack_hash.size() != distinct) continue;  // a 2-core remained: new seed
    fingerprints_.assign(array_length, 0);
    for (size_t i = stack_hash.size(); i-- > 0;) {
      const uint64_t h = stack_hash[i];
      uint32_t p[3];
      positions(h, p[0], p[1], p[2]);
      const uint8_t which = stack_which[i];
      fingerprints_[p[which]] = static_cast<uint8_t>(fingerprint(h) ^ fingerprints_[p[(which + 1) % 3]] ^
                                                     fingerprints_[p[(which + 2) % 3]]);
    }
    return true;
  }
  fingerprints_.clear();
  return false;
}

// ---------------------------------------------------------------- perfect hash

namespace {
constexpr double kKeysPerBucket = 3.0;  // λ: small buckets, so one-byte pilots suffice
constexpr double kLoadFactor = 0.90;    // near-minimal: table = n / 0.90 (fewer pilot tries)
}  // namespace

// Skewed buckets (PTHash): 60% of keys go to the first 30% of buckets, so the
// large buckets are placed first, while the table is empty.
bool PerfectHash::build(const std::vector<uint64_t>& keys, Mixer mixer) {
  mixer_ = mixer;
  const size_t n = keys.size();
  table_size_ = std::max<size_t>(1, static_cast<size_t>(std::ceil(static_cast<double>(n) / kLoadFactor)));
  buckets_ = std::max<size_t>(2, static_cast<size_t>(std::ceil(static_cast<double>(n) / kKeysPerBucket)));
  dense_buckets_ = std::max<size_t>(1, static_cast<size_t>(0.3 * static_cast<double>(buckets_)));
  std::vector<uint64_t> hashes(n);
  for (int attempt = 0; attempt < kMaxBuildAttempts; attempt++) {
    seed_ = mix64(0x6d706866ULL + static_cast<uint64_t>(attempt) * kSeedStep);
    seed_mix_ = mix64(seed_ + kSeedMixConstant);
    for (int p = 0; p < 256; p++) pilot_keys_[p] = mix64(seed_ ^ (static_cast<uint64_t>(p) * kSeedStep + 1));
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
  const size_t eviction_budget = 64 * n + 1024;
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
    int best_pilot = -1;
    for (int k = 0; k < 256 && best_pilot < 0; k++) {
      const uint8_t pilot = static_cast<uint8_t>(k + rotation);
      slots.clear();
      bool ok = true;
      for (uint32_t i = 0; i < size && ok; i++) {
        const size_t s = slot_for(grouped[first + i], pilot);
        ok = !is_taken(s) && std::find(slots.begin(), slots.end(), s) == slots.end();
        slots.push_back(s);
      }
      if (ok) best_pilot = pilot;
    }
    size_t best_cost = best_pilot >= 0 ? 0 : SIZE_MAX;
    int cheapest = -1;
    for (int k = 0; k < 256 && best_pilot < 0; k++) {
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
    if (!victims.empty()) rotation += 97;  // vary pilot order, so eviction cycles break
  }
  return true;
}

// ---------------------------------------------------------------- shape index

void ShapeIndex::add(uint32_t slot, const uint64_t* keys, size_t count, bool bulk) {
  if (slot >= shapes_.size()) shapes_.resize(static_cast<size_t>(slot) + 1);
  if (shapes_[slot].live) throw std::invalid_argument("shape slot already indexed");
  if (slot < tombstones_.size() * 64 && (tombstones_[slot / 64] >> (slot % 64) & 1))
    throw std::invalid_argument("shape slot reused before the index was rebuilt");
  if (keys_.size() + count > UINT32_MAX) throw std::invalid_argument("too many keys");
  // Deduplicated in place at the end of the key store (no temporary vector).
  const size_t offset = keys_.size();
  for (size_t i = 0; i < count; i++) keys_.push_back(nonzero(keys[i]));
  std::sort(keys_.begin() + static_cast<std::ptrdiff_t>(offset), keys_.end());
  keys_.erase(std::unique(keys_.begin() + static_cast<std::ptrdiff_t>(offset), keys_.end()), keys_.end());

  Shape& shape = shapes_[slot];
  shape.key_offset = static_cast<uint32_t>(offset);
  shape.key_count = static_cast<uint32_t>(keys_.size() - offset);
  shape.live = true;
  shape.in_static = false;
  if (!bulk)
    for (size_t i = offset; i < keys_.size(); i++) overlay_insert(keys_[i], slot);
  live_++;
  // Keys, not shapes: a few shapes with long IN lists must still bring their
  // keys out of the overlay into the static part.
  changes_since_build_ += std::max<size_t>(1, shape.key_count);
}

void ShapeIndex::overlay_insert(uint64_t key, uint32_t slot) {
  const uint32_t* value = overlay_index_.find(key);
  if (value == nullptr) {
    overlay_index_.put(key, slot);
  } else if ((*value & 0x80000000u) == 0) {
    const uint32_t first = *value;
    overlay_index_.put(key, 0x80000000u | static_cast<uint32_t>(overlay_lists_.size()));
    overlay_lists_.push_back({first, slot});
  } else {
    overlay_lists_[*value & 0x7fffffffu].push_back(slot);
  }
  overlay_keys_++;
}

void ShapeIndex::drop(uint32_t slot) {
  if (!contains_slot(slot)) return;
  Shape& shape = shapes_[slot];
  if (shape.in_static) {
    if (tombstones_.size() * 64 <= slot) tombstones_.resize(slot / 64 + 1, 0);
    tombstones_[slot / 64] |= uint64_t{1} << (slot % 64);
    tombstone_count_++;
  } else {
    for (uint32_t i = 0; i < shape.key_count; i++) {
      const uint64_t key = keys_[shape.key_offset + i];
      const uint32_t* value = overlay_index_.find(key);
      if (value == nullptr) continue;
      if ((*value & 0x80000000u) == 0) {
        if (*value == slot) {
          overlay_index_.erase(key);
          overlay_keys_--;
        }
        continue;
      }
      std::vector<uint32_t>& slots = overlay_lists_[*value & 0x7fffffffu];
      const size_t before = slots.size();
      slots.erase(std::remove(slots.begin(), slots.end(), slot), slots.end());
      overlay_keys_ -= before - slots.size();
    }
  }
  dead_keys_ += shape.key_count;
  shape.live = false;
  live_--;
  changes_since_build_ += std::max<size_t>(1, shape.key_count);
}

ShapeIndex::Probe ShapeIndex::lookup(uint64_t key, std::vector<uint32_t>& out) const {
  Probe probe;
  key = nonzero(key);
  if (static_keys_ > 0 && filter_.contains(key)) {
    probe.filter_pass = true;
    const size_t s = mphf_.slot(key);
    if (slot_fingerprints_[s] == slot_fingerprint(key)) {
      probe.slot_hit = true;
      const uint32_t value = slot_values_[s];
      auto emit = [&](uint32_t shape_slot) {
        if (shape_slot < tombstones_.size() * 64 && (tombstones_[shape_slot / 64] >> (shape_slot % 64) & 1)) return;
        out.push_back(shape_slot);
      };
      if ((value & 0x80000000u) == 0) {
        emit(value);
      } else {
        const uint32_t offset = value & 0x7fffffffu;
        for (uint32_t i = 0; i < pool_[offset]; i++) emit(pool_[offset + 1 + i]);
      }
    }
  }
  if (overlay_keys_ > 0) {
    if (const uint32_t* value = overlay_index_.find(key)) {
      if ((*value & 0x80000000u) == 0) {
        out.push_back(*value);
      } else {
        const std::vector<uint32_t>& slots = overlay_lists_[*value & 0x7fffffffu];
        out.insert(out.end(), slots.begin(), slots.end());
      }
    }
  }
  return probe;
}

bool ShapeIndex::maintain(bool force) {
  // Enough registrations and drops since the last build (which also bounds the
  // overlay and the tombstones), or a key store mostly made of dropped shapes' keys.
  const bool changed = changes_since_build_ >= std::max<size_t>(4096, (static_keys_ + overlay_keys_) / 4);
  const bool dead = dead_keys_ >= std::max<size_t>(4096, keys_.size() / 2);
  if (!force && !changed && !dead) return false;
  rebuild();
  return true;
}

void ShapeIndex::rebuild() {
  // Every live (key, shape) pair, grouped by key.
  std::vector<std::pair<uint64_t, uint32_t>> pairs;
  pairs.reserve(keys_.size() - dead_keys_);
  std::vector<uint64_t> compact_keys;
  compact_keys.reserve(keys_.size() - dead_keys_);
  // Shapes' new key offsets are applied only once every allocation has
  // succeeded: a bad_alloc anywhere below leaves the index as it was.
  std::vector<uint32_t> new_offsets(shapes_.size(), 0);
  size_t shapes_in_static = 0;
  for (uint32_t slot = 0; slot < shapes_.size(); slot++) {
    const Shape& shape = shapes_[slot];
    if (!shape.live) continue;
    new_offsets[slot] = static_cast<uint32_t>(compact_keys.size());
    for (uint32_t i = 0; i < shape.key_count; i++) {
      const uint64_t k = keys_[shape.key_offset + i];
      compact_keys.push_back(k);
      pairs.push_back({k, slot});
    }
    shapes_in_static++;
  }
  auto commit_offsets = [&](bool in_static) noexcept {
    for (uint32_t slot = 0; slot < shapes_.size(); slot++) {
      Shape& shape = shapes_[slot];
      if (!shape.live) {
        shape.key_count = 0;
        continue;
      }
      shape.key_offset = new_offsets[slot];
      shape.in_static = in_static;
    }
  };
  // By key, then slot (slots were appended in ascending order, and the sort is stable).
  radix_sort(pairs, [](const std::pair<uint64_t, uint32_t>& p) { return p.first; });
  std::vector<uint64_t> distinct;
  distinct.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); i++)
    if (i == 0 || pairs[i].first != pairs[i - 1].first) distinct.push_back(pairs[i].first);

  BinaryFuse8 filter;
  PerfectHash mphf;
  const bool built = distinct.empty() || (filter.build(distinct, mixer_) && mphf.build(distinct, mixer_));
  if (!built) {
    // The keys defeat the hash functions (only a broken mixer does this): keep
    // them all in the overlay, which is exact. Lookups stay correct, just slower.
    FlatMap overlay;
    overlay.reserve(distinct.size());
    overlay_index_ = std::move(overlay);
    overlay_lists_.clear();
    overlay_keys_ = 0;
    for (const auto& pair : pairs) overlay_insert(pair.first, pair.second);
    keys_.swap(compact_keys);
    commit_offsets(false);
    dead_keys_ = 0;
    tombstones_.clear();
    tombstone_count_ = 0;
    filter_ = BinaryFuse8();
    mphf_ = PerfectHash();
    slot_fingerprints_ = {};
    slot_values_ = {};
    pool_ = {};
    static_keys_ = 0;
    static_shapes_ = 0;
    changes_since_build_ = 0;
    rebuilds_++;
    return;
  }

  std::vector<uint8_t> fingerprints(distinct.empty() ? 0 : mphf.table_size(), 0);
  std::vector<uint32_t> values(fingerprints.size(), 0);
  std::vector<uint32_t> pool;
  // Lists shared by several keys are stored once (deduplicated by content).
  FlatMap list_offsets;  // hash of list → offset (collisions verified by comparison)
  size_t i = 0;
  while (i < pairs.size()) {
    size_t j = i;
    while (j < pairs.size() && pairs[j].first == pairs[i].first) j++;
    const uint64_t key = pairs[i].first;
    const size_t s = mphf.slot(key);
    fingerprints[s] = slot_fingerprint(key);
    if (j - i == 1) {
      values[s] = pairs[i].second;
    } else {
      uint64_t list_hash = j - i;
      for (size_t k = i; k < j; k++) list_hash = mix64(list_hash ^ pairs[k].second);
      list_hash = nonzero(list_hash);
      uint32_t offset = UINT32_MAX;
      if (const uint32_t* found = list_offsets.find(list_hash)) {
        bool same = pool[*found] == j - i;
        for (size_t k = i; same && k < j; k++) same = pool[*found + 1 + (k - i)] == pairs[k].second;
        if (same) offset = *found;
      }
      if (offset == UINT32_MAX) {
        if (pool.size() + (j - i) + 1 > 0x7fffffffu) throw std::invalid_argument("shape-list pool too large");
        offset = static_cast<uint32_t>(pool.size());
        pool.push_back(static_cast<uint32_t>(j - i));
        for (size_t k = i; k < j; k++) pool.push_back(pairs[k].second);
        list_offsets.put(list_hash, offset);
      }
      values[s] = 0x80000000u | offset;
    }
    i = j;
  }

  filter_ = std::move(filter);
  mphf_ = std::move(mphf);
  slot_fingerprints_ = std::move(fingerprints);
  slot_values_ = std::move(values);
  pool_ = std::move(pool);
  static_keys_ = distinct.size();
  static_shapes_ = shapes_in_static;
  keys_.swap(compact_keys);
  commit_offsets(true);
  dead_keys_ = 0;
  tombstones_.clear();
  tombstone_count_ = 0;
  overlay_index_ = FlatMap();
  overlay_lists_.clear();
  overlay_keys_ = 0;
  changes_since_build_ = 0;
  rebuilds_++;
}

IndexStats ShapeIndex::stats() const {
  IndexStats s;
  s.keys = static_keys_;
  s.filter_bytes = filter_.bytes();
  s.mphf_bytes = mphf_.bytes();
  s.slot_bytes = slot_fingerprints_.size() * sizeof(uint8_t) + slot_values_.size() * sizeof(uint32_t);
  s.pool_bytes = pool_.size() * sizeof(uint32_t);
  s.static_bytes = s.filter_bytes + s.mphf_bytes + s.slot_bytes + s.pool_bytes;
  s.key_store_bytes = keys_.size() * sizeof(uint64_t) + shapes_.size() * sizeof(Shape);
  s.overlay_keys = overlay_keys_;
  s.tombstones = tombstone_count_;
  s.rebuilds = rebuilds_;
  return s;
}

}  // namespace shape_router
