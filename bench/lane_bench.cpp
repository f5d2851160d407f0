// Micro-benchmark of the form lane (src/core/form_lane.cpp) against the
// per-shape VM: N scan shapes of one form on one row, ns per shape. The
// per-shape figure is sr_program_eval alone, without what the shell adds to
// each run (finding the shape's state, its row image): the lane's gain in the
// decoder is at least this. Run: make bench/bin/lane_bench && bench/bin/lane_bench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "shape_router/form_lane.hpp"
#include "shape_router/program.h"

namespace {

using shape_router::FormLane;

// Columns: $1 a int, $2 b int, $3 f float8, $4 t text.
std::vector<uint8_t> build(int form, int64_t k) {
  sr_program_builder* b = nullptr;
  if (sr_builder_create(&b) != SR_OK) std::abort();
  sr_value v{};
  v.v.i = k;
  sr_value f{};
  f.v.f = static_cast<double>(k) * 0.5;
  bool ok = true;
  if (form == 0) {  // a = k OR a < b
    ok = sr_builder_group_begin(b, 0) == SR_OK && sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 1, &v) == SR_OK &&
         sr_builder_group_term_done(b) == SR_OK &&
         sr_builder_compare_columns(b, SR_OP_LT, SR_TAG_INT, 1, 2) == SR_OK &&
         sr_builder_group_term_done(b) == SR_OK && sr_builder_group_end(b) == SR_OK;
  } else if (form == 1) {  // f >= k OR b IS DISTINCT FROM a
    ok = sr_builder_group_begin(b, 0) == SR_OK && sr_builder_compare(b, SR_OP_GE, SR_TAG_FLOAT, 3, &f) == SR_OK &&
         sr_builder_group_term_done(b) == SR_OK &&
         sr_builder_compare_columns(b, SR_OP_DISTINCT, SR_TAG_INT, 2, 1) == SR_OK &&
         sr_builder_group_term_done(b) == SR_OK && sr_builder_group_end(b) == SR_OK;
  } else {  // a > k (one comparison)
    ok = sr_builder_compare(b, SR_OP_GT, SR_TAG_INT, 1, &v) == SR_OK;
  }
  uint8_t* bytes = nullptr;
  size_t len = 0;
  if (!ok || sr_builder_finish(b, 0, &bytes, &len) != SR_OK) std::abort();
  sr_builder_destroy(b);
  std::vector<uint8_t> p(bytes, bytes + len);
  std::free(bytes);
  return p;
}

struct Fixture {
  std::vector<std::vector<uint8_t>> programs;
  FormLane* lane = nullptr;
  sr_value row[5] = {};
  Fixture(int form, size_t n) {
    std::vector<FormLane::Column> columns;
    for (size_t i = 0; i < n; i++) {
      programs.push_back(build(form, static_cast<int64_t>(i * 7919 % 100000)));
      if (!FormLane::admits(programs.back().data(), programs.back().size(), columns)) std::abort();
    }
    lane = new FormLane(programs[0].data(), programs[0].size(), columns);
    for (size_t i = 0; i < n; i++) lane->add(static_cast<uint32_t>(i), programs[i].data());
    row[1].v.i = 50000;  // a
    row[2].v.i = 40000;  // b: a < b is false, so the constants decide
    row[3].v.f = 30000.5;
  }
  ~Fixture() { delete lane; }
};

void BM_PerShapeVm(benchmark::State& state) {
  Fixture fx(static_cast<int>(state.range(0)), static_cast<size_t>(state.range(1)));
  size_t matches = 0;
  for (auto _ : state)
    for (const std::vector<uint8_t>& p : fx.programs) matches += sr_program_eval(p.data(), fx.row, nullptr, nullptr) == SR_TRUE;
  benchmark::DoNotOptimize(matches);
  state.SetItemsProcessed(state.iterations() * state.range(1));
}

void BM_Lane(benchmark::State& state) {
  Fixture fx(static_cast<int>(state.range(0)), static_cast<size_t>(state.range(1)));
  std::vector<uint8_t> out(fx.lane->size());
  for (auto _ : state) {
    fx.lane->evaluate(fx.row, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(1));
}

// range(0): the form (0: a = k OR a < b, 1: f >= k OR b IS DISTINCT FROM a,
// 2: a > k); range(1): shapes of the form.
BENCHMARK(BM_PerShapeVm)->Args({0, 10000})->Args({1, 10000})->Args({2, 10000})->Args({0, 100});
BENCHMARK(BM_Lane)->Args({0, 10000})->Args({1, 10000})->Args({2, 10000})->Args({0, 100});

}  // namespace

BENCHMARK_MAIN();
