// Unit tests of the mixer (mixer.hpp): the lookup path's inline shortcut gives
// what the mixer itself gives, or build and lookup would disagree.
#include "shape_router/mixer.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>

namespace {

using shape_router::default_mixer;
using shape_router::kGoldenGamma;
using shape_router::mix64;
using shape_router::mix_key;

TEST(Mixer, MixKeyMatchesTheMixer) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; i++) {
    const uint64_t key = rng(), seed = i % 2 ? rng() : static_cast<uint64_t>(i);
    const uint64_t seed_mix = mix64(seed + kGoldenGamma);
    ASSERT_EQ(mix_key(default_mixer, key, seed, seed_mix), default_mixer(key, seed)) << key << " " << seed;
  }
  // Another mixer is called as it is: seed_mix is the default mixer's alone.
  auto xor_mixer = [](uint64_t key, uint64_t seed) { return key ^ seed; };
  EXPECT_EQ(mix_key(xor_mixer, 0x1234, 0xff00, 0), 0x1234u ^ 0xff00u);
  EXPECT_EQ(mix_key(xor_mixer, 0x1234, 0xff00, 777), 0x1234u ^ 0xff00u);
}

// Seeds and keys that differ in one bit give unrelated hashes (each output bit
// flips about half the time).
TEST(Mixer, OneBitChangesHalfTheOutput) {
  std::mt19937_64 rng(2);
  uint64_t flipped = 0, trials = 0;
  for (int i = 0; i < 2000; i++) {
    const uint64_t key = rng(), seed = rng();
    const uint64_t h = default_mixer(key, seed);
    for (int b = 0; b < 64; b++) {
      flipped += __builtin_popcountll(h ^ default_mixer(key ^ (uint64_t{1} << b), seed));
      flipped += __builtin_popcountll(h ^ default_mixer(key, seed ^ (uint64_t{1} << b)));
      trials += 2;
    }
  }
  const double mean = static_cast<double>(flipped) / trials;
  EXPECT_GT(mean, 31.5);
  EXPECT_LT(mean, 32.5);
}

}  // namespace
