// Unit tests of the `shard` option's parser and hash (include/shape_router/shard.h).
#include "shape_router/shard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

TEST(Shard, ParsesIndexOverCount) {
  uint32_t i = 99, n = 99;
  ASSERT_EQ(sr_parse_shard("0/1", &i, &n), SR_OK);
  EXPECT_EQ(i, 0u);
  EXPECT_EQ(n, 1u);
  ASSERT_EQ(sr_parse_shard(" 2 / 3 ", &i, &n), SR_OK);
  EXPECT_EQ(i, 2u);
  EXPECT_EQ(n, 3u);
  ASSERT_EQ(sr_parse_shard("65535/65536", &i, &n), SR_OK);
  EXPECT_EQ(i, 65535u);
  EXPECT_EQ(n, 65536u);
}

TEST(Shard, RejectsMalformedAndOutOfRange) {
  uint32_t i = 7, n = 7;
  for (const char* bad : {"", "/", "1", "1/", "/2", "3/3", "4/3", "0/0", "-1/3", "1/-3", "a/3", "1/3x",
                          "1//3", "1/3/4", "0/65537", "99999999999999999999/3", "1.0/3", "0x1/3"}) {
    EXPECT_EQ(sr_parse_shard(bad, &i, &n), SR_INVALID_ARGUMENT) << bad;
  }
  EXPECT_EQ(sr_parse_shard(nullptr, &i, &n), SR_INVALID_ARGUMENT);
  EXPECT_EQ(i, 7u);  // untouched on failure
  EXPECT_EQ(n, 7u);
}

// The hash is part of the contract (README, shape_router.shard_of): pin its values.
TEST(Shard, HashIsTheDocumentedSplitMix64) {
  EXPECT_EQ(sr_shard_of(0, 1), 0u);
  EXPECT_EQ(sr_shard_of(12345, 1), 0u);
  // splitmix64(1) = 0x910a2dec89025cc1 (the reference generator's first output from seed 1)
  EXPECT_EQ(sr_shard_of(1, 65536), 0x5cc1u);
  EXPECT_EQ(sr_shard_of(1, 3), static_cast<uint32_t>(0x910a2dec89025cc1ULL % 3));
}

// Sequential ids, as the shape id sequence hands them out, spread evenly.
TEST(Shard, SequentialIdsSpreadEvenly) {
  for (uint32_t n : {2u, 3u, 7u, 64u}) {
    std::vector<uint32_t> per_shard(n, 0);
    const uint32_t ids = 100000;
    for (uint64_t id = 1; id <= ids; ++id) {
      const uint32_t shard = sr_shard_of(id, n);
      ASSERT_LT(shard, n);
      ++per_shard[shard];
    }
    // within 5 standard deviations of a binomial count
    const double p = 1.0 / n;
    const double sigma = std::sqrt(ids * p * (1 - p));
    for (uint32_t count : per_shard) {
      EXPECT_NEAR(static_cast<double>(count), ids * p, 5 * sigma) << "n=" << n;
    }
  }
}

}  // namespace
