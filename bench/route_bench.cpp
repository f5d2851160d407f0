// Router::route() on the first realistic mix (bench/mix.py's FORMS), without
// PostgreSQL: the core's share of a change (its keys made from the row's
// values, the index and range lookups, the exact decisions), apart from the
// shell's reading of the tuple and the record. S shapes of the mix's eight
// forms in its proportions, filed by a bulk load as a start files them, with
// the covers the compiler makes of them; changes as mix.py's workload makes
// them: 70 inserts, 20 updates (assignee, status, priority and score changed)
// and 10 deletes in 100, key values uniform over 1..100,000,000.
//   route_bench --benchmark_filter=Route/10000      time a change
//   route_bench --benchmark_filter=Prefetched/       the same, each change's keys
//                                                   prefetched a change ahead
//   valgrind --tool=callgrind bench/bin/route_bench --benchmark_filter=Fixed/10000
//                                                   instructions: Fixed routes
//                                                   kFixedChanges changes once
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "shape_router/program.h"
#include "shape_router/router.hpp"

namespace {

using shape_router::Router;

constexpr uint32_t kRelid = 16384;
constexpr int64_t kKeys = 100000000;
// items' columns, as bench/mix.py creates the table
enum : uint16_t { kId = 1, kTenant, kOwner, kAssignee, kStatus, kProject, kPriority, kScore, kAmount, kColumns };
constexpr size_t kChanges = 65536;       // changes generated, routed in turn
constexpr size_t kFixedChanges = 200000;  // Fixed's changes (as many as the mix's kept clusters hold)

const char* const kStatuses[] = {"open", "done", "review"};

sr_value int_value(int64_t i) {
  sr_value v{};
  v.v.i = i;
  return v;
}
sr_value float_value(double d) {
  sr_value v{};
  v.v.f = d;
  return v;
}
sr_value text_value(const char* s) {
  sr_value v{};
  v.v.bytes = reinterpret_cast<const uint8_t*>(s);
  v.len = static_cast<uint32_t>(std::char_traits<char>::length(s));
  return v;
}

uint64_t key(uint16_t attnum, uint8_t tag, const sr_value& v) { return sr_index_key(kRelid, attnum, tag, &v); }
uint64_t int_key(uint16_t attnum, int64_t i) { return key(attnum, SR_TAG_INT, int_value(i)); }
uint64_t order(uint8_t tag, const sr_value& v) { return sr_order_key(tag, &v); }

sr_index_atom eq(uint16_t attnum, int64_t i) {
  return sr_index_atom{int_key(attnum, i), 0, attnum, SR_TAG_INT, SR_ATOM_EQUAL, 0, 0, 0};
}
sr_index_atom eq_text(uint16_t attnum, const char* s) {
  return sr_index_atom{key(attnum, SR_TAG_TEXT, text_value(s)), 0, attnum, SR_TAG_TEXT, SR_ATOM_EQUAL, 0, 0, 0};
}
sr_index_atom range(uint16_t attnum, uint8_t tag, uint64_t lo, uint64_t hi) {
  return sr_index_atom{lo, hi, attnum, tag, SR_ATOM_RANGE, 0, 0, 0};
}

// One shape of the mix's form chosen by its weight: its cover's alternatives
// (atoms of each) and which are exact, as the compiler makes them.
void add_mix_shape(Router& r, uint64_t id, std::mt19937_64& rng) {
  const int64_t k = 1 + static_cast<int64_t>(rng() % kKeys);
  std::vector<std::vector<sr_index_atom>> alternatives;
  uint32_t exact = 0;
  const uint64_t form = rng() % 100;
  if (form < 40) {  // tenant_id = k
    alternatives = {{eq(kTenant, k)}};
    exact = 1;
  } else if (form < 55) {  // status = 'open' AND assignee_id = k
    alternatives = {{eq_text(kStatus, "open")}, {eq(kAssignee, k)}};
  } else if (form < 65) {  // project_id IN (k, k+1, k+2)
    alternatives = {{eq(kProject, k), eq(kProject, k + 1), eq(kProject, k + 2)}};
    exact = 1;
  } else if (form < 75) {  // owner_id = k OR assignee_id = k
    alternatives = {{eq(kOwner, k), eq(kAssignee, k)}};
    exact = 1;
  } else if (form < 85) {  // project_id = k AND priority >= t
    const uint64_t t = order(SR_TAG_INT, int_value(static_cast<int64_t>(rng() % 10)));
    alternatives = {{sr_index_atom{int_key(kProject, k), UINT64_MAX, kProject, SR_TAG_INT, SR_ATOM_COMPOSITE,
                                   kPriority, SR_TAG_INT, t}},
                    {eq(kProject, k)},
                    {range(kPriority, SR_TAG_INT, t, UINT64_MAX)}};
    exact = 1;
  } else if (form < 90) {  // tenant_id = k AND status IN ('open', 'review')
    alternatives = {{eq(kTenant, k)}, {eq_text(kStatus, "open"), eq_text(kStatus, "review")}};
  } else if (form < 95) {  // score > t, t in 999999.8 .. 1000000
    const double t = 999999.8 + static_cast<double>(rng() % 200) / 1000;
    alternatives = {{range(kScore, SR_TAG_FLOAT, order(SR_TAG_FLOAT, float_value(t)) + 1, UINT64_MAX)}};
    exact = 1;
  } else {  // amount BETWEEN a AND a + 999
    const int64_t a = static_cast<int64_t>(rng() % 1000000000);
    alternatives = {{range(kAmount, SR_TAG_INT, order(SR_TAG_INT, int_value(a)), order(SR_TAG_INT, int_value(a + 999)))}};
    exact = 1;
  }
  std::vector<sr_index_atom> atoms;
  std::vector<uint32_t> sizes;
  for (const auto& alternative : alternatives) {
    atoms.insert(atoms.end(), alternative.begin(), alternative.end());
    sizes.push_back(static_cast<uint32_t>(alternative.size()));
  }
  r.add_shape(id, kRelid, nullptr, sr_cover{atoms.data(), sizes.data(), sizes.size(), exact});
}

struct Change {
  std::vector<sr_value> new_values, old_values;  // by attnum; empty: no such row
};

void random_row(std::mt19937_64& rng, std::vector<sr_value>& row) {
  row.assign(kColumns, sr_value{});
  row[kId] = int_value(static_cast<int64_t>(rng() % kKeys));
  for (uint16_t c : {kTenant, kOwner, kAssignee, kProject}) row[c] = int_value(1 + static_cast<int64_t>(rng() % kKeys));
  row[kStatus] = text_value(kStatuses[rng() % 3]);
  row[kPriority] = int_value(static_cast<int64_t>(rng() % 10));
  row[kScore] = float_value(static_cast<double>(rng() % 1000000000) / 1000);
  row[kAmount] = int_value(static_cast<int64_t>(rng() % 1000000000));
}

std::vector<Change> make_changes(size_t n) {
  std::mt19937_64 rng(42);
  std::vector<Change> changes(n);
  for (size_t i = 0; i < n; i++) {
    Change& c = changes[i];
    const size_t kind = i % 100;
    if (kind < 70) {
      random_row(rng, c.new_values);
    } else if (kind < 90) {  // the update of mix.py's workload
      random_row(rng, c.old_values);
      c.new_values = c.old_values;
      c.new_values[kAssignee] = int_value(1 + static_cast<int64_t>(rng() % kKeys));
      c.new_values[kStatus] = text_value("open");
      c.new_values[kPriority] = int_value((c.old_values[kPriority].v.i + 1) % 10);
      c.new_values[kScore] = float_value(static_cast<double>(rng() % 1000000000) / 1000);
    } else {
      random_row(rng, c.old_values);
    }
  }
  return changes;
}

Router& mix_router(size_t shapes) {
  static std::map<size_t, std::unique_ptr<Router>> routers;
  std::unique_ptr<Router>& r = routers[shapes];
  if (!r) {
    r = std::make_unique<Router>();
    std::mt19937_64 rng(7);
    r->begin_bulk_load(shapes);
    for (uint64_t id = 1; id <= shapes; id++) add_mix_shape(*r, id, rng);
    r->end_bulk_load();
    r->maintain(true);
  }
  return *r;
}

// A change's row versions as the shell hands them over (nullptr: no such row).
struct Rows {
  sr_row_view new_view, old_view;
  explicit Rows(const Change& c)
      : new_view{c.new_values.data(), nullptr, nullptr, 0}, old_view{c.old_values.data(), nullptr, nullptr, 0},
        new_row(c.new_values.empty() ? nullptr : &new_view), old_row(c.old_values.empty() ? nullptr : &old_view) {}
  const sr_row_view* new_row;
  const sr_row_view* old_row;
};

// The change's candidates; prefetched: the token its keys were kept under (0: none).
size_t route(Router& r, const Change& c, uint64_t prefetched = 0) {
  const Rows rows(c);
  return r.route(kRelid, rows.new_row, rows.old_row, true, prefetched).size();
}

void report(benchmark::State& state, Router& r, const sr_counters& before, size_t routed) {
  const sr_counters& after = r.counters();
  const double n = static_cast<double>(routed);
  state.counters["keys_per_change"] = static_cast<double>(after.equality_probes - before.equality_probes) / n;
  state.counters["range_probes_per_change"] = static_cast<double>(after.range_probes - before.range_probes) / n;
  state.counters["exact_hits_per_change"] = static_cast<double>(after.exact_hits - before.exact_hits) / n;
}

void Route(benchmark::State& state) {
  Router& r = mix_router(static_cast<size_t>(state.range(0)));
  static const std::vector<Change> changes = make_changes(kChanges);
  const sr_counters before = r.counters();
  size_t i = 0, candidates = 0;
  for (auto _ : state) {
    candidates += route(r, changes[i]);
    i = (i + 1) % kChanges;
  }
  benchmark::DoNotOptimize(candidates);
  state.counters["candidates_per_change"] = static_cast<double>(candidates) / static_cast<double>(state.iterations());
  report(state, r, before, state.iterations());
}

// As Route, with each change's plain keys made and their index lines loaded
// one change ahead (prefetch_rows), as the plugin does from 65,536 index keys on.
void Prefetched(benchmark::State& state) {
  Router& r = mix_router(static_cast<size_t>(state.range(0)));
  static const std::vector<Change> changes = make_changes(kChanges);
  const sr_counters before = r.counters();
  size_t i = 0, candidates = 0;
  uint64_t token = 0;
  auto prefetch = [&](const Change& c) {
    const Rows rows(c);
    r.prefetch_rows(kRelid, rows.new_row, rows.old_row, ++token);
  };
  prefetch(changes[0]);
  for (auto _ : state) {
    const Change& c = changes[i];
    const uint64_t kept = token;
    i = (i + 1) % kChanges;
    prefetch(changes[i]);
    candidates += route(r, c, kept);
  }
  benchmark::DoNotOptimize(candidates);
  state.counters["candidates_per_change"] = static_cast<double>(candidates) / static_cast<double>(state.iterations());
  state.counters["keys_reused_per_change"] =
      static_cast<double>(r.counters().prefetched_keys_reused - before.prefetched_keys_reused) /
      static_cast<double>(state.iterations());
  report(state, r, before, state.iterations());
}

// kFixedChanges changes, once: a fixed amount of work for callgrind.
void Fixed(benchmark::State& state) {
  Router& r = mix_router(static_cast<size_t>(state.range(0)));
  static const std::vector<Change> changes = make_changes(kFixedChanges);
  const sr_counters before = r.counters();
  size_t candidates = 0;
  for (auto _ : state)
    for (const Change& c : changes) candidates += route(r, c);
  benchmark::DoNotOptimize(candidates);
  report(state, r, before, kFixedChanges * state.iterations());
}

BENCHMARK(Route)->Arg(10000)->Arg(1000000);
BENCHMARK(Prefetched)->Arg(10000)->Arg(1000000);
BENCHMARK(Fixed)->Arg(10000)->Arg(1000000)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
