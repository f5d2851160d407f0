// The routing index: binary fuse filter, PtrHash-style perfect hash, slot table,
// shape-list pool, overlay and tombstones. See include/shape_router/index.hpp.
#include "shape_router/index.hpp"
#include "shape_router/thread.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <new>
#include <stdexcept>
#include <system_error>
#include <thread>

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {

// A slot value or overlay entry with this bit names a list of shapes (its index
// in the pool or in lists) instead of one shape.
constexpr uint32_t kListFlag = 0x80000000u;

uint64_t default_mixer(uint64_t key, uint64_t seed) { return mix64(key ^ mix64(seed + kGoldenGamma)); }

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
    seed_mix_ = mix64(seed_ + kGoldenGamma);
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
    seed_mix_ = mix64(seed_ + kGoldenGamma);
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

// ---------------------------------------------------------------- threads

namespace {

// Below this many keys a second thread costs more than it saves.
constexpr size_t kParallelBuildMinKeys = size_t{1} << 16;

// Runs work(i) for i in [0, count) on the caller and, when worth it, one more
// thread. work must not throw.
template <typename Work>
void run_parts(size_t count, bool parallel, Work&& work) {
  std::atomic<size_t> next{0};
  auto worker = [&]() noexcept {
    for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) work(i);
  };
  std::thread helper;
  const bool helped = parallel && count > 1 && start_thread(helper, worker);
  worker();
  if (helped) helper.join();
}

}  // namespace

// ---------------------------------------------------------------- static part

bool build_static_part(std::vector<std::pair<uint64_t, uint32_t>>& pairs, Mixer mixer, StaticPart& out) {
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
  if (!part.filter.build(distinct, mixer) || !part.perfect_hash.build(distinct, mixer)) return false;
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
        if (pool.size() + (j - i) + 1 > 0x7fffffffu) throw std::bad_alloc();  // offsets have 31 bits
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

// ---------------------------------------------------------------- shape index

// A rebuild's input and output. The builder thread touches only this object
// (and the mixer, a plain function); `done` publishes its result.
struct ShapeIndex::BuildJob {
  // The shapes to build from: the index's own (a build in the caller, which
  // changes nothing meanwhile) or the job's copy (a background build).
  std::vector<Shape> shape_copy;
  std::vector<uint64_t> key_copy;
  const Shape* source_shapes = nullptr;
  size_t source_count = 0;
  const uint64_t* source_keys = nullptr;
  size_t changes = 0;  // changes_since_build_ at the snapshot, restored if the build cannot be used
  Mixer mixer = default_mixer;
  size_t part_keys = StaticIndex::kPartKeys;
  StaticIndex result;
  bool built = false;   // false: the keys defeat the hash functions
  bool failed = false;  // the build ran out of memory: nothing to install
  std::atomic<bool> done{false};
  std::thread thread;

  void run() noexcept {
    try {
      built = build_static_index(source_shapes, source_count, source_keys, mixer, part_keys, result);
    } catch (...) {
      failed = true;
    }
    std::vector<Shape>().swap(shape_copy);
    std::vector<uint64_t>().swap(key_copy);
    source_shapes = nullptr;
    source_keys = nullptr;
    done.store(true, std::memory_order_release);
  }
};

bool ShapeIndex::build_static_index(const Shape* shapes, size_t shape_count, const uint64_t* keys, Mixer mixer,
                                    size_t part_keys, StaticIndex& out) {
  auto keys_of_shape = [keys](const Shape& shape) {
    return shape.key_count == 1 ? &shape.key_or_offset : keys + shape.key_or_offset;
  };
  size_t total = 0;
  for (size_t slot = 0; slot < shape_count; slot++)
    if (shapes[slot].live) total += shapes[slot].key_count;
  StaticIndex index;
  if (total == 0) {
    out = std::move(index);
    return true;
  }
  const size_t part_count = StaticIndex::part_count_for(total, part_keys);
  index.parts.resize(part_count);

  // The shapes of each part (counting sort, ascending slots; a shape with several
  // keys in a part is listed once per key, adjacent): 4 bytes a key.
  std::vector<uint32_t> start(part_count + 1, 0);
  std::vector<uint32_t> members;
  if (part_count > 1) {
    for (size_t slot = 0; slot < shape_count; slot++) {
      const Shape& shape = shapes[slot];
      if (!shape.live) continue;
      const uint64_t* k = keys_of_shape(shape);
      for (uint32_t i = 0; i < shape.key_count; i++) start[StaticIndex::part_index(k[i], part_count) + 1]++;
    }
    for (size_t p = 0; p < part_count; p++) start[p + 1] += start[p];
    members.resize(total);
    std::vector<uint32_t> fill(start.begin(), start.end() - 1);
    for (size_t slot = 0; slot < shape_count; slot++) {
      const Shape& shape = shapes[slot];
      if (!shape.live) continue;
      const uint64_t* k = keys_of_shape(shape);
      for (uint32_t i = 0; i < shape.key_count; i++)
        members[fill[StaticIndex::part_index(k[i], part_count)]++] = static_cast<uint32_t>(slot);
    }
  }

  std::atomic<bool> defeated{false}, out_of_memory{false};
  run_parts(part_count, total >= kParallelBuildMinKeys, [&](size_t p) noexcept {
    if (defeated.load(std::memory_order_relaxed) || out_of_memory.load(std::memory_order_relaxed)) return;
    try {
      std::vector<std::pair<uint64_t, uint32_t>> pairs;
      auto take = [&](uint32_t slot) {
        const Shape& shape = shapes[slot];
        const uint64_t* k = keys_of_shape(shape);
        for (uint32_t i = 0; i < shape.key_count; i++)
          if (part_count == 1 || StaticIndex::part_index(k[i], part_count) == p) pairs.push_back({k[i], slot});
      };
      if (part_count == 1) {
        pairs.reserve(total);
        for (size_t slot = 0; slot < shape_count; slot++)
          if (shapes[slot].live) take(static_cast<uint32_t>(slot));
      } else {
        pairs.reserve(start[p + 1] - start[p]);
        for (uint32_t m = start[p]; m < start[p + 1]; m++)
          if (m == start[p] || members[m] != members[m - 1]) take(members[m]);
      }
      if (!build_static_part(pairs, mixer, index.parts[p])) defeated.store(true, std::memory_order_relaxed);
    } catch (...) {
      out_of_memory.store(true, std::memory_order_relaxed);
    }
  });
  if (out_of_memory.load()) throw std::bad_alloc();
  if (defeated.load()) return false;
  index.heads.reserve(index.parts.size());
  for (const StaticPart& part : index.parts) {
    index.keys += part.keys;
    index.heads.push_back(part.filter.head());  // the fingerprints stay where they are when index moves
  }
  if (index.keys >= StaticIndex::kFrontMinKeys) {
    index.front.assign((index.keys * 7 + 63) / 64, 0);  // 7 bits a key
    for (size_t slot = 0; slot < shape_count; slot++) {
      if (!shapes[slot].live) continue;
      const uint64_t* k = keys_of_shape(shapes[slot]);
      for (uint32_t i = 0; i < shapes[slot].key_count; i++) {
        const uint64_t h = StaticIndex::front_hash(k[i]);
        index.front[index.front_word(h)] |= StaticIndex::front_bits(h);
      }
    }
  }
  out = std::move(index);
  return true;
}

ShapeIndex::ShapeIndex(Mixer mixer) : mixer_(mixer) {}

ShapeIndex::~ShapeIndex() { wait_for_build(); }

void ShapeIndex::wait_for_build() noexcept {
  if (job_ && job_->thread.joinable()) job_->thread.join();
}

void ShapeIndex::Overlay::insert(uint64_t key, uint32_t slot) {
  const uint32_t* value = index.find(key);
  if (value == nullptr) {
    index.put(key, slot);
  } else if ((*value & kListFlag) == 0) {
    const uint32_t first = *value;
    lists.push_back({first, slot});
    index.put(key, kListFlag | static_cast<uint32_t>(lists.size() - 1));
  } else {
    lists[*value & 0x7fffffffu].push_back(slot);
  }
  keys++;
}

void ShapeIndex::add(uint32_t slot, const uint64_t* keys, size_t count, bool bulk) {
  if (slot >= shapes_.size()) shapes_.resize(static_cast<size_t>(slot) + 1);
  if (shapes_[slot].live) throw std::invalid_argument("shape slot already indexed");
  if (slot_tombstoned(slot)) throw std::invalid_argument("shape slot reused before the index was rebuilt");
  if (keys_.size() + count > UINT32_MAX) throw std::invalid_argument("too many keys");
  if (job_) added_during_build_.push_back(slot);  // may name a slot that is then not added: install checks
  size_t key_count = 0;
  uint64_t key_or_offset = 0;
  if (count == 1) {
    key_count = 1;
    key_or_offset = nonzero(keys[0]);
  } else if (count > 1) {
    // Deduplicated in place at the end of the key store (no temporary vector).
    const size_t offset = keys_.size();
    for (size_t i = 0; i < count; i++) keys_.push_back(nonzero(keys[i]));
    std::sort(keys_.begin() + static_cast<std::ptrdiff_t>(offset), keys_.end());
    keys_.erase(std::unique(keys_.begin() + static_cast<std::ptrdiff_t>(offset), keys_.end()), keys_.end());
    key_count = keys_.size() - offset;
    key_or_offset = offset;
    if (key_count == 1) {  // duplicates of one key
      key_or_offset = keys_[offset];
      keys_.resize(offset);
    }
  }

  Shape& shape = shapes_[slot];
  shape.key_or_offset = key_or_offset;
  shape.key_count = static_cast<uint32_t>(key_count);
  shape.epoch = epoch_;
  shape.live = 1;
  if (!bulk) {
    const uint64_t* shape_keys = keys_of(shape);
    for (size_t i = 0; i < key_count; i++) overlay_.insert(shape_keys[i], slot);
  }
  live_++;
  live_keys_ += key_count;
  // Keys, not shapes: a few shapes with long IN lists must still bring their
  // keys out of the overlay into the static part.
  changes_since_build_ += std::max<size_t>(1, shape.key_count);
}

void ShapeIndex::drop(uint32_t slot) {
  if (!contains_slot(slot)) return;
  Shape& shape = shapes_[slot];
  if (in_static(shape)) {
    if (tombstones_.size() * 64 <= slot) tombstones_.resize(slot / 64 + 1, 0);
    tombstones_[slot / 64] |= uint64_t{1} << (slot % 64);
    tombstone_count_++;
  } else {
    const uint64_t* shape_keys = keys_of(shape);
    for (uint32_t i = 0; i < shape.key_count; i++) {
      const uint64_t key = shape_keys[i];
      const uint32_t* value = overlay_.index.find(key);
      if (value == nullptr) continue;
      if ((*value & kListFlag) == 0) {
        if (*value == slot) {
          overlay_.index.erase(key);
          overlay_.keys--;
        }
        continue;
      }
      std::vector<uint32_t>& slots = overlay_.lists[*value & 0x7fffffffu];
      const size_t before = slots.size();
      slots.erase(std::remove(slots.begin(), slots.end(), slot), slots.end());
      overlay_.keys -= before - slots.size();
    }
  }
  // A shape of the snapshot being built: the new static part will name it.
  // (The bitmap covers every slot of the snapshot: no allocation here.)
  if (job_ && shape.epoch <= build_epoch_) {
    pending_tombstones_[slot / 64] |= uint64_t{1} << (slot % 64);
    pending_tombstone_count_++;
  }
  if (shape.key_count > 1) dead_keys_ += shape.key_count;
  live_keys_ -= shape.key_count;
  shape.live = 0;
  live_--;
  changes_since_build_ += std::max<size_t>(1, shape.key_count);
}

ShapeIndex::Probe ShapeIndex::lookup(uint64_t key, std::vector<uint32_t>& out) const {
  Probe probe;
  key = nonzero(key);
  const size_t p = static_.keys > 0 ? static_.part_of(key) : 0;
  if (static_.may_contain(key) && BinaryFuse8::contains(static_.heads[p], key)) {
    const StaticPart* part = &static_.parts[p];
    probe.filter_pass = true;
    const size_t s = part->perfect_hash.slot(key);
    if (part->slot_fingerprints[s] == slot_fingerprint(key)) {
      probe.slot_hit = true;
      const uint32_t value = part->slot_values[s];
      auto emit = [&](uint32_t shape_slot) {
        if (!bit(tombstones_, shape_slot)) out.push_back(shape_slot);
      };
      if ((value & kListFlag) == 0) {
        emit(value);
      } else {
        const uint32_t offset = value & 0x7fffffffu;
        for (uint32_t i = 0; i < part->pool[offset]; i++) emit(part->pool[offset + 1 + i]);
      }
    }
  }
  if (overlay_.keys > 0) {
    if (const uint32_t* value = overlay_.index.find(key)) {
      if ((*value & kListFlag) == 0) {
        out.push_back(*value);
      } else {
        const std::vector<uint32_t>& slots = overlay_.lists[*value & 0x7fffffffu];
        out.insert(out.end(), slots.begin(), slots.end());
      }
    }
  }
  return probe;
}

void ShapeIndex::prefetch(uint64_t key) const noexcept {
  if (static_.front.empty()) return;
  // The front filter's word: most lookups read nothing else.
  __builtin_prefetch(&static_.front[static_.front_word(StaticIndex::front_hash(nonzero(key)))]);
}

bool ShapeIndex::rebuild_due() const noexcept {
  // Enough registrations and drops since the last build (which also bounds the
  // overlay and the tombstones), or a key store mostly made of dropped shapes' keys.
  const bool changed = changes_since_build_ >= std::max<size_t>(4096, (static_.keys + overlay_.keys) / 4);
  const bool dead = dead_keys_ >= std::max<size_t>(4096, keys_.size() / 2);
  return changed || dead;
}

bool ShapeIndex::maintain(bool force) {
  const auto started = std::chrono::steady_clock::now();
  bool installed = false;
  if (job_ && (force || job_->done.load(std::memory_order_acquire))) {
    wait_for_build();
    std::unique_ptr<BuildJob> job = std::move(job_);
    installed = install(*job);
  }
  if (force || (!job_ && !installed && rebuild_due())) {
    const bool background = !force && live_keys_ >= background_min_keys_;
    std::unique_ptr<BuildJob> job = snapshot(background);
    if (background) {
      start_background(std::move(job));
    } else {
      job->run();
      const bool failed = job->failed;
      installed = install(*job) || installed;
      if (failed) throw std::bad_alloc();  // the caller must know: bulk-loaded keys are only in the build
    }
  }
  const uint64_t paused = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
  if (!force) longest_pause_ns_ = std::max(longest_pause_ns_, paused);  // forced: loading, not a pause
  return installed;
}

// Takes the live shapes for a build (copied when copy) and compacts the key
// store. From here on, drops of the snapshot's shapes are also noted for the new part.
std::unique_ptr<ShapeIndex::BuildJob> ShapeIndex::snapshot(bool copy) {
  auto job = std::make_unique<BuildJob>();
  job->mixer = mixer_;
  job->part_keys = part_keys_;
  std::vector<uint64_t> compact_keys;
  compact_keys.reserve(keys_.size() - dead_keys_);
  std::vector<uint64_t> pending(shapes_.size() / 64 + 1, 0);
  added_during_build_.reserve(64);
  // Shapes' new key offsets are applied only once every allocation has
  // succeeded: a bad_alloc anywhere above leaves the index as it was. Only
  // shapes with several keys have one.
  std::vector<std::pair<uint32_t, uint32_t>> new_offsets;  // (slot, offset)
  for (uint32_t slot = 0; slot < shapes_.size(); slot++) {
    const Shape& shape = shapes_[slot];
    if (!shape.live || shape.key_count <= 1) continue;
    const uint64_t* shape_keys = keys_of(shape);
    new_offsets.push_back({slot, static_cast<uint32_t>(compact_keys.size())});
    compact_keys.insert(compact_keys.end(), shape_keys, shape_keys + shape.key_count);
  }
  if (copy) {
    job->shape_copy = shapes_;
    job->key_copy = compact_keys;
  }
  for (const auto& [slot, offset] : new_offsets) {
    shapes_[slot].key_or_offset = offset;
    if (copy) job->shape_copy[slot].key_or_offset = offset;
  }
  keys_.swap(compact_keys);
  if (copy) {
    job->source_shapes = job->shape_copy.data();
    job->source_count = job->shape_copy.size();
    job->source_keys = job->key_copy.data();
  } else {
    job->source_shapes = shapes_.data();
    job->source_count = shapes_.size();
    job->source_keys = keys_.data();
  }
  dead_keys_ = 0;
  pending_tombstones_.swap(pending);
  pending_tombstone_count_ = 0;
  added_during_build_.clear();
  build_epoch_ = epoch_++;
  job->changes = changes_since_build_;
  changes_since_build_ = 0;
  builds_started_++;
  return job;
}

void ShapeIndex::start_background(std::unique_ptr<BuildJob> job) {
  BuildJob* raw = job.get();
  job_ = std::move(job);
  if (!start_thread(raw->thread, [raw] { raw->run(); }))
    raw->run();  // no thread to be had: build here; the next maintain() installs it
  background_builds_++;
}

// Makes job's result the static part. Shapes added since the snapshot form the
// new overlay; the snapshot's shapes dropped since are the new tombstones.
bool ShapeIndex::install(BuildJob& job) {
  if (job.failed) {
    // Out of memory while building: the current structures are exact; try again later.
    pending_tombstones_.clear();
    pending_tombstone_count_ = 0;
    added_during_build_.clear();
    changes_since_build_ += job.changes;
    return false;
  }
  if (!job.built) {
    fall_back_on_overlay();
    return true;
  }
  Overlay overlay;
  std::sort(added_during_build_.begin(), added_during_build_.end());
  added_during_build_.erase(std::unique(added_during_build_.begin(), added_during_build_.end()),
                            added_during_build_.end());
  for (uint32_t slot : added_during_build_) {
    const Shape& shape = shapes_[slot];
    if (!shape.live || shape.epoch <= build_epoch_) continue;
    const uint64_t* shape_keys = keys_of(shape);
    for (uint32_t i = 0; i < shape.key_count; i++) overlay.insert(shape_keys[i], slot);
  }
  // Nothing below allocates.
  static_ = std::move(job.result);
  static_epoch_ = build_epoch_;
  overlay_ = std::move(overlay);
  tombstones_.swap(pending_tombstones_);
  tombstone_count_ = pending_tombstone_count_;
  pending_tombstones_.clear();
  pending_tombstone_count_ = 0;
  added_during_build_.clear();
  rebuilds_++;
  return true;
}

// The keys defeat the hash functions: keep them all in the overlay, which is
// exact. Lookups stay correct, just slower.
void ShapeIndex::fall_back_on_overlay() {
  Overlay overlay;
  for (uint32_t slot = 0; slot < shapes_.size(); slot++) {
    const Shape& shape = shapes_[slot];
    if (!shape.live) continue;
    const uint64_t* shape_keys = keys_of(shape);
    for (uint32_t i = 0; i < shape.key_count; i++) overlay.insert(shape_keys[i], slot);
  }
  static_ = StaticIndex();
  static_epoch_ = 0;  // epochs start at 1: no shape is in the static part
  overlay_ = std::move(overlay);
  tombstones_.clear();
  tombstone_count_ = 0;
  pending_tombstones_.clear();
  pending_tombstone_count_ = 0;
  added_during_build_.clear();
  rebuilds_++;
}

IndexStats ShapeIndex::stats() const {
  IndexStats s;
  s.keys = static_.keys;
  for (const StaticPart& part : static_.parts) {
    s.filter_bytes += part.filter.bytes();
    s.perfect_hash_bytes += part.perfect_hash.bytes();
    s.slot_bytes += part.slot_fingerprints.size() * sizeof(uint8_t) + part.slot_values.size() * sizeof(uint32_t);
    s.pool_bytes += part.pool.size() * sizeof(uint32_t);
  }
  s.filter_bytes += static_.front.size() * sizeof(uint64_t);
  s.static_bytes = s.filter_bytes + s.perfect_hash_bytes + s.slot_bytes + s.pool_bytes;
  s.key_store_bytes = keys_.size() * sizeof(uint64_t) + shapes_.size() * sizeof(Shape);
  s.overlay_keys = overlay_.keys;
  s.tombstones = tombstone_count_;
  s.rebuilds = rebuilds_;
  s.builds_started = builds_started_;
  s.background_builds = background_builds_;
  s.build_running = job_ != nullptr;
  s.longest_pause_ns = longest_pause_ns_;
  return s;
}

}  // namespace shape_router
