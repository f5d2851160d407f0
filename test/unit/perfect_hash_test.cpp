// Unit tests of the perfect hash (perfect_hash.hpp): distinct slots in range at
// its load factor, structured keys, and keys whose hashes collide.
#include "shape_router/perfect_hash.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <set>
#include <vector>

#include "index_keys.hpp"

namespace {

using shape_router::PerfectHash;

TEST(PerfectHash, SlotsDistinctAndInRange) {
  for (size_t n : {1, 2, 3, 10, 1000, 100000, 1000000}) {
    const std::vector<uint64_t> keys = random_keys(n, 1000 + n);
    PerfectHash hash;
    ASSERT_TRUE(hash.build(keys)) << "n " << n;
    const size_t table = hash.table_size();
    // Near-minimal: the code's load factor is 0.90 (table = ceil(n / 0.90));
    // anything between that and minimal passes.
    EXPECT_GE(table, n) << "n " << n;
    EXPECT_LE(static_cast<double>(table), std::ceil(n / 0.90) + 1) << "n " << n;
    if (n >= 1000) {
      EXPECT_GE(static_cast<double>(n) / table, 0.899) << "n " << n;
    }
    std::vector<uint8_t> used(table, 0);
    for (uint64_t k : keys) {
      const size_t s = hash.slot(k);
      ASSERT_LT(s, table) << "n " << n << " key " << k;
      ASSERT_EQ(used[s], 0) << "n " << n << ": two keys on slot " << s;
      used[s] = 1;
    }
    if (n == 1000000)
      std::printf("[ info     ] PerfectHash 1M keys: table %zu (load %.4f), pilots %zu bytes (%.3f bytes/key)\n", table,
                  static_cast<double>(n) / table, hash.bytes(), static_cast<double>(hash.bytes()) / n);
  }
}

// Structured keys (consecutive integers, one bit set) are no harder.
TEST(PerfectHash, StructuredKeys) {
  std::vector<std::vector<uint64_t>> sets(3);
  for (uint64_t i = 1; i <= 100000; ++i) sets[0].push_back(i);
  for (uint64_t i = 1; i <= 100000; ++i) sets[1].push_back(i << 20);
  for (int b = 0; b < 64; ++b) sets[2].push_back(1ULL << b);
  for (const auto& keys : sets) {
    PerfectHash hash;
    ASSERT_TRUE(hash.build(keys));
    std::vector<uint8_t> used(hash.table_size(), 0);
    for (uint64_t k : keys) {
      const size_t s = hash.slot(k);
      ASSERT_LT(s, hash.table_size());
      ASSERT_EQ(used[s]++, 0) << "slot " << s;
    }
  }
}

// Keys whose hashes coincide cannot get distinct slots: build reports failure
// (ShapeIndex then keeps its keys in the exact overlay).
TEST(PerfectHash, CollidingHashesFail) {
  PerfectHash hash;
  EXPECT_TRUE(hash.build({42}, constant_mixer));  // one key: nothing to collide with
  EXPECT_EQ(hash.slot(42), hash.slot(42));
  EXPECT_FALSE(hash.build({1, 2}, constant_mixer));
  EXPECT_FALSE(hash.build(random_keys(1000, 41), constant_mixer));
  EXPECT_FALSE(hash.build({0x101, 0x201}, low8_mixer));  // same low byte
  // Distinct low bytes are distinct hashes: that works even with the weak mixer.
  std::vector<uint64_t> distinct_low;
  for (uint64_t i = 0; i < 200; ++i) distinct_low.push_back((i << 40) | i);
  ASSERT_TRUE(hash.build(distinct_low, low8_mixer));
  std::set<size_t> slots;
  for (uint64_t k : distinct_low) slots.insert(hash.slot(k));
  EXPECT_EQ(slots.size(), distinct_low.size());
}

}  // namespace
