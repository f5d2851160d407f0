// Unit tests of covers in the router (router.h: sr_cover): shapes filed under
// atoms of several columns (an OR), the choice among a conjunction's
// alternatives by the shapes each key has, the deferred choice of a bulk load,
// and a randomized run against the soundness rule: a shape is a candidate for
// every row for which each alternative of its cover has a true atom.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "shape_router/router.hpp"

namespace {

using shape_router::Router;
using Ids = std::vector<uint64_t>;

uint64_t K(uint64_t n) { return shape_router::mix64(n + 0x5151); }

sr_index_atom eq(uint64_t key, uint16_t attnum, uint8_t tag) {
  return sr_index_atom{key, 0, attnum, tag, SR_ATOM_EQUAL};
}

sr_index_atom range(uint64_t lo, uint64_t hi, uint16_t attnum) {
  return sr_index_atom{lo, hi, attnum, SR_TAG_INT, SR_ATOM_RANGE};
}

struct CoverSpec {
  std::vector<std::vector<sr_index_atom>> alternatives;
};

void add(Router& r, uint64_t id, uint32_t relid, const CoverSpec& spec) {
  std::vector<sr_index_atom> atoms;
  std::vector<uint32_t> sizes;
  for (const auto& alternative : spec.alternatives) {
    atoms.insert(atoms.end(), alternative.begin(), alternative.end());
    sizes.push_back(static_cast<uint32_t>(alternative.size()));
  }
  r.add_shape(id, relid, nullptr, sr_cover{atoms.data(), sizes.data(), sizes.size()});
}

Ids candidates(Router& r, uint32_t relid, const std::vector<uint64_t>& keys) {
  Ids out;
  for (const sr_shape_ref& s : r.candidates(relid, keys.data(), keys.size())) out.push_back(s.shape_id);
  return out;
}

std::map<int, uint32_t> columns(const Router& r, uint32_t relid) {
  std::map<int, uint32_t> out;
  const Router::RelationView view = r.relation(relid);
  for (size_t i = 0; i < view.index_column_count; i++)
    out[view.index_columns[i].attnum] = view.index_columns[i].shapes;
  return out;
}

// status = 'open' (column 1) AND assignee_id = k (column 2).
CoverSpec open_and_assignee(uint64_t k) {
  return CoverSpec{{{eq(K(0), 1, SR_TAG_TEXT)}, {eq(K(1000 + k), 2, SR_TAG_INT)}}};
}

TEST(Cover, OrAcrossColumnsIsFoundThroughEither) {
  Router r;
  // owner_id = 7 OR assignee_id = 7: one alternative, two columns.
  add(r, 1, 100, CoverSpec{{{eq(K(7), 1, SR_TAG_INT), eq(K(107), 2, SR_TAG_INT)}}});
  EXPECT_EQ(candidates(r, 100, {K(7)}), Ids{1});
  EXPECT_EQ(candidates(r, 100, {K(107)}), Ids{1});
  EXPECT_EQ(candidates(r, 100, {K(7), K(107)}), Ids{1});  // once, however many atoms hit
  EXPECT_EQ(candidates(r, 100, {K(8)}), Ids{});
  EXPECT_EQ(columns(r, 100), (std::map<int, uint32_t>{{1, 1}, {2, 1}}));
  r.maintain(true);
  EXPECT_EQ(candidates(r, 100, {K(107)}), Ids{1});
  r.drop_shape(1);
  EXPECT_TRUE(columns(r, 100).empty());
  EXPECT_EQ(r.relation(100).shape_count, 0u);
}

TEST(Cover, ReplacingAShapeMovesItsColumns) {
  Router r;
  add(r, 1, 100, CoverSpec{{{eq(K(7), 1, SR_TAG_INT), eq(K(107), 2, SR_TAG_INT)}}});
  add(r, 1, 100, CoverSpec{{{eq(K(9), 3, SR_TAG_INT)}}});
  EXPECT_EQ(columns(r, 100), (std::map<int, uint32_t>{{3, 1}}));
  EXPECT_EQ(candidates(r, 100, {K(7)}), Ids{});
  EXPECT_EQ(candidates(r, 100, {K(9)}), Ids{1});
}

TEST(Cover, AlternativeWithoutAtomsNeverMatchesAndNeedsNoColumn) {
  Router r;
  add(r, 1, 100, CoverSpec{{{}}});
  EXPECT_EQ(r.relation(100).shape_count, 1u);
  EXPECT_TRUE(columns(r, 100).empty());
  EXPECT_EQ(candidates(r, 100, {K(1)}), Ids{});
  EXPECT_EQ(r.candidates(100, nullptr, 0, true).size(), 1u);  // TRUNCATE still reaches it
  r.drop_shape(1);
  EXPECT_EQ(r.relation(100).shape_count, 0u);
}

TEST(Cover, IncrementalAddsPreferTheShorterPosting) {
  Router r;
  for (uint64_t k = 1; k <= 100; k++) add(r, k, 100, open_and_assignee(k));
  // A row with status 'open' and an assignee no shape names: at most the first
  // shape (both keys empty when it came) is a candidate, not all 100.
  EXPECT_LE(candidates(r, 100, {K(0), K(1000 + 5000)}).size(), 1u);
  EXPECT_EQ(candidates(r, 100, {K(0), K(1000 + 42)}).back(), 42u);
  EXPECT_GE(columns(r, 100)[2], 99u);
}

TEST(Cover, BulkLoadChoosesWithEveryShapeCounted) {
  Router r;
  r.begin_bulk_load(100);
  for (uint64_t k = 1; k <= 100; k++) add(r, k, 100, open_and_assignee(k));
  // a shape filed under 'open' alone makes that key longer still
  add(r, 101, 100, CoverSpec{{{eq(K(0), 1, SR_TAG_TEXT)}}});
  r.end_bulk_load();
  EXPECT_EQ(candidates(r, 100, {K(0), K(1000 + 5000)}), Ids{101});
  EXPECT_EQ(candidates(r, 100, {K(0), K(1000 + 42)}), (Ids{42, 101}));
  EXPECT_EQ(columns(r, 100), (std::map<int, uint32_t>{{1, 1}, {2, 100}}));
}

TEST(Cover, ShapeDroppedOrReplacedWhileLoadingIsNotFiled) {
  Router r;
  r.begin_bulk_load(3);
  add(r, 1, 100, open_and_assignee(1));
  add(r, 2, 100, open_and_assignee(2));
  r.drop_shape(1);
  add(r, 2, 100, CoverSpec{{{eq(K(77), 3, SR_TAG_INT)}}});
  r.end_bulk_load();
  EXPECT_EQ(r.shape_count(), 1u);
  EXPECT_EQ(candidates(r, 100, {K(0), K(1001), K(1002)}), Ids{});
  EXPECT_EQ(candidates(r, 100, {K(77)}), Ids{2});
  EXPECT_EQ(columns(r, 100), (std::map<int, uint32_t>{{3, 1}}));
}

TEST(Cover, TooManyAlternativesRejected) {
  Router r;
  CoverSpec spec;
  for (int i = 0; i <= SR_COVER_MAX_ALTERNATIVES; i++) spec.alternatives.push_back({eq(K(i), 1, SR_TAG_INT)});
  EXPECT_THROW(add(r, 1, 100, spec), std::invalid_argument);
  EXPECT_EQ(r.shape_count(), 0u);
}

TEST(Cover, RangesAreFoundThroughProbes) {
  Router r;
  // priority > 3 (keys from 4 on), priority BETWEEN 10 AND 20, and an OR of a
  // range and an equality on another column
  add(r, 1, 100, CoverSpec{{{range(4, UINT64_MAX, 5)}}});
  add(r, 2, 100, CoverSpec{{{range(10, 20, 5)}}});
  add(r, 3, 100, CoverSpec{{{range(0, 2, 5), eq(K(1), 1, SR_TAG_INT)}}});
  auto probe = [&](uint64_t value, std::vector<uint64_t> keys = {}) {
    const sr_range_probe p{value, 5};
    Ids out;
    for (const sr_shape_ref& s : r.candidates(100, keys.data(), keys.size(), false, &p, 1)) out.push_back(s.shape_id);
    return out;
  };
  for (int round = 0; round < 2; round++) {  // overlay, then the built tree
    EXPECT_EQ(probe(0), Ids{3});
    EXPECT_EQ(probe(3), Ids{});
    EXPECT_EQ(probe(3, {K(1)}), Ids{3});
    EXPECT_EQ(probe(4), Ids{1});
    EXPECT_EQ(probe(10), (Ids{1, 2}));
    EXPECT_EQ(probe(20), (Ids{1, 2}));
    EXPECT_EQ(probe(21), Ids{1});
    EXPECT_EQ(probe(UINT64_MAX), Ids{1});
    r.maintain(true);
  }
  // each path counts its own probes and candidates
  EXPECT_EQ(r.counters().range_probes, 16u);
  EXPECT_EQ(r.counters().range_candidates, 16u);  // 8 hits a round, two rounds
  EXPECT_EQ(r.counters().equality_probes, 2u);
  EXPECT_EQ(r.counters().equality_candidates, 2u);
  const std::map<int, uint32_t> eq_columns = columns(r, 100);
  EXPECT_EQ(eq_columns, (std::map<int, uint32_t>{{1, 1}, {5, 0}}));
  const Router::RelationView view = r.relation(100);
  for (size_t i = 0; i < view.index_column_count; i++) {
    if (view.index_columns[i].attnum == 5) {
      EXPECT_EQ(view.index_columns[i].range_shapes, 3u);
    }
  }
  r.drop_shape(2);
  EXPECT_EQ(probe(10), Ids{1});
  r.drop_shape(1);
  r.drop_shape(3);
  EXPECT_EQ(r.relation(100).index_column_count, 0u);
  EXPECT_EQ(probe(10), Ids{});
  EXPECT_EQ(r.range_entries(), 0u);
}

TEST(Cover, AnEqualityIsPreferredToARangeOfTheSameCount) {
  Router r;
  // project_id = k AND priority >= 3: filed under the project's key
  for (uint64_t k = 1; k <= 50; k++)
    add(r, k, 100, CoverSpec{{{eq(K(k), 1, SR_TAG_INT)}, {range(3, UINT64_MAX, 2)}}});
  EXPECT_EQ(r.range_entries(), 0u);
  const sr_range_probe p{5, 2};
  EXPECT_EQ(r.candidates(100, nullptr, 0, false, &p, 1).size(), 0u);
}

// Random covers (1-3 alternatives of 0-3 atoms, equality or range, over 3
// columns and small value domains), adds in and out of bulk loads, drops,
// rebuilds; every query must return each shape whose cover holds for the row.
TEST(Cover, RandomizedNeverMissesACoveredShape) {
  std::mt19937_64 rng(20261203);
  Router r;
  std::map<uint64_t, std::pair<uint32_t, CoverSpec>> live;
  auto key_of = [](uint16_t column, uint64_t value) { return K(column * 100 + value); };
  auto random_cover = [&] {
    CoverSpec spec;
    const int alternatives = 1 + static_cast<int>(rng() % 3);
    for (int a = 0; a < alternatives; a++) {
      std::vector<sr_index_atom> atoms;
      const int n = static_cast<int>(rng() % 4);
      for (int i = 0; i < n; i++) {
        const uint16_t column = static_cast<uint16_t>(1 + rng() % 3);
        if (rng() % 3 == 0) {
          const uint64_t lo = rng() % 14, hi = lo + rng() % 6;
          atoms.push_back(range(rng() % 4 == 0 ? 0 : lo, rng() % 4 == 0 ? UINT64_MAX : hi, column));
        } else {
          atoms.push_back(eq(key_of(column, rng() % 12), column, SR_TAG_INT));
        }
      }
      spec.alternatives.push_back(atoms);
    }
    return spec;
  };
  // row[column - 1]: the value, or -1 for NULL
  auto holds = [&](const CoverSpec& spec, const std::vector<int64_t>& row) {
    for (const auto& alternative : spec.alternatives)
      if (std::none_of(alternative.begin(), alternative.end(), [&](const sr_index_atom& a) {
            const int64_t v = row[a.attnum - 1];
            if (v < 0) return false;
            return a.kind == SR_ATOM_RANGE ? a.key <= uint64_t(v) && uint64_t(v) <= a.upper
                                           : a.key == key_of(a.attnum, uint64_t(v));
          }))
        return false;
    return true;
  };
  for (int round = 0; round < 40; round++) {
    const bool bulk = round % 4 == 0;
    if (bulk) r.begin_bulk_load(200);
    for (int op = 0; op < 300; op++) {
      const uint64_t id = 1 + rng() % 500;
      const uint32_t relid = 100 + static_cast<uint32_t>(id % 3);
      if (rng() % 4 == 0) {
        r.drop_shape(id);
        live.erase(id);
      } else {
        const CoverSpec spec = random_cover();
        add(r, id, relid, spec);
        live[id] = {relid, spec};
      }
    }
    if (bulk) r.end_bulk_load();
    r.maintain(round % 3 == 0);
    for (int q = 0; q < 200; q++) {
      // The row: a value in some columns (NULL in the others); the shell
      // probes only what the relation's columns ask for.
      const uint32_t relid = 100 + static_cast<uint32_t>(rng() % 3);
      const Router::RelationView view = r.relation(relid);
      std::vector<int64_t> row(3);
      std::vector<uint64_t> keys;
      std::vector<sr_range_probe> probes;
      for (uint16_t column = 1; column <= 3; column++) {
        row[column - 1] = rng() % 4 == 0 ? -1 : static_cast<int64_t>(rng() % 20);
        if (row[column - 1] < 0) continue;
        for (size_t i = 0; i < view.index_column_count; i++) {
          if (view.index_columns[i].attnum != column) continue;
          if (view.index_columns[i].shapes > 0) keys.push_back(key_of(column, uint64_t(row[column - 1])));
          if (view.index_columns[i].range_shapes > 0) probes.push_back(sr_range_probe{uint64_t(row[column - 1]), column});
        }
      }
      Ids got;
      for (const sr_shape_ref& s : r.candidates(relid, keys.data(), keys.size(), false, probes.data(), probes.size()))
        got.push_back(s.shape_id);
      ASSERT_TRUE(std::is_sorted(got.begin(), got.end()));
      ASSERT_EQ(std::adjacent_find(got.begin(), got.end()), got.end());
      for (const auto& [id, shape] : live) {
        if (shape.first != relid || !holds(shape.second, row)) continue;
        ASSERT_TRUE(std::binary_search(got.begin(), got.end(), id)) << "round " << round << " missed " << id;
      }
      for (uint64_t id : got) ASSERT_EQ(live.at(id).first, relid);
    }
  }
}

}  // namespace
