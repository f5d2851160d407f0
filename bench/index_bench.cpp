// Micro-benchmarks of the routing index (src/core/shape_index.cpp) beside a
// Swiss table (absl::flat_hash_map<uint64_t, uint32_t>) and
// std::unordered_map<uint64_t, uint32_t> holding the same data, at 1M and 10M
// keys (the benchmark argument).
//
// Data set per size n: n distinct random 64-bit keys; most keys have one shape,
// every 16th key has 4 (an IN list shared by several shapes, say). Every structure
// stores the same thing: key → one shape slot, or (high bit set) an offset into a
// pool of shape lists [count, slots...]; a lookup appends the key's slots to a
// vector, as ShapeIndex::lookup does. Each structure is built once per size
// (function-local static caches) and then probed:
//
//   Miss       random non-keys (what most row changes are: no shape wants them)
//   Hit1       random keys with one shape
//   Hit4       random keys with four shapes
//   Hit1Chain  as Hit1, but each probe's key is picked using the previous
//              lookup's result (a data dependency), so lookups cannot overlap:
//              latency rather than throughput. In the plugin a lookup sits
//              between much other work (decoding, the gate), closer to this.
//
// The probe keys are precomputed arrays walked in order: no generator or
// division in the timed loop (both cost as much as a lookup and change how far
// the CPU overlaps consecutive lookups).
//
// Counters (the same on every benchmark of one structure and size):
//   build_ns_per_key   ShapeIndex: maintain(true) after adding every shape (bulk
//                      add, as the plugin loads its catalog), per distinct key;
//                      add_ns_per_key is the adds alone. Swiss table and
//                      unordered_map: reserve(n) + n inserts (+ the pool).
//   bytes_per_key      ShapeIndex: stats().static_bytes / keys (filter + pilots +
//                      slot table + pool: all a lookup touches); key_store_bytes is
//                      reported apart (per-shape keys kept only for rebuilds).
//                      Swiss table: capacity() * (sizeof(slot) + 1) / size(), slot =
//                      pair<uint64_t, uint32_t> (16 bytes) and one control byte per
//                      slot (exact up to the table's ~16 cloned control bytes), plus
//                      the pool. unordered_map: an ESTIMATE, bucket_count() * 8 +
//                      size() * 32 (a 24-byte node: next, key, value - the hash of
//                      an integer key is not cached - in a 32-byte malloc chunk),
//                      plus the pool.
//
// Run: make bench, or make bench/bin/index_bench && ./bench/bin/index_bench.
#include <benchmark/benchmark.h>

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "shape_router/shape_index.hpp"

namespace {

using shape_router::ShapeIndex;

constexpr size_t kProbes = 1 << 20;  // probe keys per kind, cycled through
constexpr uint32_t kPoolBit = 0x80000000u;

struct DataSet {
  std::vector<uint64_t> keys;        // distinct
  std::vector<uint64_t> miss;        // kProbes non-keys
  std::vector<uint64_t> hit1;        // kProbes keys with one shape, random order
  std::vector<uint64_t> hit4;        // kProbes keys with four shapes, random order
  static bool multi(size_t i) { return i % 16 == 15; }
  static int shapes_of(size_t i) { return multi(i) ? 4 : 1; }
};

const DataSet& data(size_t n) {
  static std::map<size_t, std::unique_ptr<DataSet>> cache;
  std::unique_ptr<DataSet>& slot = cache[n];
  if (slot) return *slot;
  slot = std::make_unique<DataSet>();
  DataSet& d = *slot;
  std::mt19937_64 rng(20261121 + n);
  std::unordered_set<uint64_t> seen;
  seen.reserve(n + kProbes);
  d.keys.reserve(n);
  while (d.keys.size() < n) {
    const uint64_t k = rng();
    if (k > 1 && seen.insert(k).second) d.keys.push_back(k);
  }
  while (d.miss.size() < kProbes) {
    const uint64_t k = rng();
    if (k > 1 && !seen.count(k)) d.miss.push_back(k);
  }
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  while (d.hit1.size() < kProbes || d.hit4.size() < kProbes) {
    const size_t i = pick(rng);
    std::vector<uint64_t>& to = DataSet::multi(i) ? d.hit4 : d.hit1;
    if (to.size() < kProbes) to.push_back(d.keys[i]);
  }
  return d;
}

double ns_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

struct Counters {
  double build_ns_per_key = 0;
  double add_ns_per_key = -1;
  double bytes_per_key = 0;
  double key_store_bytes_per_key = -1;
  double pool_bytes_per_key = 0;  // part of bytes_per_key: the lists of multi-shape keys
};

void report(benchmark::State& state, const Counters& c) {
  state.counters["build_ns_per_key"] = c.build_ns_per_key;
  if (c.add_ns_per_key >= 0) state.counters["add_ns_per_key"] = c.add_ns_per_key;
  state.counters["bytes_per_key"] = c.bytes_per_key;
  if (c.key_store_bytes_per_key >= 0) state.counters["key_store_bytes_per_key"] = c.key_store_bytes_per_key;
  state.counters["pool_bytes_per_key"] = c.pool_bytes_per_key;
}

// ---------------------------------------------------------------- ShapeIndex

struct IndexBuilt {
  ShapeIndex index;
  Counters counters;
};

IndexBuilt& shape_index(size_t n) {
  static std::map<size_t, std::unique_ptr<IndexBuilt>> cache;
  std::unique_ptr<IndexBuilt>& slot = cache[n];
  if (slot) return *slot;
  const DataSet& d = data(n);
  slot = std::make_unique<IndexBuilt>();
  IndexBuilt& b = *slot;
  // Shapes are added shape by shape: a multi-shape key's four shapes each name it.
  auto t0 = std::chrono::steady_clock::now();
  uint32_t next = 0;
  for (size_t i = 0; i < n; ++i)
    for (int s = 0; s < DataSet::shapes_of(i); ++s) b.index.add(next++, &d.keys[i], 1, /*bulk=*/true);
  b.counters.add_ns_per_key = ns_since(t0) / static_cast<double>(n);
  t0 = std::chrono::steady_clock::now();
  b.index.maintain(true);
  b.counters.build_ns_per_key = ns_since(t0) / static_cast<double>(n);
  const shape_router::IndexStats s = b.index.stats();
  if (s.keys != n) std::abort();  // the static part must hold every key
  b.counters.bytes_per_key = static_cast<double>(s.static_bytes) / static_cast<double>(s.keys);
  b.counters.key_store_bytes_per_key = static_cast<double>(s.key_store_bytes) / static_cast<double>(s.keys);
  b.counters.pool_bytes_per_key = static_cast<double>(s.pool_bytes) / static_cast<double>(s.keys);
  return b;
}

// chained: the next probe depends on the slot this one returned (slots are
// below 2^31, so the step is always 1, but the CPU must wait for the value).
void run_index(benchmark::State& state, const std::vector<uint64_t> DataSet::*probes, bool chained = false) {
  const size_t n = static_cast<size_t>(state.range(0));
  IndexBuilt& b = shape_index(n);
  const std::vector<uint64_t>& keys = data(n).*probes;
  std::vector<uint32_t> out;
  out.reserve(16);
  size_t i = 0, found = 0;
  for (auto _ : state) {
    out.clear();
    b.index.lookup(keys[i & (kProbes - 1)], out);
    i += chained ? 1 + (out[0] >> 31) : 1;
    found += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  benchmark::DoNotOptimize(found);
  state.counters["slots_per_lookup"] = static_cast<double>(found) / static_cast<double>(state.iterations());
  report(state, b.counters);
}

void BM_ShapeIndex_Miss(benchmark::State& state) { run_index(state, &DataSet::miss); }
void BM_ShapeIndex_Hit1(benchmark::State& state) { run_index(state, &DataSet::hit1); }
void BM_ShapeIndex_Hit4(benchmark::State& state) { run_index(state, &DataSet::hit4); }
void BM_ShapeIndex_Hit1Chain(benchmark::State& state) { run_index(state, &DataSet::hit1, true); }

// ---------------------------------------------------------------- rebuild pause
//
// What a rebuild costs the decoding thread. An index of n keys: 3/4 of them
// built, the last quarter added one shape at a time (the overlay, just at the
// rebuild threshold). Then:
//   sync_ms            maintain() with background builds off: the whole rebuild
//                      runs in the caller (n keys)
//   start_pause_ms     maintain() with background builds on: the snapshot (a copy
//                      of the live keys) and starting the thread
//   background_ms      waiting for the build on the thread (not paid by the caller)
//   install_pause_ms   the maintain() that installs it
// The iteration time is start + install: what the caller pays.
void BM_ShapeIndex_RebuildPause(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const DataSet& d = data(n);
  const size_t built = n - n / 4;
  double sync_ms = 0, start_ms = 0, background_ms = 0, install_ms = 0;
  for (auto _ : state) {
    for (int background = 0; background < 2; ++background) {
      ShapeIndex index;
      for (size_t i = 0; i < built; ++i) index.add(static_cast<uint32_t>(i), &d.keys[i], 1, /*bulk=*/true);
      index.maintain(true);
      for (size_t i = built; i < n; ++i) index.add(static_cast<uint32_t>(i), &d.keys[i], 1);
      const size_t background_min = shape_router::kShapeIndexParams.rebuild.background_min_entries;
      index.set_background_min_keys(background ? background_min : SIZE_MAX);
      auto t0 = std::chrono::steady_clock::now();
      const bool installed = index.maintain(false);
      const double first_ms = ns_since(t0) / 1e6;
      if (!background) {
        if (!installed) std::abort();
        sync_ms += first_ms;
        continue;
      }
      if (installed || !index.stats().build_running) std::abort();
      start_ms += first_ms;
      t0 = std::chrono::steady_clock::now();
      index.wait_for_build();
      background_ms += ns_since(t0) / 1e6;
      t0 = std::chrono::steady_clock::now();
      if (!index.maintain(false)) std::abort();
      const double install = ns_since(t0) / 1e6;
      install_ms += install;
      if (index.stats().keys != n || index.stats().overlay_keys != 0) std::abort();
      state.SetIterationTime((first_ms + install) / 1e3);
    }
  }
  const double it = static_cast<double>(state.iterations());
  state.counters["sync_ms"] = sync_ms / it;
  state.counters["start_pause_ms"] = start_ms / it;
  state.counters["background_ms"] = background_ms / it;
  state.counters["install_pause_ms"] = install_ms / it;
}

// ---------------------------------------------------------------- hash maps

// key → slot, or kPoolBit | offset into pool ([count, slots...]).
template <typename Map>
struct MapBuilt {
  Map map;
  std::vector<uint32_t> pool;
  Counters counters;
};

template <typename Map>
void fill(MapBuilt<Map>& b, const DataSet& d) {
  const size_t n = d.keys.size();
  uint32_t next = 0;
  b.map.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (DataSet::multi(i)) {
      b.map.emplace(d.keys[i], kPoolBit | static_cast<uint32_t>(b.pool.size()));
      b.pool.push_back(4);
      for (int s = 0; s < 4; ++s) b.pool.push_back(next++);
    } else {
      b.map.emplace(d.keys[i], next++);
    }
  }
}

template <typename Map>
inline void map_lookup(const MapBuilt<Map>& b, uint64_t key, std::vector<uint32_t>& out) {
  auto it = b.map.find(key);
  if (it == b.map.end()) return;
  const uint32_t v = it->second;
  if ((v & kPoolBit) == 0) {
    out.push_back(v);
  } else {
    const uint32_t* list = &b.pool[v & ~kPoolBit];
    out.insert(out.end(), list + 1, list + 1 + list[0]);
  }
}

using Swiss = absl::flat_hash_map<uint64_t, uint32_t>;
using Unordered = std::unordered_map<uint64_t, uint32_t>;

// Bytes of a map's table, without the pool.
double table_bytes(const Swiss& map) {
  // capacity() slots of sizeof(value_type) bytes plus one control byte each.
  return static_cast<double>(map.capacity()) * (sizeof(Swiss::value_type) + 1);
}
double table_bytes(const Unordered& map) {
  // Estimate: 8 bytes a bucket, a 32-byte malloc chunk a node.
  return static_cast<double>(map.bucket_count()) * 8 + static_cast<double>(map.size()) * 32;
}

template <typename Map>
MapBuilt<Map>& built_map(size_t n) {
  static std::map<size_t, std::unique_ptr<MapBuilt<Map>>> cache;
  std::unique_ptr<MapBuilt<Map>>& slot = cache[n];
  if (slot) return *slot;
  const DataSet& d = data(n);
  slot = std::make_unique<MapBuilt<Map>>();
  MapBuilt<Map>& b = *slot;
  const auto t0 = std::chrono::steady_clock::now();
  fill(b, d);
  b.counters.build_ns_per_key = ns_since(t0) / static_cast<double>(n);
  const double pool = static_cast<double>(b.pool.size() * 4), keys = static_cast<double>(b.map.size());
  b.counters.bytes_per_key = (table_bytes(b.map) + pool) / keys;
  b.counters.pool_bytes_per_key = pool / keys;
  return b;
}

MapBuilt<Swiss>& swiss(size_t n) { return built_map<Swiss>(n); }
MapBuilt<Unordered>& unordered(size_t n) { return built_map<Unordered>(n); }

template <typename Map>
void run_map(benchmark::State& state, MapBuilt<Map>& (*built)(size_t), const std::vector<uint64_t> DataSet::*probes,
             bool chained = false) {
  const size_t n = static_cast<size_t>(state.range(0));
  MapBuilt<Map>& b = built(n);
  const std::vector<uint64_t>& keys = data(n).*probes;
  std::vector<uint32_t> out;
  out.reserve(16);
  size_t i = 0, found = 0;
  for (auto _ : state) {
    out.clear();
    map_lookup(b, keys[i & (kProbes - 1)], out);
    i += chained ? 1 + (out[0] >> 31) : 1;
    found += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  benchmark::DoNotOptimize(found);
  state.counters["slots_per_lookup"] = static_cast<double>(found) / static_cast<double>(state.iterations());
  report(state, b.counters);
}

void BM_Swiss_Miss(benchmark::State& state) { run_map(state, swiss, &DataSet::miss); }
void BM_Swiss_Hit1(benchmark::State& state) { run_map(state, swiss, &DataSet::hit1); }
void BM_Swiss_Hit4(benchmark::State& state) { run_map(state, swiss, &DataSet::hit4); }
void BM_Swiss_Hit1Chain(benchmark::State& state) { run_map(state, swiss, &DataSet::hit1, true); }
void BM_Unordered_Miss(benchmark::State& state) { run_map(state, unordered, &DataSet::miss); }
void BM_Unordered_Hit1(benchmark::State& state) { run_map(state, unordered, &DataSet::hit1); }
void BM_Unordered_Hit4(benchmark::State& state) { run_map(state, unordered, &DataSet::hit4); }
void BM_Unordered_Hit1Chain(benchmark::State& state) { run_map(state, unordered, &DataSet::hit1, true); }

// Lookups are ~10-100 ns: 0.2 s of them is millions, plenty; the builds (done
// once per size, outside the timed loops) dominate the run time.
void sizes(benchmark::internal::Benchmark* b) { b->Arg(1000000)->Arg(10000000)->MinTime(0.2); }

}  // namespace

BENCHMARK(BM_ShapeIndex_Miss)->Apply(sizes);
BENCHMARK(BM_ShapeIndex_Hit1)->Apply(sizes);
BENCHMARK(BM_ShapeIndex_Hit4)->Apply(sizes);
BENCHMARK(BM_ShapeIndex_Hit1Chain)->Apply(sizes);
BENCHMARK(BM_ShapeIndex_RebuildPause)->Arg(1000000)->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Swiss_Miss)->Apply(sizes);
BENCHMARK(BM_Swiss_Hit1)->Apply(sizes);
BENCHMARK(BM_Swiss_Hit4)->Apply(sizes);
BENCHMARK(BM_Swiss_Hit1Chain)->Apply(sizes);
BENCHMARK(BM_Unordered_Miss)->Apply(sizes);
BENCHMARK(BM_Unordered_Hit1)->Apply(sizes);
BENCHMARK(BM_Unordered_Hit4)->Apply(sizes);
BENCHMARK(BM_Unordered_Hit1Chain)->Apply(sizes);

BENCHMARK_MAIN();
