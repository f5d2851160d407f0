// What a row's substring gram keys cost the router (Router::candidates) next to
// a large equality index: 1,000,000 `col = k` shapes and 10,000 ILIKE shapes
// each filed under one lowered 4-byte gram (4 hex digits), and a row whose
// 32-hex-digit text makes 29 gram keys (and one equality key no shape has).
//   Flagged:   the keys as the shell passes them (SR_SUBSTRING_KEY_FLAG): the
//              gram filter answers most windows from cache.
//   Unflagged: the same keys without the flag: each window goes to the
//              equality index's front filter, as before the gram filter.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "shape_router/program.h"
#include "shape_router/router.hpp"

namespace {

using shape_router::Router;

constexpr uint32_t kRelid = 16384;
constexpr uint16_t kKeyColumn = 1, kTextColumn = 2;

std::string hex(std::mt19937_64& rng, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; i++) s += "0123456789abcdef"[rng() % 16];
  return s;
}

Router& router() {
  static Router* r = [] {
    auto* r = new Router;
    std::mt19937_64 rng(42);
    r->begin_bulk_load(1010000);
    for (uint64_t k = 1; k <= 1000000; k++) {
      sr_value v{};
      v.v.i = static_cast<int64_t>(k);
      const sr_index_atom atom{sr_index_key(kRelid, kKeyColumn, SR_TAG_INT, &v), 0, kKeyColumn, SR_TAG_INT,
                               SR_ATOM_EQUAL, 0, 0, 0};
      const uint32_t size = 1;
      r->add_shape(k, kRelid, nullptr, sr_cover{&atom, &size, 1, 0});
    }
    for (uint64_t g = 0; g < 10000; g++) {
      const std::string w = hex(rng, 4);
      const sr_index_atom atom{sr_substring_key(kRelid, kTextColumn, 1, reinterpret_cast<const uint8_t*>(w.data()), 4),
                               4, kTextColumn, SR_TAG_TEXT, SR_ATOM_SUBSTRING, 0, 0, 1};
      const uint32_t size = 1;
      r->add_shape(2000000 + g, kRelid, nullptr, sr_cover{&atom, &size, 1, 0});
    }
    r->end_bulk_load();
    return r;
  }();
  return *r;
}

void run(benchmark::State& state, bool flagged) {
  Router& r = router();
  std::mt19937_64 rng(7);
  constexpr size_t kRows = 4096;
  std::vector<std::vector<uint64_t>> keys(kRows);
  std::vector<std::vector<uint16_t>> attnums(kRows);
  for (size_t i = 0; i < kRows; i++) {
    const std::string text = hex(rng, 32);
    keys[i].resize(30);
    attnums[i].resize(30);
    sr_value v{};
    v.v.i = static_cast<int64_t>(2000000 + rng() % 1000000);  // a key no shape has
    keys[i][0] = sr_index_key(kRelid, kKeyColumn, SR_TAG_INT, &v);
    attnums[i][0] = kKeyColumn;
    sr_substring_keys(kRelid, kTextColumn, 1, 1u << 3, reinterpret_cast<const uint8_t*>(text.data()), 32,
                      keys[i].data() + 1, attnums[i].data() + 1, 29);
    if (!flagged)
      for (size_t k = 1; k < 30; k++) attnums[i][k] = kTextColumn;
  }
  size_t row = 0, candidates = 0;
  for (auto _ : state) {
    const auto& got = r.candidates(kRelid, keys[row].data(), 30, false, nullptr, 0, attnums[row].data());
    candidates += got.size();
    row = (row + 1) % kRows;
  }
  state.counters["candidates_per_row"] = benchmark::Counter(static_cast<double>(candidates),
                                                            benchmark::Counter::kAvgIterations);
}

void BM_GramKeys_Flagged(benchmark::State& state) { run(state, true); }
void BM_GramKeys_Unflagged(benchmark::State& state) { run(state, false); }

}  // namespace

BENCHMARK(BM_GramKeys_Flagged);
BENCHMARK(BM_GramKeys_Unflagged);
BENCHMARK(BM_GramKeys_Flagged);
BENCHMARK(BM_GramKeys_Unflagged);

BENCHMARK_MAIN();
