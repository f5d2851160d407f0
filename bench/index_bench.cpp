// Micro-benchmarks of the routing index (src/core/index.cpp) beside a Swiss table
// (absl::flat_hash_map<uint64_t, uint32_t>) and std::unordered_map, at 1M and 10M
// keys, most keys with one shape: ns per miss, ns per hit, build ns per key, and
// bytes per key. Each structure is built once per size (timed: build_ns_per_key).
// Run: make bench (see bench/README.md).
#include <benchmark/benchmark.h>

#include <absl/container/flat_hash_map.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

#include "shape_router/index.hpp"

namespace {

using shape_router::ShapeIndex;

struct Keys {
  std::vector<uint64_t> present;
  std::vector<uint64_t> absent;
};

const Keys& keys(size_t n) {
  static std::map<size_t, Keys> cache;
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  std::mt19937_64 rng(20261121 + n);
  Keys k;
  k.present.resize(n);
  for (auto& x : k.present) x = rng();
  k.absent.resize(1 << 20);
  for (auto& x : k.absent) x = rng();  // 64-bit random: absent with overwhelming probability
  return cache.emplace(n, std::move(k)).first->second;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Built {
  double build_ns_per_key = 0;
  double bytes_per_key = 0;
};

// shapes_per_key: 1, or 4 (every key shared by four shapes).
ShapeIndex& shape_index(size_t n, int shapes_per_key, Built& built) {
  static std::map<std::pair<size_t, int>, std::pair<std::unique_ptr<ShapeIndex>, Built>> cache;
  auto key = std::make_pair(n, shapes_per_key);
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto index = std::make_unique<ShapeIndex>();
    const Keys& k = keys(n / static_cast<size_t>(shapes_per_key));
    uint32_t slot = 0;
    for (uint64_t key_value : k.present)
      for (int s = 0; s < shapes_per_key; s++) index->add(slot++, &key_value, 1);
    const auto t0 = std::chrono::steady_clock::now();
    index->maintain(true);
    Built b;
    b.build_ns_per_key = seconds_since(t0) * 1e9 / static_cast<double>(k.present.size());
    b.bytes_per_key = static_cast<double>(index->stats().static_bytes) / static_cast<double>(k.present.size());
    it = cache.emplace(key, std::make_pair(std::move(index), b)).first;
  }
  built = it->second.second;
  return *it->second.first;
}

absl::flat_hash_map<uint64_t, uint32_t>& swiss(size_t n, Built& built) {
  static std::map<size_t, std::pair<std::unique_ptr<absl::flat_hash_map<uint64_t, uint32_t>>, Built>> cache;
  auto it = cache.find(n);
  if (it == cache.end()) {
    auto map = std::make_unique<absl::flat_hash_map<uint64_t, uint32_t>>();
    const Keys& k = keys(n);
    const auto t0 = std::chrono::steady_clock::now();
    map->reserve(n);
    uint32_t slot = 0;
    for (uint64_t key_value : k.present) map->emplace(key_value, slot++);
    Built b;
    b.build_ns_per_key = seconds_since(t0) * 1e9 / static_cast<double>(n);
    // Swiss table: one control byte plus one slot (key + value, padded) per bucket.
    b.bytes_per_key = static_cast<double>(map->capacity() * (sizeof(std::pair<uint64_t, uint32_t>) + 1)) /
                      static_cast<double>(n);
    it = cache.emplace(n, std::make_pair(std::move(map), b)).first;
  }
  built = it->second.second;
  return *it->second.first;
}

std::unordered_map<uint64_t, uint32_t>& unordered(size_t n, Built& built) {
  static std::map<size_t, std::pair<std::unique_ptr<std::unordered_map<uint64_t, uint32_t>>, Built>> cache;
  auto it = cache.find(n);
  if (it == cache.end()) {
    auto map = std::make_unique<std::unordered_map<uint64_t, uint32_t>>();
    const Keys& k = keys(n);
    const auto t0 = std::chrono::steady_clock::now();
    map->reserve(n);
    uint32_t slot = 0;
    for (uint64_t key_value : k.present) map->emplace(key_value, slot++);
    Built b;
    b.build_ns_per_key = seconds_since(t0) * 1e9 / static_cast<double>(n);
    // Estimate: a bucket pointer per bucket, a 32-byte node (next, key, value,
    // cached hash) per key, plus malloc's 16 bytes a node.
    b.bytes_per_key = static_cast<double>(map->bucket_count() * 8 + n * (32 + 16)) / static_cast<double>(n);
    it = cache.emplace(n, std::make_pair(std::move(map), b)).first;
  }
  built = it->second.second;
  return *it->second.first;
}

void report(benchmark::State& state, const Built& b) {
  state.counters["build_ns_per_key"] = b.build_ns_per_key;
  state.counters["bytes_per_key"] = b.bytes_per_key;
}

void BM_ShapeIndex_Miss(benchmark::State& state) {
  Built b;
  ShapeIndex& index = shape_index(static_cast<size_t>(state.range(0)), 1, b);
  const Keys& k = keys(static_cast<size_t>(state.range(0)));
  std::vector<uint32_t> out;
  size_t i = 0;
  for (auto _ : state) {
    out.clear();
    index.lookup(k.absent[i++ & ((1 << 20) - 1)], out);
    benchmark::DoNotOptimize(out.data());
  }
  report(state, b);
}

void BM_ShapeIndex_Hit(benchmark::State& state) {
  Built b;
  const int shapes = static_cast<int>(state.range(1));
  ShapeIndex& index = shape_index(static_cast<size_t>(state.range(0)), shapes, b);
  const Keys& k = keys(static_cast<size_t>(state.range(0)) / static_cast<size_t>(shapes));
  std::vector<uint32_t> out;
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    out.clear();
    index.lookup(k.present[rng() % k.present.size()], out);
    benchmark::DoNotOptimize(out.data());
  }
  report(state, b);
}

void BM_Swiss_Miss(benchmark::State& state) {
  Built b;
  auto& map = swiss(static_cast<size_t>(state.range(0)), b);
  const Keys& k = keys(static_cast<size_t>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(map.find(k.absent[i++ & ((1 << 20) - 1)]) == map.end());
  report(state, b);
}

void BM_Swiss_Hit(benchmark::State& state) {
  Built b;
  auto& map = swiss(static_cast<size_t>(state.range(0)), b);
  const Keys& k = keys(static_cast<size_t>(state.range(0)));
  std::mt19937_64 rng(7);
  for (auto _ : state) benchmark::DoNotOptimize(map.find(k.present[rng() % k.present.size()])->second);
  report(state, b);
}

void BM_Unordered_Miss(benchmark::State& state) {
  Built b;
  auto& map = unordered(static_cast<size_t>(state.range(0)), b);
  const Keys& k = keys(static_cast<size_t>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(map.find(k.absent[i++ & ((1 << 20) - 1)]) == map.end());
  report(state, b);
}

void BM_Unordered_Hit(benchmark::State& state) {
  Built b;
  auto& map = unordered(static_cast<size_t>(state.range(0)), b);
  const Keys& k = keys(static_cast<size_t>(state.range(0)));
  std::mt19937_64 rng(7);
  for (auto _ : state) benchmark::DoNotOptimize(map.find(k.present[rng() % k.present.size()])->second);
  report(state, b);
}

}  // namespace

BENCHMARK(BM_ShapeIndex_Miss)->Arg(1000000)->Arg(10000000);
BENCHMARK(BM_ShapeIndex_Hit)->Args({1000000, 1})->Args({1000000, 4})->Args({10000000, 1});
BENCHMARK(BM_Swiss_Miss)->Arg(1000000)->Arg(10000000);
BENCHMARK(BM_Swiss_Hit)->Arg(1000000)->Arg(10000000);
BENCHMARK(BM_Unordered_Miss)->Arg(1000000)->Arg(10000000);
BENCHMARK(BM_Unordered_Hit)->Arg(1000000)->Arg(10000000);

BENCHMARK_MAIN();
