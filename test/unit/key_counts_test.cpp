// KeyCounts: the deferred cover choice's counts, against a std::map model.
#include "shape_router/key_counts.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

using shape_router::KeyCounts;

// Counts from add and add_if_present match the model's; a key past the keys
// sized for is refused.
TEST(KeyCounts, CountsAsAModelDoes) {
  for (size_t sized : {size_t{60000}, size_t{200000}}) {
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
    EXPECT_LE(counts.bytes(), sized * 4 * 8 / 7 * 2 + 4096);
  }
  KeyCounts small(10);
  for (uint64_t key = 1; key <= 14; key++) small.add(key);  // 16 slots at <= 7/8
  EXPECT_THROW(small.add(15), std::length_error);
  small.add(3);  // not a new key
  EXPECT_EQ(small.count(3), 2u);
}

// Counts past the slot's own (255) are kept exact beside it, for several keys.
TEST(KeyCounts, LargeCountsStayExact) {
  KeyCounts counts(4);
  for (uint32_t i = 0; i < (1u << 24) + 10; i++) counts.add(42);
  for (uint32_t i = 0; i < 300; i++) counts.add_if_present(7);  // absent: not counted
  for (uint32_t i = 0; i < 1000; i++) {
    counts.add(i % 2 == 0 ? 1000 : 2000);
    counts.add_if_present(3000);
  }
  counts.add(3000);
  for (uint32_t i = 0; i < 254; i++) counts.add_if_present(3000);
  EXPECT_EQ(counts.count(42), (1u << 24) + 10);
  EXPECT_EQ(counts.count(7), 0u);
  EXPECT_EQ(counts.count(1000), 500u);
  EXPECT_EQ(counts.count(2000), 500u);
  EXPECT_EQ(counts.count(3000), 255u);
  counts.add_if_present(3000);
  EXPECT_EQ(counts.count(3000), 256u);
  EXPECT_EQ(counts.size(), 4u);
}

// Two keys with one fingerprint but other slots keep their own large counts;
// two on one probe path share theirs, and neither fails.
TEST(KeyCounts, LargeCountsOfKeysSharingAFingerprint) {
  auto fingerprint = [](uint64_t key) { return (shape_router::mix64(key) >> 40) | 1; };
  std::map<uint64_t, uint64_t> by_fingerprint;
  uint64_t a = 0, b = 0;
  for (uint64_t key = 1; a == 0; key++) {
    auto [it, fresh] = by_fingerprint.emplace(fingerprint(key), key);
    if (!fresh && ((shape_router::mix64(it->second) ^ shape_router::mix64(key)) & 0x7ff) != 0) {  // other homes in 2048 slots
      a = it->second;
      b = key;
    }
  }
  KeyCounts counts(1000);
  for (int i = 0; i < 1000; i++) counts.add(a);
  for (int i = 0; i < 300; i++) counts.add(b);
  EXPECT_EQ(counts.count(a), 1000u);
  EXPECT_EQ(counts.count(b), 300u);
  EXPECT_EQ(counts.size(), 2u);
}
