// KeyCounts: the deferred cover choice's counts, against a std::map model.
#include "shape_router/key_counts.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

using shape_router::KeyCounts;

// Counts from add and add_if_present match the model's, sized ahead or grown
// from nothing (a grown table places its entries again by fingerprint).
TEST(KeyCounts, CountsAsAModelDoesSizedOrGrown) {
  for (size_t sized : {size_t{0}, size_t{50000}}) {
    std::mt19937_64 rng(17 + sized);
    KeyCounts counts(sized);
    std::map<uint64_t, uint32_t> model;
    std::vector<uint64_t> keys;
    for (int i = 0; i < 40000; i++) keys.push_back(rng() | 1);
    for (int i = 0; i < 200000; i++) {
      const uint64_t key = keys[rng() % keys.size()] + (rng() % 4 == 0 ? 2 : 0);  // some keys never in `keys`
      if (rng() % 3 == 0) {
        counts.add_if_present(key);
        auto it = model.find(key);
        if (it != model.end()) it->second++;
      } else {
        counts.add(key);
        model[key]++;
      }
    }
    EXPECT_EQ(counts.size(), model.size());
    for (const auto& [key, n] : model) ASSERT_EQ(counts.count(key), n) << key;
    for (int i = 0; i < 10000; i++) {
      const uint64_t absent = rng() | 1;
      if (model.count(absent) == 0) {
        ASSERT_EQ(counts.count(absent), 0u);
      }
    }
    EXPECT_LE(counts.bytes(), std::max<size_t>(sized, model.size()) * 8 * 8 / 7 * 2 + 256);
  }
}

// A count saturates instead of wrapping to a small number.
TEST(KeyCounts, ACountSaturates) {
  KeyCounts counts(4);
  for (uint32_t i = 0; i < (1u << 24) + 10; i++) counts.add(42);
  EXPECT_EQ(counts.count(42), (1u << 24) - 1);
  counts.add_if_present(42);
  EXPECT_EQ(counts.count(42), (1u << 24) - 1);
}
