// Unit tests of CompositeIndex (composite atoms: a key on one column and a range
// on another): stabs against a simple model through adds, drops and rebuilds,
// and groups added under a key whose map must grow meanwhile.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "shape_router/composite_index.hpp"

namespace {

using shape_router::CompositeIndex;

sr_index_atom atom(uint64_t key, uint16_t attnum, uint16_t range_attnum, uint64_t lo, uint64_t hi) {
  return sr_index_atom{key, hi, attnum, SR_TAG_INT, SR_ATOM_COMPOSITE, range_attnum, SR_TAG_INT, lo};
}

std::set<uint32_t> stab(const CompositeIndex& index, uint32_t relid, uint64_t key, uint16_t attnum,
                        const std::map<uint16_t, uint64_t>& row) {
  std::set<uint32_t> out;
  index.stab(
      relid, key, attnum,
      [&](uint16_t column) -> const uint64_t* {
        auto it = row.find(column);
        return it == row.end() ? nullptr : &it->second;
      },
      [&](uint32_t slot) { out.insert(slot); });
  return out;
}

// A second range column under an existing key while the key map is at its
// load limit: the new group must link to the key's first group as it was.
TEST(CompositeIndex, NewGroupUnderAKeyWhileTheMapGrows) {
  CompositeIndex index;
  uint32_t slot = 0;
  for (uint64_t k = 1; k <= 14; k++) index.add(slot++, 7, atom(k, 1, 2, 0, 100));
  index.add(slot++, 7, atom(1, 1, 3, 0, 100));
  for (uint64_t k = 15; k <= 200; k++) index.add(slot++, 7, atom(k, 1, 3, 0, 100));
  EXPECT_EQ(stab(index, 7, 1, 1, {{2, 5}, {3, 5}}), (std::set<uint32_t>{0, 14}));
  EXPECT_EQ(stab(index, 7, 1, 1, {{3, 5}}), (std::set<uint32_t>{14}));
  EXPECT_EQ(stab(index, 7, 1, 1, {{3, 500}}), (std::set<uint32_t>{}));
  EXPECT_EQ(stab(index, 8, 1, 1, {{2, 5}, {3, 5}}), (std::set<uint32_t>{}));  // another relation
  EXPECT_EQ(stab(index, 7, 1, 4, {{2, 5}, {3, 5}}), (std::set<uint32_t>{}));  // the key on another column
  EXPECT_EQ(stab(index, 7, 1, 0, {{2, 5}}), (std::set<uint32_t>{0}));          // column not known: any
  EXPECT_EQ(index.shapes_under(7, 1), 2u);
}

// The key filter: every key a group is filed under passes (also as the filter
// grows with the groups), and few others do, so most keys of a row skip the map.
TEST(CompositeIndex, KeyFilterPassesEveryGroupKeyAndFewOthers) {
  std::mt19937_64 rng(3);
  CompositeIndex index;
  EXPECT_FALSE(index.may_have_key(5));
  std::vector<uint64_t> keys;
  for (uint32_t slot = 0; slot < 5000; slot++) {
    keys.push_back(slot == 0 ? 0 : rng());  // 0 is stored as 1
    index.add(slot, 7, atom(keys.back(), 1, 2, 0, 100));
    if (slot % 97 == 0) {
      for (uint64_t k : keys) ASSERT_TRUE(index.may_have_key(k));
    }
  }
  for (uint64_t k : keys) ASSERT_TRUE(index.may_have_key(k));
  EXPECT_EQ(stab(index, 7, 0, 1, {{2, 5}}), (std::set<uint32_t>{0}));
  size_t passed = 0;
  for (int i = 0; i < 100000; i++) passed += index.may_have_key(rng());
  EXPECT_LT(passed, 100000u / 20) << passed;
}

TEST(CompositeIndex, RandomizedAgainstAModel) {
  std::mt19937_64 rng(15);
  CompositeIndex index;
  struct Entry {
    uint64_t key;
    uint16_t range_attnum;
    uint64_t lo, hi;
  };
  std::map<uint32_t, std::vector<Entry>> model;
  for (int round = 0; round < 40; round++) {
    for (int op = 0; op < 400; op++) {
      const uint32_t slot = static_cast<uint32_t>(rng() % 600);
      if (rng() % 3 == 0) {
        index.drop(slot);
        model.erase(slot);
        continue;
      }
      if (model.count(slot)) continue;  // a shape is filed once
      const int atoms = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < atoms; i++) {
        const uint64_t lo = rng() % 50;
        const Entry e{rng() % 20, static_cast<uint16_t>(2 + rng() % 2), lo, rng() % 4 == 0 ? UINT64_MAX : lo + rng() % 20};
        index.add(slot, 9, atom(e.key, 1, e.range_attnum, e.lo, e.hi));
        model[slot].push_back(e);
      }
    }
    index.maintain(round % 4 == 0);
    size_t entries = 0;
    for (const auto& [slot, list] : model) entries += list.size();
    ASSERT_EQ(index.entries(), entries);
    for (int q = 0; q < 200; q++) {
      const uint64_t key = rng() % 22;
      std::map<uint16_t, uint64_t> row;
      if (rng() % 5) row[2] = rng() % 80;
      if (rng() % 5) row[3] = rng() % 80;
      std::set<uint32_t> expected;
      for (const auto& [slot, list] : model)
        for (const Entry& e : list) {
          auto v = row.find(e.range_attnum);
          if (e.key == key && v != row.end() && e.lo <= v->second && v->second <= e.hi) expected.insert(slot);
        }
      ASSERT_EQ(stab(index, 9, key, 1, row), expected) << "round " << round;
    }
  }
}

}  // namespace
