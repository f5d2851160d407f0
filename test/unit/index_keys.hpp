// Key sets and weak mixers for the unit tests of the index structures.
#pragma once

#include <cstdint>
#include <random>
#include <unordered_set>
#include <vector>

#include "shape_router/mixer.hpp"

namespace {

// n distinct random non-zero keys.
inline std::vector<uint64_t> random_keys(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::unordered_set<uint64_t> seen;
  seen.reserve(n);
  std::vector<uint64_t> keys;
  keys.reserve(n);
  while (keys.size() < n) {
    const uint64_t k = rng();
    if (k != 0 && seen.insert(k).second) keys.push_back(k);
  }
  return keys;
}

// Random keys that are in none of `exclude`.
inline std::vector<uint64_t> non_keys(size_t n, uint64_t seed, const std::vector<uint64_t>& exclude) {
  std::unordered_set<uint64_t> ex(exclude.begin(), exclude.end());
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> out;
  out.reserve(n);
  while (out.size() < n) {
    const uint64_t k = rng();
    if (k != 0 && k != 1 && !ex.count(k)) out.push_back(k);  // 1: ShapeIndex folds key 0 into 1
  }
  return out;
}

// Test-only weak mixers: they make every key collide, so the structures cannot
// tell keys apart by hash and must fall back on exact storage.
inline uint64_t constant_mixer(uint64_t, uint64_t) { return 0x0123456789abcdefULL; }
// Keeps only the low 8 bits of the key, and ignores the seed (so retries with a
// new seed cannot help).
inline uint64_t low8_mixer(uint64_t key, uint64_t) { return key & 0xff; }
// Keeps only the low 8 bits of the key, but mixes them well with the seed.
inline uint64_t low8_mixed_mixer(uint64_t key, uint64_t seed) {
  return shape_router::default_mixer(key & 0xff, seed);
}

}  // namespace
