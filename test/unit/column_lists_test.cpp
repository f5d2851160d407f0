// Unit tests of ColumnLists: NULL and complement atoms per (relation, column),
// with drops that move the last entry into the hole, and exclusions that are
// exact only where keys are.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "shape_router/column_lists.hpp"

namespace {

using shape_router::ColumnLists;

std::vector<uint32_t> nulls(const ColumnLists& l, uint32_t relid, uint16_t attnum) {
  std::vector<uint32_t> out;
  l.stab_null(relid, attnum, [&](uint32_t slot) { out.push_back(slot); });
  std::sort(out.begin(), out.end());
  return out;
}

// (slot, holds) for a value with key key
std::map<uint32_t, bool> complements(ColumnLists& l, uint32_t relid, uint16_t attnum, uint64_t key, bool exact) {
  std::map<uint32_t, bool> out;
  l.stab_complement(relid, attnum, key, exact, [&](uint32_t slot, bool holds) { out[slot] = holds; });
  return out;
}

TEST(ColumnLists, NullAtomsPerColumn) {
  ColumnLists l;
  l.add_null(100, 2, 7);
  l.add_null(100, 2, 9);
  l.add_null(100, 3, 7);
  l.add_null(101, 2, 8);
  EXPECT_EQ(nulls(l, 100, 2), (std::vector<uint32_t>{7, 9}));
  EXPECT_EQ(nulls(l, 100, 3), (std::vector<uint32_t>{7}));
  EXPECT_EQ(nulls(l, 101, 2), (std::vector<uint32_t>{8}));
  EXPECT_EQ(nulls(l, 100, 4), (std::vector<uint32_t>{}));
  l.drop(100, 2, 7);
  EXPECT_EQ(nulls(l, 100, 2), (std::vector<uint32_t>{9}));
  EXPECT_EQ(nulls(l, 100, 3), (std::vector<uint32_t>{7}));
  l.drop(100, 2, 7);  // twice: no effect
  EXPECT_EQ(l.entries(), 3u);
}

TEST(ColumnLists, ComplementsSkipTheirExcludedKeys) {
  ColumnLists l;
  const uint64_t archived = 0xa1, deleted = 0xd1, open = 0x01;
  const uint64_t both[] = {archived, deleted};
  l.add_complement(100, 1, 1, &archived, 1);  // status <> 'archived'
  l.add_complement(100, 1, 2, both, 2);       // status NOT IN ('archived', 'deleted')
  l.add_complement(100, 1, 3, nullptr, 0);    // status IS NOT NULL
  EXPECT_EQ(complements(l, 100, 1, open, true), (std::map<uint32_t, bool>{{1, true}, {2, true}, {3, true}}));
  EXPECT_EQ(complements(l, 100, 1, archived, true), (std::map<uint32_t, bool>{{3, true}}));
  EXPECT_EQ(complements(l, 100, 1, deleted, true), (std::map<uint32_t, bool>{{1, true}, {3, true}}));
  // keys not exact for the type: an excluded key may be a collision, so the shape stays, undecided
  EXPECT_EQ(complements(l, 100, 1, archived, false), (std::map<uint32_t, bool>{{1, false}, {2, false}, {3, true}}));
  l.drop(100, 1, 2);
  EXPECT_EQ(complements(l, 100, 1, deleted, true), (std::map<uint32_t, bool>{{1, true}, {3, true}}));
  EXPECT_EQ(l.complement_count(100, 1), 2u);
}

// c <> 1 OR c <> 2 in one alternative: only what both exclude stays excluded.
TEST(ColumnLists, TwoComplementsInOneAlternativeExcludeTheirIntersection) {
  ColumnLists l;
  const uint64_t first[] = {1, 2}, second[] = {2, 3};
  l.add_complement(100, 1, 5, first, 2);
  l.add_complement(100, 1, 5, second, 2);
  EXPECT_EQ(complements(l, 100, 1, 1, true), (std::map<uint32_t, bool>{{5, true}}));
  EXPECT_EQ(complements(l, 100, 1, 2, true), (std::map<uint32_t, bool>{}));
  EXPECT_EQ(complements(l, 100, 1, 3, true), (std::map<uint32_t, bool>{{5, true}}));
  l.drop(100, 1, 5);
  EXPECT_EQ(complements(l, 100, 1, 2, true), (std::map<uint32_t, bool>{}));
  EXPECT_EQ(l.entries(), 0u);
}

// Random adds and drops against a model: every list is what was filed.
TEST(ColumnLists, RandomizedAgainstAModel) {
  std::mt19937_64 rng(42);
  ColumnLists l;
  std::map<std::pair<uint16_t, uint32_t>, bool> null_model;                      // (attnum, slot)
  std::map<std::pair<uint16_t, uint32_t>, std::set<uint64_t>> complement_model;  // -> excluded keys
  for (int op = 0; op < 200000; op++) {
    const uint16_t attnum = static_cast<uint16_t>(1 + rng() % 3);
    const uint32_t slot = static_cast<uint32_t>(rng() % 300);
    const uint64_t choice = rng() % 5;
    if (choice == 0) {
      l.drop(100, attnum, slot);
      null_model.erase({attnum, slot});
      complement_model.erase({attnum, slot});
    } else if (choice == 1) {
      l.add_null(100, attnum, slot);
      null_model[{attnum, slot}] = true;
    } else if (!complement_model.count({attnum, slot})) {
      std::vector<uint64_t> excluded;
      for (uint64_t e = rng() % 3; e > 0; e--) excluded.push_back(1 + rng() % 6);
      l.add_complement(100, attnum, slot, excluded.data(), excluded.size());
      complement_model[{attnum, slot}] = std::set<uint64_t>(excluded.begin(), excluded.end());
    }
    if (op % 997 != 0) continue;
    for (uint16_t a = 1; a <= 3; a++) {
      std::vector<uint32_t> expected;
      for (const auto& [k, v] : null_model)
        if (k.first == a) expected.push_back(k.second);
      ASSERT_EQ(nulls(l, 100, a), expected);
      for (uint64_t key = 1; key <= 7; key++) {
        std::map<uint32_t, bool> want;
        for (const auto& [k, excluded] : complement_model)
          if (k.first == a && !excluded.count(key)) want[k.second] = true;
        ASSERT_EQ(complements(l, 100, a, key, true), want) << "op " << op;
      }
    }
  }
  EXPECT_EQ(l.entries(), null_model.size() + complement_model.size());
}

}  // namespace
