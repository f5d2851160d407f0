// Unit tests of covers in the router (router.h: sr_cover): shapes filed under
// atoms of several columns (an OR), the choice among a conjunction's
// alternatives by the shapes each key has, the deferred choice of a bulk load,
// and a randomized run against the soundness rule: a shape is a candidate for
// every row for which each alternative of its cover has a true atom.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <stdexcept>
#include <vector>

#include "row_view.hpp"
#include "shape_router/router.hpp"

namespace {

using shape_router::Router;
using Ids = std::vector<uint64_t>;

uint64_t K(uint64_t n) { return shape_router::mix64(n + 0x5151); }

sr_index_atom eq(uint64_t key, uint16_t attnum, uint8_t tag) {
  return sr_index_atom{key, 0, attnum, tag, SR_ATOM_EQUAL, 0, 0, 0};
}

sr_index_atom range(uint64_t lo, uint64_t hi, uint16_t attnum) {
  return sr_index_atom{lo, hi, attnum, SR_TAG_INT, SR_ATOM_RANGE, 0, 0, 0};
}

// column a = the value keyed key, and column b's order key in [lo, hi]
sr_index_atom comp(uint64_t key, uint16_t a, uint64_t lo, uint64_t hi, uint16_t b) {
  return sr_index_atom{key, hi, a, SR_TAG_INT, SR_ATOM_COMPOSITE, b, SR_TAG_INT, lo};
}

sr_index_atom null_atom(uint16_t attnum) { return sr_index_atom{0, 0, attnum, SR_TAG_INT, SR_ATOM_NULL, 0, 0, 0}; }

// attnum is not NULL and its key is none of excluded (appends the atoms to out)
void complement(std::vector<sr_index_atom>& out, uint16_t attnum, std::vector<uint64_t> excluded,
                uint8_t tag = SR_TAG_INT) {
  out.push_back(sr_index_atom{0, excluded.size(), attnum, tag, SR_ATOM_COMPLEMENT, 0, 0, 0});
  for (uint64_t key : excluded) out.push_back(sr_index_atom{key, 0, attnum, tag, SR_ATOM_EXCLUDED, 0, 0, 0});
}

sr_index_atom always_atom() { return sr_index_atom{0, 0, 0, 0, SR_ATOM_ALWAYS, 0, 0, 0}; }

struct CoverSpec {
  std::vector<std::vector<sr_index_atom>> alternatives;
  uint32_t exact = 0;  // sr_cover.exact_alternatives
};

// The randomized tests' keys: column c's value v has key K(c * 100 + v).
uint64_t row_key(uint16_t column, uint64_t value) { return K(column * 100 + value); }

// The randomized tests' text column (substring atoms) and its lowered form.
constexpr uint16_t kTextColumn = 4;
std::string lowered(const std::string& text) {
  std::string out = text;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
sr_index_atom gram_atom(const std::string& gram, bool lower, uint32_t relid = 100) {
  return sr_index_atom{sr_substring_key(relid, kTextColumn, lower, reinterpret_cast<const uint8_t*>(gram.data()),
                                        gram.size()),
                       gram.size(), kTextColumn, SR_TAG_TEXT, SR_ATOM_SUBSTRING, 0, 0, lower ? 1u : 0u};
}

// Whether a true atom is in each alternative, for row (row[column - 1]: the
// value, or -1 for NULL) and text (column kTextColumn; nullptr: NULL). Gram
// atoms carry their gram in a side table: grams[key]. key(column, v): an
// equality atom's key of value v; order(v): a range's order key of it.
std::map<uint64_t, std::string> grams;
template <typename Key, typename Order>
bool holds_with(const CoverSpec& spec, const std::vector<int64_t>& row, const std::string* text, Key&& key,
                Order&& order) {
  for (const auto& alternative : spec.alternatives) {
    bool any = false;
    for (size_t i = 0; i < alternative.size() && !any; i++) {
      const sr_index_atom& a = alternative[i];
      if (a.kind == SR_ATOM_ALWAYS) {
        any = true;
        continue;
      }
      if (a.kind == SR_ATOM_EXCLUDED) continue;
      if (a.kind == SR_ATOM_SUBSTRING) {
        any = text != nullptr && (a.lower ? lowered(*text) : *text).find(grams.at(a.key)) != std::string::npos;
        continue;
      }
      const int64_t v = row[a.attnum - 1];
      if (a.kind == SR_ATOM_NULL) {
        any = v < 0;
        continue;
      }
      if (v < 0) continue;
      if (a.kind == SR_ATOM_COMPLEMENT) {
        any = true;
        for (size_t e = i + 1; e <= i + a.upper; e++) any &= alternative[e].key != key(a.attnum, v);
      } else if (a.kind == SR_ATOM_COMPOSITE) {
        const int64_t w = row[a.range_attnum - 1];
        any = a.key == key(a.attnum, v) && w >= 0 && a.lower <= order(w) && order(w) <= a.upper;
      } else if (a.kind == SR_ATOM_RANGE) {
        any = a.key <= order(v) && order(v) <= a.upper;
      } else {
        any = a.key == key(a.attnum, v);
      }
    }
    if (!any) return false;
  }
  return true;
}
// The randomized tests' keys (row_key) and order keys (the values themselves).
bool cover_holds(const CoverSpec& spec, const std::vector<int64_t>& row, const std::string* text = nullptr) {
  return holds_with(
      spec, row, text, [](uint16_t column, int64_t v) { return row_key(column, uint64_t(v)); },
      [](int64_t v) { return uint64_t(v); });
}

// What the shell's view of one row version keys (sr_router_route): keys of the columns
// with equality or complement atoms, order keys of range columns, NULL probes.
void row_probes(const Router::RelationView& view, const std::vector<int64_t>& row, std::vector<uint64_t>& keys,
                std::vector<uint16_t>& attnums, std::vector<sr_range_probe>& probes,
                const std::string* text = nullptr, uint32_t relid = 100) {
  for (size_t i = 0; i < view.index_column_count; i++) {
    const Router::IndexColumn& c = view.index_columns[i];
    if (c.attnum == kTextColumn) {  // the text column: its grams (variable_keys.c)
      if (text == nullptr) continue;
      for (int lower = 0; lower <= 1; lower++) {
        const std::string bytes = lower ? lowered(*text) : *text;
        const unsigned lengths = lower ? c.substring_grams >> 8 : c.substring_grams & 0xff;
        const size_t n = sr_substring_keys(relid, c.attnum, lower, lengths,
                                           reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), nullptr,
                                           nullptr, 0);
        const size_t at = keys.size();
        keys.resize(at + n);
        attnums.resize(at + n);
        sr_substring_keys(relid, c.attnum, lower, lengths, reinterpret_cast<const uint8_t*>(bytes.data()),
                          bytes.size(), keys.data() + at, attnums.data() + at, n);
      }
      continue;
    }
    const int64_t v = row[c.attnum - 1];
    if (v < 0) {
      if (c.null_shapes > 0) probes.push_back(sr_range_probe{0, c.attnum, 1, 0});
      continue;
    }
    if (c.shapes > 0 || c.complement_shapes > 0) {
      keys.push_back(row_key(c.attnum, uint64_t(v)));
      attnums.push_back(c.attnum);
    }
    if (c.range_shapes > 0) probes.push_back(sr_range_probe{uint64_t(v), c.attnum, 0, 0});
  }
}

std::string describe(const CoverSpec& spec, const std::vector<int64_t>& row) {
  std::string out = "row";
  for (int64_t v : row) out += " " + std::to_string(v);
  for (const auto& alternative : spec.alternatives) {
    out += " |";
    for (const sr_index_atom& a : alternative)
      out += " k" + std::to_string(a.kind) + "@" + std::to_string(a.attnum) + (a.kind == SR_ATOM_RANGE ? "[" + std::to_string(a.key) + "," + std::to_string(a.upper) + "]" : "");
  }
  return out;
}

void add(Router& r, uint64_t id, uint32_t relid, const CoverSpec& spec) {
  std::vector<sr_index_atom> atoms;
  std::vector<uint32_t> sizes;
  for (const auto& alternative : spec.alternatives) {
    atoms.insert(atoms.end(), alternative.begin(), alternative.end());
    sizes.push_back(static_cast<uint32_t>(alternative.size()));
  }
  r.add_shape(id, relid, nullptr, sr_cover{atoms.data(), sizes.data(), sizes.size(), spec.exact});
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

// Shapes over the same columns share one column list. Many distinct lists
// come and go: they are compacted as they drop, and those left keep theirs.
TEST(Cover, ColumnListsSharedAndCompacted) {
  Router r;
  for (uint64_t k = 1; k <= 10000; k++)
    add(r, k, 100, CoverSpec{{{eq(K(k), 1, SR_TAG_INT), eq(K(100000 + k), 2, SR_TAG_INT)}}});
  EXPECT_LE(r.cover_column_bytes(), 16u);  // one list: length, uses, two columns
  for (uint64_t k = 1; k <= 10000; k++)
    if (k % 10 != 0) r.drop_shape(k);
  EXPECT_EQ(columns(r, 100), (std::map<int, uint32_t>{{1, 1000}, {2, 1000}}));
  for (uint64_t k = 10; k <= 10000; k += 10) {
    ASSERT_EQ(candidates(r, 100, {K(100000 + k)}), Ids{k});
    r.drop_shape(k);
  }
  EXPECT_TRUE(columns(r, 100).empty());

  const size_t before = r.cover_column_bytes();  // (the dead list, not compacted yet)
  std::map<int, uint32_t> model;
  auto a_of = [](uint64_t k) { return static_cast<uint16_t>(10 + k % 97); };
  auto b_of = [](uint64_t k) { return static_cast<uint16_t>(200 + k % 89); };
  for (uint64_t k = 1; k <= 20000; k++) {
    add(r, 20000 + k, 101, CoverSpec{{{eq(K(k), a_of(k), SR_TAG_INT), eq(K(500000 + k), b_of(k), SR_TAG_INT)}}});
    model[a_of(k)]++;
    model[b_of(k)]++;
  }
  const size_t all_lists = r.cover_column_bytes();
  EXPECT_EQ(all_lists - before, 97u * 89 * 16);  // every (a, b) pair once
  for (uint64_t k = 1; k <= 20000; k++)
    if (k % 13 != 0 && (k % 97) % 3 != 0) {
      r.drop_shape(20000 + k);
      if (--model[a_of(k)] == 0) model.erase(a_of(k));
      if (--model[b_of(k)] == 0) model.erase(b_of(k));
    }
  EXPECT_EQ(columns(r, 101), model);
  EXPECT_LE(r.cover_column_bytes(), all_lists / 2);  // compacted
  for (uint64_t k = 1; k <= 20000; k++) {
    if (k % 13 != 0 && (k % 97) % 3 != 0) continue;
    ASSERT_EQ(candidates(r, 101, {K(500000 + k)}), Ids{20000 + k});
    r.drop_shape(20000 + k);
  }
  EXPECT_TRUE(columns(r, 101).empty());
}

TEST(Cover, ReplacingAShapeMovesItsColumns) {
  Router r;
  add(r, 1, 100, CoverSpec{{{eq(K(7), 1, SR_TAG_INT), eq(K(107), 2, SR_TAG_INT)}}});
  add(r, 1, 100, CoverSpec{{{eq(K(9), 3, SR_TAG_INT)}}});
  EXPECT_EQ(columns(r, 100), (std::map<int, uint32_t>{{3, 1}}));
  EXPECT_EQ(candidates(r, 100, {K(7)}), Ids{});
  EXPECT_EQ(candidates(r, 100, {K(9)}), Ids{1});
}

// An indexed expression's atoms lie on a virtual column (the shell numbers them
// from 4096, above any table column): filed and found as a column's atoms are,
// with the keys' columns given; expressions sharing a number keep their keys.
TEST(Cover, VirtualColumnsAreFiledAsColumns) {
  Router r;
  add(r, 1, 100, CoverSpec{{{eq(K(1), 5000, SR_TAG_INT), eq(K(2), 5000, SR_TAG_INT)}}});
  add(r, 2, 100, CoverSpec{{{eq(K(3), 5000, SR_TAG_TEXT)}}});
  add(r, 3, 100, CoverSpec{{{eq(K(5), 8191, SR_TAG_INT)}, {eq(K(6), 1, SR_TAG_INT), eq(K(7), 1, SR_TAG_INT)}}});
  EXPECT_EQ(columns(r, 100), (std::map<int, uint32_t>{{5000, 2}, {8191, 1}}));
  for (int round = 0; round < 2; round++) {
    const uint64_t keys[] = {K(2), K(3), K(9), K(5)};
    const uint16_t attnums[] = {5000, 5000, 5000, 8191};
    Ids got;
    for (const sr_shape_ref& s : r.candidates(100, keys, 3, false, nullptr, 0, attnums, 3, 0))
      got.push_back(s.shape_id);
    EXPECT_EQ(got, (Ids{1, 2}));
    got.clear();
    for (const sr_shape_ref& s : r.candidates(100, keys + 3, 1, false, nullptr, 0, attnums + 3, 0, 0))
      got.push_back(s.shape_id);
    EXPECT_EQ(got, Ids{3});
    r.maintain(true);
  }
  r.drop_shape(2);
  EXPECT_EQ(columns(r, 100), (std::map<int, uint32_t>{{5000, 1}, {8191, 1}}));
  EXPECT_THROW(add(r, 4, 100, CoverSpec{{{eq(K(1), INT16_MAX, SR_TAG_INT)}}}), std::invalid_argument);
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
    const sr_range_probe p{value, 5, 0, 0};
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
  const sr_range_probe p{5, 2, 0, 0};
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
  auto random_cover = [&](uint32_t relid) {
    CoverSpec spec;
    const int alternatives = 1 + static_cast<int>(rng() % 3);
    for (int a = 0; a < alternatives; a++) {
      std::vector<sr_index_atom> atoms;
      const int n = static_cast<int>(rng() % 4);
      for (int i = 0; i < n; i++) {
        const uint16_t column = static_cast<uint16_t>(1 + rng() % 3);
        const uint64_t kind = rng() % 12;
        if (kind < 4) {
          const uint64_t lo = rng() % 14, hi = lo + rng() % 6;
          atoms.push_back(range(rng() % 4 == 0 ? 0 : lo, rng() % 4 == 0 ? UINT64_MAX : hi, column));
        } else if (kind == 4) {
          atoms.push_back(null_atom(column));
        } else if (kind == 5) {
          std::vector<uint64_t> excluded;
          for (uint64_t e = rng() % 3; e > 0; e--) excluded.push_back(key_of(column, rng() % 12));
          complement(atoms, column, excluded);
        } else if (kind == 6 && rng() % 8 == 0) {
          atoms.push_back(always_atom());
        } else if (kind == 7) {  // a gram of 1..8 letters of a small alphabet, raw or lowered
          std::string gram;
          for (size_t g = 1 + (rng() % 3 == 0 ? rng() % 8 : rng() % 3); g > 0; g--) gram += "abAB"[rng() % 4];
          const bool lower = rng() % 2 == 0;
          if (lower) gram = lowered(gram);
          grams[gram_atom(gram, lower, relid).key] = gram;
          atoms.push_back(gram_atom(gram, lower, relid));
        } else {
          atoms.push_back(eq(key_of(column, rng() % 12), column, SR_TAG_INT));
        }
      }
      spec.alternatives.push_back(atoms);
    }
    return spec;
  };
  auto holds = cover_holds;
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
        const CoverSpec spec = random_cover(relid);
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
      std::vector<uint16_t> attnums;
      std::vector<sr_range_probe> probes;
      for (uint16_t column = 1; column <= 3; column++)
        row[column - 1] = rng() % 4 == 0 ? -1 : static_cast<int64_t>(rng() % 20);
      std::string text;
      for (size_t t = rng() % 16; t > 0; t--) text += "abAB"[rng() % 4];
      const std::string* text_value = rng() % 5 == 0 ? nullptr : &text;
      row_probes(view, row, keys, attnums, probes, text_value, relid);
      Ids got;
      // with the keys' columns (complements skip their exclusions) and without (all complements)
      for (const sr_shape_ref& s : r.candidates(relid, keys.data(), keys.size(), false, probes.data(), probes.size(),
                                                q % 2 == 0 ? attnums.data() : nullptr))
        got.push_back(s.shape_id);
      ASSERT_TRUE(std::is_sorted(got.begin(), got.end()));
      ASSERT_EQ(std::adjacent_find(got.begin(), got.end()), got.end());
      for (const auto& [id, shape] : live) {
        if (shape.first != relid || !holds(shape.second, row, text_value)) continue;
        ASSERT_TRUE(std::binary_search(got.begin(), got.end(), id))
            << "round " << round << " missed " << id << " " << describe(shape.second, row) << " text "
            << (text_value != nullptr ? text : "NULL");
      }
      for (uint64_t id : got) ASSERT_EQ(live.at(id).first, relid);
    }
  }
}

// Substring atoms (LIKE '%abc%'): a shape is found through the gram keys of the
// row's windows, once however often the text repeats its gram; the column's
// gram lengths (raw and lowered apart) follow the shapes filed and dropped.
TEST(Cover, SubstringAtomsAreFoundThroughTheirGrams) {
  Router r;
  auto gram = [](const std::string& g, bool lower) {
    return sr_index_atom{sr_substring_key(100, 2, lower, reinterpret_cast<const uint8_t*>(g.data()), g.size()),
                         g.size(), 2, SR_TAG_TEXT, SR_ATOM_SUBSTRING, 0, 0, lower ? 1u : 0u};
  };
  add(r, 1, 100, CoverSpec{{{gram("arch", false)}, {gram("rchi", false)}}});  // '%archi%': two alternatives
  add(r, 2, 100, CoverSpec{{{gram("ab", false)}}});
  add(r, 3, 100, CoverSpec{{{gram("zz", true)}}});
  add(r, 4, 100, CoverSpec{{{gram("q", false), gram("xyz", true)}}});  // '%q%' OR ILIKE '%xyz%'
  add(r, 5, 100, CoverSpec{{{gram("searchin", true)}}});                // ILIKE '%searching%': an 8-byte window
  auto grams = [&] {
    const Router::RelationView view = r.relation(100);
    for (size_t i = 0; i < view.index_column_count; i++)
      if (view.index_columns[i].attnum == 2) return view.index_columns[i].substring_grams;
    return uint16_t{0};
  };
  auto query = [&](const std::string& value, const std::string& lowered) {
    const uint16_t mask = grams();
    std::vector<uint64_t> keys(8 * (value.size() + lowered.size()) + 1);
    std::vector<uint16_t> attnums(keys.size());
    size_t n = sr_substring_keys(100, 2, 0, mask & 0xff, reinterpret_cast<const uint8_t*>(value.data()),
                                 value.size(), keys.data(), attnums.data(), keys.size());
    n += sr_substring_keys(100, 2, 1, mask >> 8, reinterpret_cast<const uint8_t*>(lowered.data()), lowered.size(),
                           keys.data() + n, attnums.data() + n, keys.size() - n);
    Ids out;
    for (const sr_shape_ref& s : r.candidates(100, keys.data(), n, false, nullptr, 0, attnums.data()))
      out.push_back(s.shape_id);
    // The same through a row's view: the route keys only the windows its gram filter passes.
    std::vector<sr_value> values(3), lowers(3);
    values[2].v.bytes = reinterpret_cast<const uint8_t*>(value.data());
    values[2].len = static_cast<uint32_t>(value.size());
    lowers[2].v.bytes = reinterpret_cast<const uint8_t*>(lowered.data());
    lowers[2].len = static_cast<uint32_t>(lowered.size());
    const sr_row_view row{values.data(), lowers.data(), nullptr, 0};
    const uint64_t probes_before = r.counters().equality_probes;
    Ids routed;
    for (const sr_shape_ref& s : r.route(100, &row, nullptr, true)) routed.push_back(s.shape_id);
    EXPECT_EQ(routed, out) << value;
    EXPECT_EQ(r.counters().equality_probes - probes_before, n) << value;  // every window, filtered or not
    // And with the raw bytes marked ascii_fold, as the shell passes ASCII text: the core lowers them.
    std::string folded = value;
    for (char& c : folded) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    if (folded == lowered) {
      std::vector<sr_value> folds(3);
      folds[2] = values[2];
      folds[2].ascii_fold = 1;
      const sr_row_view raw_row{values.data(), folds.data(), nullptr, 0};
      Ids routed_folded;
      for (const sr_shape_ref& s : r.route(100, &raw_row, nullptr, true)) routed_folded.push_back(s.shape_id);
      EXPECT_EQ(routed_folded, out) << value << ", folded by the core";
    }
    return out;
  };
  EXPECT_EQ(grams(), (1u << 0) | (1u << 1) | (1u << 3) | (1u << (8 + 1)) | (1u << (8 + 2)) | (1u << (8 + 7)));
  EXPECT_EQ(query("Searching", "searching"), (Ids{1, 5}));  // 1: its raw "arch"
  EXPECT_EQ(query("Search in", "search in"), (Ids{1}));  // not 5: not its 8 bytes
  r.drop_shape(5);
  EXPECT_EQ(query("Archive", "archive"), (Ids{}));  // raw grams from the raw text only
  EXPECT_EQ(query("marching", "marching"), (Ids{1}));
  EXPECT_EQ(query("abab ab archi", "abab ab archi"), (Ids{1, 2}));
  const uint64_t before = r.counters().substring_candidates;
  EXPECT_EQ(query("abababababab", "abababababab"), (Ids{2}));
  EXPECT_EQ(r.counters().substring_candidates - before, 3u);  // "ab" looked up once by each of query's three ways
  EXPECT_EQ(query("ZZ", "zz"), (Ids{3}));
  EXPECT_EQ(query("XYZ", "xyz"), (Ids{4}));
  EXPECT_EQ(query("q", "q"), (Ids{4}));
  EXPECT_EQ(query("", ""), (Ids{}));
  r.drop_shape(4);
  EXPECT_EQ(grams(), (1u << 1) | (1u << 3) | (1u << (8 + 1)));
  r.drop_shape(1);
  r.drop_shape(2);
  EXPECT_EQ(grams(), 1u << (8 + 1));
  EXPECT_EQ(query("ZZ", "zz"), (Ids{3}));
  r.drop_shape(3);
  EXPECT_EQ(r.relation(100).index_column_count, 0u);
}

// Prefix atoms (LIKE 'p%'): a shape is found through the key of the row's
// first L bytes for its prefix's length L; the column's lengths follow the
// shapes filed and dropped.
TEST(Cover, PrefixAtomsAreFoundThroughTheirLength) {
  Router r;
  auto prefix = [](const std::string& p) {
    const size_t len = std::min<size_t>(p.size(), SR_PREFIX_MAX);
    return sr_index_atom{sr_prefix_key(100, 2, reinterpret_cast<const uint8_t*>(p.data()), len), len, 2,
                         SR_TAG_TEXT, SR_ATOM_PREFIX, 0, 0, 0};
  };
  const std::string long_prefix(70, 'z');
  add(r, 1, 100, CoverSpec{{{prefix("ab")}}});
  add(r, 2, 100, CoverSpec{{{prefix("abc")}}});
  add(r, 3, 100, CoverSpec{{{prefix("x"), prefix("abd")}}});  // x% OR abd%
  add(r, 4, 100, CoverSpec{{{prefix(long_prefix)}}});          // cut to 64 bytes
  auto lengths = [&] {
    const Router::RelationView view = r.relation(100);
    for (size_t i = 0; i < view.index_column_count; i++)
      if (view.index_columns[i].attnum == 2) return view.index_columns[i].prefix_lengths;
    return uint64_t{0};
  };
  auto query = [&](const std::string& value) {
    const Router::RelationView view = r.relation(100);
    std::vector<sr_index_column> columns(view.index_column_count);
    std::memcpy(columns.data(), view.index_columns, sizeof(sr_index_column) * columns.size());
    sr_value v{};
    v.v.bytes = reinterpret_cast<const uint8_t*>(value.data());
    v.len = static_cast<uint32_t>(value.size());
    std::vector<sr_value> row(columns.size(), v);
    const shape_router::ChangeKeys made = row_view_keys(100, columns.data(), columns.size(), row.data());
    Ids out;
    for (const sr_shape_ref& s :
         r.candidates(100, made.keys.data(), made.key_count, false, nullptr, 0, made.key_attnums.data()))
      out.push_back(s.shape_id);
    return out;
  };
  EXPECT_EQ(lengths(), (uint64_t{1} << 0) | (uint64_t{1} << 1) | (uint64_t{1} << 2) | (uint64_t{1} << 63));
  EXPECT_EQ(query("abcdef"), (Ids{1, 2}));
  EXPECT_EQ(query("abd"), (Ids{1, 3}));
  EXPECT_EQ(query("ab"), (Ids{1}));
  EXPECT_EQ(query("a"), (Ids{}));
  EXPECT_EQ(query("xylophone"), (Ids{3}));
  EXPECT_EQ(query(std::string(64, 'z')), (Ids{4}));
  EXPECT_EQ(query("zzz"), (Ids{}));
  EXPECT_GT(r.counters().prefix_candidates, 0u);
  r.drop_shape(2);
  r.drop_shape(4);
  EXPECT_EQ(lengths(), (uint64_t{1} << 0) | (uint64_t{1} << 1) | (uint64_t{1} << 2));  // abd% keeps length 3
  EXPECT_EQ(query("abcdef"), (Ids{1}));
  r.drop_shape(3);
  EXPECT_EQ(lengths(), uint64_t{1} << 1);
  r.maintain(true);
  EXPECT_EQ(query("abcdef"), (Ids{1}));
}

// Exact covers: the index decides the shape (SR_EXACT_*) from the row version
// each true atom came from, and drops a candidate none holds for.
TEST(Cover, ExactShapesAreDecidedPerRowVersion) {
  Router r;
  add(r, 1, 100, CoverSpec{{{eq(K(7), 1, SR_TAG_INT), eq(K(8), 1, SR_TAG_INT)}}, 1});  // a IN (7, 8)
  add(r, 2, 100, CoverSpec{{{range(10, 20, 2)}}, 1});                                   // b BETWEEN 10 AND 20
  add(r, 3, 100, CoverSpec{{{eq(K(7), 1, SR_TAG_INT)}}, 0});                            // a = 7 AND f(x): not exact
  add(r, 4, 100, CoverSpec{{{eq(K(7), 1, SR_TAG_INT), eq(K(9), 3, SR_TAG_INT)}}, 1});  // a = 7 OR c = 9: two columns
  add(r, 5, 100, CoverSpec{{{eq(K(7), 1, SR_TAG_TEXT)}}, 1});                           // a text key: not one-to-one
  auto query = [&](std::vector<uint64_t> keys, std::vector<uint16_t> attnums, size_t old_keys_from,
                   std::vector<sr_range_probe> probes, size_t old_probes_from) {
    std::map<uint64_t, int> out;
    for (const sr_shape_ref& s : r.candidates(100, keys.data(), keys.size(), false, probes.data(), probes.size(),
                                              attnums.data(), old_keys_from, old_probes_from))
      out[s.shape_id] = s.exact;
    return out;
  };
  const int D = SR_EXACT_DECIDED, N = SR_EXACT_NEW, O = SR_EXACT_OLD;
  for (int round = 0; round < 2; round++) {  // overlay, then the static index
    // INSERT a = 7, b = 15
    EXPECT_EQ(query({K(7)}, {1}, 1, {{15, 2, 0, 0}}, 1), (std::map<uint64_t, int>{{1, D | N}, {2, D | N}, {3, 0}, {4, 0}, {5, 0}}));
    // UPDATE a 7 -> 8 (b 15 -> 30): shape 1 in both rows; shape 2 moves out
    EXPECT_EQ(query({K(8), K(7)}, {1, 1}, 1, {{30, 2, 0, 0}, {15, 2, 0, 0}}, 1),
              (std::map<uint64_t, int>{{1, D | N | O}, {2, D | O}, {3, 0}, {4, 0}, {5, 0}}));
    // a key hit on another column is no proof: 7 in column 3 is not a = 7
    EXPECT_EQ(query({K(7)}, {3}, 1, {}, 0), (std::map<uint64_t, int>{{3, 0}, {4, 0}, {5, 0}}));
    r.maintain(true);
  }
  EXPECT_GT(r.counters().exact_hits, 0u);
  // without columns, or for every shape, nothing is decided
  const uint64_t k7 = K(7);
  for (const sr_shape_ref& s : r.candidates(100, &k7, 1)) EXPECT_EQ(s.exact, 0) << s.shape_id;
  for (const sr_shape_ref& s : r.candidates(100, nullptr, 0, true)) EXPECT_EQ(s.exact, 0) << s.shape_id;
  r.drop_shape(1);
  r.drop_shape(2);
  EXPECT_EQ(query({K(7)}, {1}, 1, {{15, 2, 0, 0}}, 1), (std::map<uint64_t, int>{{3, 0}, {4, 0}, {5, 0}}));
}

// Expression atoms are decided as a column's are, from the row's expression
// results; a row holding two results on one virtual column (two expressions
// whose texts hash to one number) decides nothing: either result may be the one
// a key or range stands for.
TEST(Cover, ExpressionAtomsAreDecidedUnlessTwoResultsShareTheirColumn) {
  Router r;
  const uint16_t e = SR_VIRTUAL_ATTNUM_BASE + 7, f = SR_VIRTUAL_ATTNUM_BASE + 8;
  sr_value three{}, seven{}, forty{};
  three.v.i = 3;
  seven.v.i = 7;
  forty.v.i = 40;
  const uint64_t k3 = sr_index_key(100, e, SR_TAG_INT, &three);
  const uint64_t lo = sr_order_key(SR_TAG_INT, &seven), hi = sr_order_key(SR_TAG_INT, &forty);
  add(r, 1, 100, CoverSpec{{{eq(k3, e, SR_TAG_INT)}}, 1});  // e(row) = 3
  add(r, 2, 100, CoverSpec{{{range(lo, hi, f)}}, 1});      // f(row) BETWEEN 7 AND 40
  const int D = SR_EXACT_DECIDED, N = SR_EXACT_NEW;
  auto route = [&](std::vector<sr_expression_value> results) {
    std::vector<sr_value> values(2);
    const sr_row_view row{values.data(), nullptr, results.data(), results.size()};
    std::map<uint64_t, int> out;
    for (const sr_shape_ref& s : r.route(100, &row, nullptr, true)) out[s.shape_id] = s.exact;
    return out;
  };
  for (int round = 0; round < 2; round++) {  // overlay, then the static index
    EXPECT_EQ(route({{three, e, SR_TAG_INT}, {seven, f, SR_TAG_INT}}), (std::map<uint64_t, int>{{1, D | N}, {2, D | N}}));
    EXPECT_EQ(route({{seven, e, SR_TAG_INT}, {three, f, SR_TAG_INT}}), (std::map<uint64_t, int>{}));
    // a second result on e: both shapes offered, neither decided
    EXPECT_EQ(route({{seven, e, SR_TAG_INT}, {three, e, SR_TAG_INT}, {forty, f, SR_TAG_INT}}),
              (std::map<uint64_t, int>{{1, 0}, {2, 0}}));
    r.maintain(true);
  }
}

// 5,000 shapes on one symbol, each with its own price threshold: a row of that
// symbol reaches the shapes whose threshold its price passes, not all 5,000.
TEST(Cover, CompositeAtomsSplitASharedKeyByThreshold) {
  for (const bool bulk : {false, true}) {
    Router r;
    const uint64_t aapl = K(1), msft = K(2);
    if (bulk) r.begin_bulk_load(10000);
    // symbol = s AND price < c: alternatives [symbol], [price], [composite]
    for (uint64_t c = 1; c <= 5000; c++)
      for (const uint64_t symbol : {aapl, msft})
        add(r, (symbol == aapl ? 0 : 5000) + c, 100,
            CoverSpec{{{eq(symbol, 1, SR_TAG_INT)}, {range(0, c - 1, 2)}, {comp(symbol, 1, 0, c - 1, 2)}}, 4});
    if (bulk) r.end_bulk_load();
    const uint16_t attnums[] = {1};
    auto query = [&](uint64_t symbol, uint64_t price) {
      const sr_range_probe p{price, 2, 0, 0};
      return r.candidates(100, &symbol, 1, false, &p, 1, attnums, 1, 1);
    };
    // price 4990: the 10 AAPL shapes with c > 4990 (bar the first few a
    // registration while decoding files under the bare key)
    const std::vector<sr_shape_ref>& found = query(aapl, 4990);
    EXPECT_LE(found.size(), bulk ? 10u : 12u) << bulk;
    size_t decided = 0;
    for (const sr_shape_ref& s : found) {
      EXPECT_TRUE(s.shape_id <= 5000) << s.shape_id;
      if (s.exact != 0) {
        EXPECT_EQ(s.exact, SR_EXACT_DECIDED | SR_EXACT_NEW);
        EXPECT_GT(s.shape_id, 4990u);
        decided++;
      }
    }
    EXPECT_GE(decided, 10u - (bulk ? 0u : 2u));
    EXPECT_GT(r.counters().composite_candidates, 0u);
    // a symbol no shape names: at most the few shapes filed on price alone
    // while the first thresholds came in (no composite was worth it yet)
    EXPECT_LE(query(K(3), 1).size(), bulk ? 0u : 4u);
    r.maintain(true);
    EXPECT_LE(query(msft, 4990).size(), bulk ? 10u : 12u);
    for (uint64_t c = 4991; c <= 5000; c++) r.drop_shape(c);
    EXPECT_LE(query(aapl, 4990).size(), bulk ? 0u : 2u);
    EXPECT_LE(r.range_entries(), 10000u - 10u);
  }
}

// A key no other shape has stays a plain key, loaded or not: no composite
// group (a range structure of its own) for it.
TEST(Cover, ThresholdsOnUniqueKeysStayPlainKeys) {
  for (const bool bulk : {false, true}) {
    Router r;
    if (bulk) r.begin_bulk_load(100);
    for (uint64_t k = 1; k <= 100; k++)  // project_id = k AND priority >= k % 7
      add(r, k, 100, CoverSpec{{{eq(K(k), 1, SR_TAG_INT)}, {range(k % 7, UINT64_MAX, 2)}, {comp(K(k), 1, k % 7, UINT64_MAX, 2)}}, 4});
    if (bulk) r.end_bulk_load();
    EXPECT_EQ(r.range_entries(), 0u) << bulk;
    EXPECT_EQ(candidates(r, 100, {K(42)}), Ids{42});
  }
}

// A mixer that sees only a key's low 16 bits: keys equal there are one key
// to the filter and the perfect hash, so the static index returns the shapes
// of one for the other (a false positive the program would catch).
uint64_t low16_mixer(uint64_t key, uint64_t seed) { return shape_router::default_mixer(key & 0xffff, seed); }

TEST(Cover, AnExactShapeIsNotDecidedByAHashFalsePositive) {
  Router r(low16_mixer);
  // The twin also needs the slot fingerprint of the key (an index of one key
  // has no front filter: fewer than front_min_keys).
  using shape_router::slot_fingerprint;
  static_assert(shape_router::kStaticIndexParams.front_min_keys > 1, "no front filter for one key");
  const uint64_t key = 0x1234567800000777ULL;
  uint64_t twin = key;
  for (uint64_t i = 1; twin == key || slot_fingerprint(twin) != slot_fingerprint(key); i++) twin = key ^ (i << 20);
  add(r, 1, 100, CoverSpec{{{eq(key, 1, SR_TAG_INT)}}, 1});  // exact
  add(r, 2, 100, CoverSpec{{{eq(key, 1, SR_TAG_INT)}}, 0});  // the same key, inexact
  r.maintain(true);
  ASSERT_GT(r.index_stats().keys, 0u);  // in the static part
  const uint16_t column = 1;
  std::map<uint64_t, int> got;
  for (const sr_shape_ref& s : r.candidates(100, &twin, 1, false, nullptr, 0, &column, 1, 0)) got[s.shape_id] = s.exact;
  EXPECT_EQ(got, (std::map<uint64_t, int>{{2, 0}}));  // 2 goes to its program; 1 is known not to hold
  got.clear();
  for (const sr_shape_ref& s : r.candidates(100, &key, 1, false, nullptr, 0, &column, 1, 0)) got[s.shape_id] = s.exact;
  EXPECT_EQ(got, (std::map<uint64_t, int>{{1, SR_EXACT_DECIDED | SR_EXACT_NEW}, {2, 0}}));
}

// Random exact and inexact covers against the truth, row by row: an exact
// shape's bits are exactly which rows its WHERE holds for, and no shape that
// holds for either row is missing.
TEST(Cover, RandomizedExactDecisionsMatchTheRows) {
  std::mt19937_64 rng(7);
  Router r;
  std::map<uint64_t, CoverSpec> live;
  auto key_of = row_key;
  auto holds = cover_holds;
  for (int round = 0; round < 30; round++) {
    const bool bulk = round % 5 == 0;
    if (bulk) r.begin_bulk_load(100);
    for (int op = 0; op < 200; op++) {
      const uint64_t id = 1 + rng() % 300;
      if (rng() % 4 == 0) {
        r.drop_shape(id);
        live.erase(id);
        continue;
      }
      // One alternative: equality atoms on column 1 and ranges on 2 or 3
      // (exact), or, now and then, a second alternative (a conjunction: inexact).
      CoverSpec spec;
      std::vector<sr_index_atom> atoms;
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < n; i++) {
        if (rng() % 3 == 0) {
          atoms.push_back(eq(key_of(1, rng() % 10), 1, SR_TAG_INT));
        } else if (rng() % 4 == 0) {  // NULL, a complement, or (rarely) every row, on column 2 or 3
          const uint16_t column = static_cast<uint16_t>(2 + rng() % 2);
          const uint64_t kind = rng() % 9;
          if (kind == 0) {
            atoms.push_back(always_atom());
          } else if (kind < 5) {
            atoms.push_back(null_atom(column));
          } else {
            std::vector<uint64_t> excluded;
            for (uint64_t e = rng() % 3; e > 0; e--) excluded.push_back(key_of(column, rng() % 15));
            complement(atoms, column, excluded);
          }
        } else if (rng() % 2 == 0) {  // on a few keys of column 3, thresholds on column 2
          const uint64_t lo = rng() % 12;
          atoms.push_back(comp(key_of(3, rng() % 3), 3, lo, rng() % 3 == 0 ? UINT64_MAX : lo + rng() % 5, 2));
        } else {
          const uint64_t lo = rng() % 12;
          atoms.push_back(range(lo, lo + rng() % 5, static_cast<uint16_t>(2 + rng() % 2)));
        }
      }
      spec.alternatives.push_back(atoms);
      if (rng() % 4 == 0)
        spec.alternatives.push_back({eq(key_of(3, rng() % 10), 3, SR_TAG_INT)});
      else
        spec.exact = 1;
      add(r, id, 100, spec);
      live[id] = spec;
    }
    if (bulk) r.end_bulk_load();
    r.maintain(round % 3 == 0);
    for (int q = 0; q < 300; q++) {
      const Router::RelationView view = r.relation(100);
      const int versions = 1 + static_cast<int>(rng() % 2);  // an UPDATE has two rows
      std::vector<std::vector<int64_t>> rows(versions, std::vector<int64_t>(3));
      std::vector<uint64_t> keys;
      std::vector<uint16_t> attnums;
      std::vector<sr_range_probe> probes;
      size_t old_keys_from = SIZE_MAX, old_probes_from = SIZE_MAX;
      for (int v = 0; v < versions; v++) {
        if (v == 1) {
          old_keys_from = keys.size();
          old_probes_from = probes.size();
        }
        for (uint16_t column = 1; column <= 3; column++)
          rows[v][column - 1] = rng() % 5 == 0 ? -1 : static_cast<int64_t>(rng() % 15);
        row_probes(view, rows[v], keys, attnums, probes);
      }
      std::map<uint64_t, int> got;
      for (const sr_shape_ref& s : r.candidates(100, keys.data(), keys.size(), false, probes.data(), probes.size(),
                                                attnums.data(), old_keys_from, old_probes_from))
        got[s.shape_id] = s.exact;
      for (const auto& [id, spec] : live) {
        const bool new_holds = holds(spec, rows[0], nullptr);
        const bool old_holds = versions == 2 && holds(spec, rows[1], nullptr);
        if (new_holds || old_holds) {
          ASSERT_TRUE(got.count(id)) << "round " << round << " missed " << id;
        }
        if (!got.count(id) || got[id] == 0) continue;
        ASSERT_EQ(spec.exact, 1u) << id;
        // An always atom decides both rows (the shell reads the bits of the rows the change has).
        const bool always = std::any_of(spec.alternatives[0].begin(), spec.alternatives[0].end(),
                                        [](const sr_index_atom& a) { return a.kind == SR_ATOM_ALWAYS; });
        ASSERT_EQ(got[id], always ? SR_EXACT_DECIDED | SR_EXACT_NEW | SR_EXACT_OLD
                                  : SR_EXACT_DECIDED | (new_holds ? SR_EXACT_NEW : 0) | (old_holds ? SR_EXACT_OLD : 0))
            << "round " << round << " shape " << id;
      }
    }
  }
  EXPECT_GT(r.counters().exact_hits, 1000u);
}

// route() with the rows' values of UPDATEs, half of whose values the old row
// shares with the new: candidates and exact decisions of both rows against the
// cover, through the direct path and the prefetched one. Without complement
// atoms route() makes no key of an integer value the value sieve has not.
void random_routes_of_updates(bool complements) {
  std::mt19937_64 rng(11);
  constexpr uint32_t kRel = 100;
  auto value = [](int64_t v) {
    sr_value x{};
    x.is_null = v < 0;
    x.v.i = v < 0 ? 0 : v;
    return x;
  };
  auto key = [&](uint16_t column, int64_t v) {
    const sr_value x = value(v);
    return sr_index_key(kRel, column, SR_TAG_INT, &x);
  };
  auto order = [&](int64_t v) {
    const sr_value x = value(v);
    return sr_order_key(SR_TAG_INT, &x);
  };
  auto holds = [&](const CoverSpec& spec, const std::vector<int64_t>& row) {
    return holds_with(spec, row, nullptr, key, order);
  };
  Router r;
  std::map<uint64_t, CoverSpec> live;
  uint64_t token = 0;
  for (int round = 0; round < 20; round++) {
    for (int op = 0; op < 150; op++) {
      const uint64_t id = 1 + rng() % 200;
      if (rng() % 4 == 0) {
        r.drop_shape(id);
        live.erase(id);
        continue;
      }
      // Equalities on column 1 (exact); ranges, NULL and complement atoms on
      // columns 2 to 4; composites keyed on column 3 with a range on column 2.
      std::vector<sr_index_atom> atoms;
      for (int n = 1 + static_cast<int>(rng() % 3); n > 0; n--) {
        const uint16_t column = static_cast<uint16_t>(2 + rng() % 3);
        const int64_t lo = static_cast<int64_t>(rng() % 12);
        switch (rng() % 5) {
          case 0:
            atoms.push_back(eq(key(1, static_cast<int64_t>(rng() % 10)), 1, SR_TAG_INT));
            break;
          case 1:
            atoms.push_back(null_atom(column));
            break;
          case 2: {
            if (!complements) {
              atoms.push_back(range(order(lo), order(lo + static_cast<int64_t>(rng() % 5)), column));
              break;
            }
            std::vector<uint64_t> excluded;
            for (uint64_t e = rng() % 3; e > 0; e--) excluded.push_back(key(column, static_cast<int64_t>(rng() % 15)));
            complement(atoms, column, excluded);
            break;
          }
          case 3:
            atoms.push_back(comp(key(3, static_cast<int64_t>(rng() % 3)), 3, order(lo),
                                 order(lo + static_cast<int64_t>(rng() % 5)), 2));
            break;
          default:
            atoms.push_back(range(order(lo), order(lo + static_cast<int64_t>(rng() % 5)), column));
        }
      }
      CoverSpec spec;
      spec.alternatives.push_back(atoms);
      if (rng() % 4 == 0)
        spec.alternatives.push_back({eq(key(4, static_cast<int64_t>(rng() % 10)), 4, SR_TAG_INT)});
      else
        spec.exact = 1;
      add(r, id, kRel, spec);
      live[id] = spec;
    }
    r.maintain(round % 3 == 0);
    for (int q = 0; q < 300; q++) {
      // an UPDATE whose old row keeps each value with probability 1/2
      std::vector<int64_t> new_row(4), old_row(4);
      std::vector<sr_value> new_values(5), old_values(5);
      for (uint16_t c = 1; c <= 4; c++) {
        new_row[c - 1] = rng() % 5 == 0 ? -1 : static_cast<int64_t>(rng() % 15);
        old_row[c - 1] = rng() % 2 == 0 ? new_row[c - 1] : rng() % 5 == 0 ? -1 : static_cast<int64_t>(rng() % 15);
        new_values[c] = value(new_row[c - 1]);
        old_values[c] = value(old_row[c - 1]);
      }
      const sr_row_view new_view{new_values.data(), nullptr, nullptr, 0};
      const sr_row_view old_view{old_values.data(), nullptr, nullptr, 0};
      const bool prefetched = q % 2 == 1;
      if (prefetched) {
        ASSERT_TRUE(r.prefetch_rows(kRel, &new_view, &old_view, ++token));
      }
      std::map<uint64_t, int> got;
      for (const sr_shape_ref& s : r.route(kRel, &new_view, &old_view, true, prefetched ? token : 0))
        got[s.shape_id] = s.exact;
      for (const auto& [id, spec] : live) {
        const bool new_holds = holds(spec, new_row), old_holds = holds(spec, old_row);
        if (new_holds || old_holds) {
          ASSERT_TRUE(got.count(id)) << "round " << round << " missed " << id;
        }
        if (!got.count(id) || got[id] == 0) continue;
        ASSERT_EQ(spec.exact, 1u) << id;
        ASSERT_EQ(got[id], SR_EXACT_DECIDED | (new_holds ? SR_EXACT_NEW : 0) | (old_holds ? SR_EXACT_OLD : 0))
            << "round " << round << " shape " << id;
      }
    }
  }
  EXPECT_GT(r.counters().exact_hits, 1000u);
  EXPECT_GT(r.counters().prefetched_keys_reused, 1000u);
  if (!complements) {
    EXPECT_GT(r.counters().sieved_values, 1000u);
  }
}

TEST(Cover, RandomizedRoutesOfUpdatesDecideBothRows) { random_routes_of_updates(true); }
TEST(Cover, RandomizedSievedRoutesOfUpdatesDecideBothRows) { random_routes_of_updates(false); }

// An integer value, its key on (relid, column), and its order key.
sr_value int_value(int64_t v) {
  sr_value x{};
  x.v.i = v;
  return x;
}
uint64_t int_key(uint32_t relid, uint16_t column, int64_t v) {
  const sr_value x = int_value(v);
  return sr_index_key(relid, column, SR_TAG_INT, &x);
}
uint64_t int_order(int64_t v) {
  const sr_value x = int_value(v);
  return sr_order_key(SR_TAG_INT, &x);
}

// An integer value no shape is keyed on (equality or composite) is answered by
// the value sieve: no key made, nothing looked up, the routes unchanged.
TEST(Cover, TheValueSieveAnswersValuesNoShapeIsKeyedOn) {
  constexpr uint32_t kRel = 100;
  auto value = int_value;
  auto key = [&](int64_t v, uint16_t column = 1) { return int_key(kRel, column, v); };
  auto order = int_order;
  Router r;
  add(r, 1, kRel, CoverSpec{{{eq(key(5), 1, SR_TAG_INT)}}, 1});  // column 1 = 5
  add(r, 2, kRel, CoverSpec{{{range(order(10), order(20), 2)}}, 1});  // column 2 BETWEEN 10 AND 20
  // enough keys for a front filter, which tells the quiet changes
  const uint64_t last = 2 + shape_router::kStaticIndexParams.front_min_keys;
  for (uint64_t id = 3; id <= last; id++)
    add(r, id, kRel, CoverSpec{{{eq(key(static_cast<int64_t>(1000 + id)), 1, SR_TAG_INT)}}, 1});
  // column 3 = 7 AND column 2 BETWEEN 30 AND 40: a composite, column 3 keyed by nothing else
  add(r, last + 1, kRel, CoverSpec{{{comp(key(7, 3), 3, order(30), order(40), 2)}}, 0});
  r.maintain(true);
  auto route = [&](int64_t new1, int64_t new2, int64_t old1, int64_t old2, int64_t new3 = 0, int64_t old3 = 0) {
    const std::vector<sr_value> new_values{value(0), value(new1), value(new2), value(new3)};
    const std::vector<sr_value> old_values{value(0), value(old1), value(old2), value(old3)};
    const sr_row_view new_view{new_values.data(), nullptr, nullptr, 0};
    const sr_row_view old_view{old_values.data(), nullptr, nullptr, 0};
    std::map<uint64_t, int> got;
    for (const sr_shape_ref& s : r.route(kRel, &new_view, &old_view, true)) got[s.shape_id] = s.exact;
    return got;
  };
  constexpr int D = SR_EXACT_DECIDED, N = SR_EXACT_NEW, O = SR_EXACT_OLD;
  // Both rows' values of columns 1 and 3: probed, by the sieve (all but 5 and 1003...) or the index.
  auto counts = [&]() { return std::make_pair(r.counters().equality_probes, r.counters().sieved_values); };
  auto before = counts();
  EXPECT_EQ(route(7, 3, 7, 4), (std::map<uint64_t, int>{}));
  EXPECT_EQ(counts(), std::make_pair(before.first + 4, before.second + 4));
  before = counts();
  EXPECT_EQ(route(5, 3, 1003, 3, 7, 8), (std::map<uint64_t, int>{{1, D | N}, {3, D | O}}));
  EXPECT_EQ(counts(), std::make_pair(before.first + 4, before.second + 1));  // the old row's 8
  // Candidates: each shape decided on both rows.
  EXPECT_EQ(route(5, 15, 5, 12), (std::map<uint64_t, int>{{1, D | N | O}, {2, D | N | O}}));
  EXPECT_EQ(route(5, 3, 5, 15), (std::map<uint64_t, int>{{1, D | N | O}, {2, D | O}}));
  EXPECT_EQ(route(6, 15, 7, 15), (std::map<uint64_t, int>{{2, D | N | O}}));
  // The composite from its key, shared by both rows, and the old row's column 2.
  const uint64_t composite = last + 1;
  EXPECT_EQ(route(6, 3, 6, 35, 7, 7), (std::map<uint64_t, int>{{composite, 0}}));
  EXPECT_EQ(route(6, 35, 6, 3, 7, 7), (std::map<uint64_t, int>{{composite, 0}}));
  EXPECT_EQ(route(6, 3, 6, 4, 7, 7), (std::map<uint64_t, int>{}));
}

// A table with a complement atom keys every integer value: the complement list
// needs the value's key (the shapes whose constants are not it), so the sieve,
// which holds only equality and composite keys' values, is not asked.
TEST(Cover, AComplementColumnKeysEveryValue) {
  constexpr uint32_t kRel = 101;
  auto value = int_value;
  auto key = [&](int64_t v, uint16_t column) { return int_key(kRel, column, v); };
  Router r;
  add(r, 1, kRel, CoverSpec{{{eq(key(5, 1), 1, SR_TAG_INT)}}, 1});  // column 1 = 5
  std::vector<sr_index_atom> atoms;
  complement(atoms, 2, {key(3, 2)});  // column 2 <> 3
  add(r, 2, kRel, CoverSpec{{atoms}, 1});
  r.maintain(true);
  auto route = [&](int64_t c1, int64_t c2) {
    const std::vector<sr_value> values{value(0), value(c1), value(c2)};
    const sr_row_view row{values.data(), nullptr, nullptr, 0};
    std::map<uint64_t, int> got;
    for (const sr_shape_ref& s : r.route(kRel, &row, nullptr, true)) got[s.shape_id] = s.exact;
    return got;
  };
  constexpr int D = SR_EXACT_DECIDED, N = SR_EXACT_NEW;
  EXPECT_EQ(route(6, 9), (std::map<uint64_t, int>{{2, D | N}}));
  EXPECT_EQ(route(5, 3), (std::map<uint64_t, int>{{1, D | N}}));
  EXPECT_EQ(r.counters().sieved_values, 0u);
}

}  // namespace
