// Micro-benchmarks of the bytecode gate (src/core/program_vm.cpp): ns per evaluation
// and bytes per program for typical shapes. Programs are built with the same
// builder API the PostgreSQL shell's compiler uses; rows are plain sr_value
// arrays, as the shell hands them over. Run: make bench (see bench/README.md).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shape_router/program.h"

namespace {

// Table layout of the benchmark rows: $1 id int, $2 user_id int, $3 status text,
// $4 priority int, $5 title text.
constexpr int kColumns = 6;

sr_value int_value(int64_t v) {
  sr_value out{};
  out.v.i = v;
  return out;
}

sr_value text_value(const char* s) {
  sr_value out{};
  out.v.bytes = reinterpret_cast<const uint8_t*>(s);
  out.len = static_cast<uint32_t>(std::strlen(s));
  return out;
}

struct Program {
  std::vector<uint8_t> bytes;
};

template <typename Build>
Program build(Build&& body) {
  sr_program_builder* b = nullptr;
  if (sr_builder_create(&b) != SR_OK) std::abort();
  body(b);
  uint8_t* bytes = nullptr;
  size_t len = 0;
  if (sr_builder_finish(b, 0, &bytes, &len) != SR_OK) std::abort();
  sr_builder_destroy(b);
  Program p{std::vector<uint8_t>(bytes, bytes + len)};
  std::free(bytes);
  uint8_t tags[kColumns] = {SR_TAG_NONE, SR_TAG_INT, SR_TAG_INT, SR_TAG_TEXT, SR_TAG_INT, SR_TAG_TEXT};
  char err[128];
  if (sr_program_validate(p.bytes.data(), p.bytes.size(), tags, kColumns - 1, 0, err, sizeof err) != SR_OK) std::abort();
  return p;
}

void check(sr_status s) {
  if (s != SR_OK) std::abort();
}

// Rows that exercise both outcomes; the benchmark cycles through them.
std::vector<std::vector<sr_value>> rows() {
  static const char* statuses[] = {"open", "done", "new", "archived"};
  static const char* titles[] = {"abc report", "weekly abc", "abcdef", "zzz"};
  std::vector<std::vector<sr_value>> out;
  for (int i = 0; i < 64; i++) {
    std::vector<sr_value> r(kColumns);
    r[0].is_null = 1;
    r[1] = int_value(i);
    r[2] = int_value(i % 8 == 0 ? 5 : i % 11);
    r[3] = text_value(statuses[i % 4]);
    r[4] = int_value(i % 7);
    r[5] = text_value(titles[i % 4]);
    out.push_back(std::move(r));
  }
  return out;
}

void run(benchmark::State& state, const Program& p) {
  const auto data = rows();
  size_t i = 0;
  int64_t matches = 0;
  for (auto _ : state) {
    int r = sr_program_eval(p.bytes.data(), data[i].data(), nullptr, nullptr);
    matches += r == SR_TRUE;
    benchmark::DoNotOptimize(r);
    i = (i + 1) & 63;
  }
  state.counters["program_bytes"] = static_cast<double>(p.bytes.size());
  state.counters["match_rate"] = benchmark::Counter(static_cast<double>(matches), benchmark::Counter::kAvgIterations);
}

void BM_user_eq(benchmark::State& state) {  // user_id = $1
  static const Program p = build([](sr_program_builder* b) {
    sr_value five = int_value(5);
    check(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 2, &five));
  });
  run(state, p);
}

void BM_user_eq_and_status_in(benchmark::State& state) {  // user_id = $1 AND status IN ('open', 'new')
  static const Program p = build([](sr_program_builder* b) {
    sr_value five = int_value(5);
    sr_value statuses[] = {text_value("open"), text_value("new")};
    check(sr_builder_group_begin(b, 1));
    check(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 2, &five));
    check(sr_builder_group_term_done(b));
    check(sr_builder_in(b, SR_TAG_TEXT, 3, statuses, 2, 0, 0));
    check(sr_builder_group_term_done(b));
    check(sr_builder_group_end(b));
  });
  run(state, p);
}

// The target shape: a three-term conjunction over int/text columns.
void BM_three_term_conjunction(benchmark::State& state) {  // user_id = 5 AND status = 'open' AND priority > 3
  static const Program p = build([](sr_program_builder* b) {
    sr_value five = int_value(5), open = text_value("open"), three = int_value(3);
    check(sr_builder_group_begin(b, 1));
    check(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 2, &five));
    check(sr_builder_group_term_done(b));
    check(sr_builder_compare(b, SR_OP_EQ, SR_TAG_TEXT, 3, &open));
    check(sr_builder_group_term_done(b));
    check(sr_builder_compare(b, SR_OP_GT, SR_TAG_INT, 4, &three));
    check(sr_builder_group_term_done(b));
    check(sr_builder_group_end(b));
  });
  run(state, p);
}

// Same, on candidates that pass the first term (what the gate sees behind the index).
void BM_three_term_conjunction_all_terms(benchmark::State& state) {
  static const Program p = build([](sr_program_builder* b) {
    sr_value any = int_value(0), open = text_value("open"), three = int_value(3);
    check(sr_builder_group_begin(b, 1));
    check(sr_builder_compare(b, SR_OP_GE, SR_TAG_INT, 2, &any));
    check(sr_builder_group_term_done(b));
    check(sr_builder_compare(b, SR_OP_EQ, SR_TAG_TEXT, 3, &open));
    check(sr_builder_group_term_done(b));
    check(sr_builder_compare(b, SR_OP_GT, SR_TAG_INT, 4, &three));
    check(sr_builder_group_term_done(b));
    check(sr_builder_group_end(b));
  });
  run(state, p);
}

void BM_five_term_or(benchmark::State& state) {  // user_id = 1 OR ... OR user_id = 4 OR status = 'archived'
  static const Program p = build([](sr_program_builder* b) {
    check(sr_builder_group_begin(b, 0));
    for (int k = 1; k <= 4; k++) {
      sr_value v = int_value(k + 10);
      check(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 2, &v));
      check(sr_builder_group_term_done(b));
    }
    sr_value archived = text_value("archived");
    check(sr_builder_compare(b, SR_OP_EQ, SR_TAG_TEXT, 3, &archived));
    check(sr_builder_group_term_done(b));
    check(sr_builder_group_end(b));
  });
  run(state, p);
}

void BM_like_prefix(benchmark::State& state) {  // title LIKE 'abc%'
  static const Program p = build([](sr_program_builder* b) {
    check(sr_builder_like_prefix(b, 5, reinterpret_cast<const uint8_t*>("abc"), 3, 0));
  });
  run(state, p);
}

void BM_range(benchmark::State& state) {  // priority BETWEEN 2 AND 5
  static const Program p = build([](sr_program_builder* b) {
    sr_value lo = int_value(2), hi = int_value(5);
    check(sr_builder_group_begin(b, 1));
    check(sr_builder_compare(b, SR_OP_GE, SR_TAG_INT, 4, &lo));
    check(sr_builder_group_term_done(b));
    check(sr_builder_compare(b, SR_OP_LE, SR_TAG_INT, 4, &hi));
    check(sr_builder_group_term_done(b));
    check(sr_builder_group_end(b));
  });
  run(state, p);
}

void BM_int_in_list(benchmark::State& state) {  // user_id IN (range(0), ..., range(n-1)): sorted set, binary search
  const int n = static_cast<int>(state.range(0));
  std::vector<sr_value> values;
  for (int k = 0; k < n; k++) values.push_back(int_value(k * 3));
  const Program p = build([&](sr_program_builder* b) {
    check(sr_builder_in(b, SR_TAG_INT, 2, values.data(), values.size(), 0, 0));
  });
  run(state, p);
}

}  // namespace

BENCHMARK(BM_user_eq);
BENCHMARK(BM_user_eq_and_status_in);
BENCHMARK(BM_three_term_conjunction);
BENCHMARK(BM_three_term_conjunction_all_terms);
BENCHMARK(BM_five_term_or);
BENCHMARK(BM_like_prefix);
BENCHMARK(BM_range);
BENCHMARK(BM_int_in_list)->Arg(8)->Arg(100)->Arg(1000);

BENCHMARK_MAIN();
