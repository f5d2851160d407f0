// Unit tests of the static index (static_index.hpp): a part built from (key,
// slot) pairs leads every key to its own shapes through filter, perfect hash,
// slot fingerprint and pool; the parts' split and the front filter.
#include "shape_router/static_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "index_keys.hpp"

namespace {

using shape_router::build_static_part;
using shape_router::kListFlag;
using shape_router::kListIndexMask;
using shape_router::StaticIndex;
using shape_router::StaticPart;
using Pairs = std::vector<std::pair<uint64_t, uint32_t>>;
using Slots = std::vector<uint32_t>;

// The shapes a part names for key (which must be one of its keys), ascending.
Slots shapes_of(const StaticPart& part, uint64_t key) {
  const size_t s = part.perfect_hash.slot(key);
  EXPECT_LT(s, part.slot_values.size());
  EXPECT_EQ(part.slot_fingerprints[s], shape_router::slot_fingerprint(key)) << key;
  const uint32_t value = part.slot_values[s];
  if ((value & kListFlag) == 0) return {value};
  const uint32_t offset = value & kListIndexMask;
  return Slots(part.pool.begin() + offset + 1, part.pool.begin() + offset + 1 + part.pool[offset]);
}

TEST(StaticPart, EmptyPairsBuildAnEmptyPart) {
  Pairs pairs;
  StaticPart part;
  ASSERT_TRUE(build_static_part(pairs, shape_router::default_mixer, part));
  EXPECT_EQ(part.keys, 0u);
  EXPECT_EQ(part.filter.bytes(), 0u);
  EXPECT_TRUE(part.slot_values.empty());
  EXPECT_TRUE(part.pool.empty());
  EXPECT_FALSE(part.filter.contains(42));
}

// Keys with one shape are stored inline, keys with several point into the
// pool, and a list several keys share is stored once.
TEST(StaticPart, EveryKeyLeadsToItsShapes) {
  const std::vector<uint64_t> keys = random_keys(5000, 3);
  std::map<uint64_t, std::set<uint32_t>> expected;
  Pairs pairs;
  for (size_t i = 0; i < keys.size(); i++) {
    // Every 10th key has the shared list {1, 2, 3}; every 7th one a list of its own.
    Slots slots = {static_cast<uint32_t>(100 + i)};
    if (i % 10 == 0) slots = {3, 1, 2};
    if (i % 7 == 0) slots.push_back(static_cast<uint32_t>(900000 + i));
    for (uint32_t slot : slots) {
      pairs.push_back({keys[i], slot});
      expected[keys[i]].insert(slot);
    }
  }
  // As ShapeIndex gives them: by slot, so that each key's list comes out ascending.
  std::shuffle(pairs.begin(), pairs.end(), std::mt19937_64(4));
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
  StaticPart part;
  ASSERT_TRUE(build_static_part(pairs, shape_router::default_mixer, part));
  EXPECT_EQ(part.keys, keys.size());
  EXPECT_EQ(part.slot_values.size(), part.perfect_hash.table_size());
  size_t lists = 0, pooled = 0;
  std::set<uint32_t> offsets;
  for (const auto& [key, slots] : expected) {
    ASSERT_TRUE(part.filter.contains(key)) << key;
    ASSERT_EQ(shapes_of(part, key), Slots(slots.begin(), slots.end())) << key;
    const uint32_t value = part.slot_values[part.perfect_hash.slot(key)];
    if (value & kListFlag) {
      lists++;
      if (offsets.insert(value & kListIndexMask).second) pooled += 1 + slots.size();
    }
  }
  EXPECT_GT(lists, 1000u);
  // Each distinct list once: {1, 2, 3} for all the keys that share it.
  EXPECT_EQ(part.pool.size(), pooled);
  EXPECT_LT(offsets.size(), lists);
}

// Keys whose hashes coincide defeat the perfect hash: the build says so.
TEST(StaticPart, CollidingHashesFail) {
  Pairs pairs = {{1, 0}, {2, 1}};
  StaticPart part;
  EXPECT_FALSE(build_static_part(pairs, constant_mixer, part));
  pairs = {{7, 0}, {7, 1}};  // one distinct key: nothing to collide with
  ASSERT_TRUE(build_static_part(pairs, constant_mixer, part));
  EXPECT_EQ(shapes_of(part, 7), Slots({0, 1}));
}

TEST(StaticIndex, PartsSplitKeysEvenly) {
  EXPECT_EQ(StaticIndex::part_count_for(0, 100), 1u);
  EXPECT_EQ(StaticIndex::part_count_for(100, 100), 1u);
  EXPECT_EQ(StaticIndex::part_count_for(101, 100), 2u);
  EXPECT_EQ(StaticIndex::part_count_for(1000, 100), 10u);
  constexpr size_t kParts = 16;
  std::vector<size_t> count(kParts, 0);
  const std::vector<uint64_t> keys = random_keys(160000, 5);
  for (uint64_t key : keys) {
    const size_t p = StaticIndex::part_index(key, kParts);
    ASSERT_LT(p, kParts);
    ASSERT_EQ(p, StaticIndex::part_index(key, kParts));
    count[p]++;
  }
  for (size_t c : count) {
    EXPECT_GT(c, 9000u);
    EXPECT_LT(c, 11000u);
  }
  // Consecutive keys too.
  std::fill(count.begin(), count.end(), 0);
  for (uint64_t key = 1; key <= 160000; key++) count[StaticIndex::part_index(key, kParts)]++;
  for (size_t c : count) EXPECT_GT(c, 9000u);
}

// The front filter passes every key set in it and few others; without one,
// everything passes unless the index is empty. Each part's keys set bits in the
// part's own slice of the filter.
TEST(StaticIndex, FrontFilterPassesItsKeysAndFewOthers) {
  StaticIndex index;
  EXPECT_FALSE(index.may_contain(5));
  index.keys = 1;
  EXPECT_TRUE(index.may_contain(5));

  const std::vector<uint64_t> keys = random_keys(20000, 6);
  constexpr size_t kParts = 4;
  index.parts.resize(kParts);
  index.keys = keys.size();
  index.front_slice = (keys.size() * shape_router::kStaticIndexParams.front_bits_per_key / kParts + 63) / 64;
  index.front.assign(index.front_slice * kParts, 0);
  std::vector<size_t> set_in(kParts, 0);
  for (uint64_t key : keys) {
    const uint64_t h = StaticIndex::front_hash(key);
    const size_t word = index.front_word(key, h);
    ASSERT_EQ(word / index.front_slice, index.part_of(key)) << "a key's word lies in its part's slice";
    set_in[word / index.front_slice]++;
    index.front[word] |= StaticIndex::front_bits(h);
  }
  for (size_t n : set_in) EXPECT_GT(n, 4000u);
  for (uint64_t key : keys) ASSERT_TRUE(index.may_contain(key)) << key;
  size_t passed = 0;
  const std::vector<uint64_t> others = non_keys(200000, 7, keys);
  for (uint64_t key : others) passed += index.may_contain(key);
  EXPECT_LT(passed, others.size() * 10 / 1000);  // about 0.56% at 16 bits a key (4.7% at 7)
  EXPECT_GT(passed, 0u);
}

}  // namespace
