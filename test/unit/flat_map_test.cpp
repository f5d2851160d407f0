// Unit tests of shape_router::FlatMap (include/shape_router/flat_map.hpp).
#include "shape_router/flat_map.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace {

using shape_router::FlatMap;
using shape_router::mix64;

// Largest size a table of `capacity` slots holds without growing.
constexpr size_t max_size_for(size_t capacity) { return capacity * 7 / 8; }

std::unordered_map<uint64_t, uint32_t> contents(const FlatMap& map) {
  std::unordered_map<uint64_t, uint32_t> out;
  map.for_each([&](uint64_t key, uint32_t value) {
    EXPECT_NE(key, 0u);
    EXPECT_TRUE(out.emplace(key, value).second) << "for_each visited key " << key << " twice";
  });
  return out;
}

// Every key of `model` is found with its value; size agrees; for_each agrees.
void expect_matches(const FlatMap& map, const std::unordered_map<uint64_t, uint32_t>& model) {
  ASSERT_EQ(map.size(), model.size());
  for (const auto& [key, value] : model) {
    const uint32_t* found = map.find(key);
    ASSERT_NE(found, nullptr) << "key " << key << " lost";
    ASSERT_EQ(*found, value) << "key " << key;
  }
  ASSERT_EQ(contents(map), model);
}

TEST(FlatMap, EmptyMap) {
  FlatMap map;
  EXPECT_EQ(map.size(), 0u);
  EXPECT_EQ(map.capacity(), 16u);
  EXPECT_EQ(map.find(1), nullptr);
  EXPECT_EQ(map.find(UINT64_MAX), nullptr);
  size_t visits = 0;
  map.for_each([&](uint64_t, uint32_t) { ++visits; });
  EXPECT_EQ(visits, 0u);
}

TEST(FlatMap, PutFindOverwriteErase) {
  FlatMap map;
  map.put(42, 7);
  ASSERT_NE(map.find(42), nullptr);
  EXPECT_EQ(*map.find(42), 7u);
  EXPECT_EQ(map.size(), 1u);
  EXPECT_EQ(map.find(43), nullptr);

  map.put(42, 9);  // overwrite keeps size
  EXPECT_EQ(*map.find(42), 9u);
  EXPECT_EQ(map.size(), 1u);

  map.put(UINT64_MAX, 0);  // extreme key, zero value
  map.put(1, UINT32_MAX);
  EXPECT_EQ(map.size(), 3u);
  ASSERT_NE(map.find(UINT64_MAX), nullptr);
  EXPECT_EQ(*map.find(UINT64_MAX), 0u);
  EXPECT_EQ(*map.find(1), UINT32_MAX);

  EXPECT_TRUE(map.erase(42));
  EXPECT_EQ(map.find(42), nullptr);
  EXPECT_EQ(map.size(), 2u);
  EXPECT_FALSE(map.erase(42));  // second erase: absent
  EXPECT_EQ(map.size(), 2u);

  map.put(42, 11);  // re-insert after erase
  EXPECT_EQ(*map.find(42), 11u);
  EXPECT_EQ(map.size(), 3u);
  expect_matches(map, {{42, 11}, {UINT64_MAX, 0}, {1, UINT32_MAX}});
}

TEST(FlatMap, EraseAbsentReturnsFalse) {
  FlatMap map;
  EXPECT_FALSE(map.erase(1));
  EXPECT_FALSE(map.erase(UINT64_MAX));
  EXPECT_EQ(map.size(), 0u);

  for (uint64_t k = 1; k <= 10; ++k) map.put(k * 1000, static_cast<uint32_t>(k));
  for (uint64_t k = 1; k <= 10; ++k) {
    EXPECT_FALSE(map.erase(k * 1000 + 1));
    EXPECT_FALSE(map.erase(k));
  }
  EXPECT_EQ(map.size(), 10u);

  // Absent keys that share a home slot with present ones walk the whole run.
  const size_t mask = map.capacity() - 1;
  const size_t home = mix64(1000) & mask;
  int tried = 0;
  for (uint64_t k = 1; tried < 20; ++k) {
    if ((mix64(k) & mask) != home || map.find(k) != nullptr) continue;
    EXPECT_FALSE(map.erase(k)) << k;
    EXPECT_EQ(map.find(k), nullptr) << k;
    ++tried;
  }
  std::unordered_map<uint64_t, uint32_t> model;
  for (uint64_t k = 1; k <= 10; ++k) model[k * 1000] = static_cast<uint32_t>(k);
  expect_matches(map, model);
}

TEST(FlatMap, GrowthThresholdIsSevenEighths) {
  FlatMap map;
  ASSERT_EQ(map.capacity(), 16u);
  for (uint64_t k = 1; k <= 100000; ++k) {
    const size_t before = map.capacity();
    map.put(k, static_cast<uint32_t>(k));
    // Grows exactly when the insert would pass 7/8 of the old table.
    if (k > max_size_for(before)) {
      EXPECT_EQ(map.capacity(), before * 2) << "k=" << k;
    } else {
      EXPECT_EQ(map.capacity(), before) << "k=" << k;
    }
    EXPECT_LE(map.size() * 8, map.capacity() * 7);
  }
  EXPECT_EQ(map.size(), 100000u);
  for (uint64_t k = 1; k <= 100000; ++k) {
    const uint32_t* found = map.find(k);
    ASSERT_NE(found, nullptr) << k;
    ASSERT_EQ(*found, static_cast<uint32_t>(k));
  }
}

TEST(FlatMap, GrowthAcrossManyRehashes) {
  FlatMap map;
  std::unordered_map<uint64_t, uint32_t> model;
  size_t rehashes = 0;
  size_t last_capacity = map.capacity();
  // Spread-out keys (including large ones) plus dense small ones.
  for (uint64_t i = 1; i <= 300000; ++i) {
    const uint64_t key = (i % 3 == 0) ? i * 0x9E3779B97F4A7C15ULL : i;
    if (key == 0) continue;
    map.put(key, static_cast<uint32_t>(i));
    model[key] = static_cast<uint32_t>(i);
    if (map.capacity() != last_capacity) {
      ++rehashes;
      EXPECT_EQ(map.capacity(), last_capacity * 2);
      last_capacity = map.capacity();
      // Right after every growth, everything inserted so far is still there.
      ASSERT_EQ(map.size(), model.size());
      for (const auto& [k, v] : model) {
        const uint32_t* found = map.find(k);
        ASSERT_NE(found, nullptr) << "key " << k << " lost at capacity " << map.capacity();
        ASSERT_EQ(*found, v);
      }
    }
  }
  EXPECT_GE(rehashes, 14u);
  expect_matches(map, model);

  // Overwrite everything: no growth, values replaced.
  const size_t capacity = map.capacity();
  for (auto& [k, v] : model) {
    v ^= 0xA5A5A5A5u;
    map.put(k, v);
  }
  EXPECT_EQ(map.capacity(), capacity);
  expect_matches(map, model);

  // Erase everything: the map ends empty and keys are gone.
  for (const auto& kv : model) ASSERT_TRUE(map.erase(kv.first));
  EXPECT_EQ(map.size(), 0u);
  for (const auto& kv : model) ASSERT_EQ(map.find(kv.first), nullptr);
  expect_matches(map, {});
}

TEST(FlatMap, CopyIsIndependent) {
  FlatMap a;
  for (uint64_t k = 1; k <= 100; ++k) a.put(k, static_cast<uint32_t>(k));
  FlatMap b = a;
  ASSERT_TRUE(b.erase(5));
  b.put(5000, 1);
  EXPECT_NE(a.find(5), nullptr);
  EXPECT_EQ(a.find(5000), nullptr);
  EXPECT_EQ(a.size(), 100u);
  EXPECT_EQ(b.size(), 100u);
}

// Randomized property test against std::unordered_map. The key space is small
// relative to the operation count so tables stay near their load limit, probe
// runs are long and erase's backward shift is exercised constantly.
TEST(FlatMap, RandomizedAgainstUnorderedMap) {
  constexpr uint64_t kKeySpace = 50000;
  constexpr size_t kOps = 2000000;
  std::mt19937_64 rng(0x5EEDF1A7u);
  std::uniform_int_distribution<uint64_t> pick_key(1, kKeySpace);
  std::uniform_int_distribution<int> pick_op(0, 99);

  FlatMap map;
  std::unordered_map<uint64_t, uint32_t> model;
  model.reserve(kKeySpace);
  size_t puts = 0, erases_hit = 0, erases_miss = 0, finds_hit = 0, finds_miss = 0;

  for (size_t op = 0; op < kOps; ++op) {
    // Mostly small keys, some spread over the whole 64-bit range (still drawn
    // from a bounded set so they recur).
    uint64_t key = pick_key(rng);
    if (key % 7 == 0) key = mix64(key) | 1;  // stays non-zero
    // The mix drifts between insert-heavy and erase-heavy phases so the
    // population sweeps from sparse to full and back.
    const int phase = static_cast<int>((op / 100000) % 4);
    const int put_share = phase == 0 ? 60 : phase == 1 ? 40 : phase == 2 ? 25 : 45;
    const int r = pick_op(rng);
    if (r < put_share) {
      const uint32_t value = static_cast<uint32_t>(rng());
      map.put(key, value);
      model[key] = value;
      ++puts;
    } else if (r < put_share + 35) {
      const bool erased = map.erase(key);
      const bool expected = model.erase(key) == 1;
      ASSERT_EQ(erased, expected) << "op " << op << " erase " << key;
      ++(erased ? erases_hit : erases_miss);
    } else {
      const uint32_t* found = map.find(key);
      auto it = model.find(key);
      if (it == model.end()) {
        ASSERT_EQ(found, nullptr) << "op " << op << " find " << key;
        ++finds_miss;
      } else {
        ASSERT_NE(found, nullptr) << "op " << op << " find " << key;
        ASSERT_EQ(*found, it->second) << "op " << op << " find " << key;
        ++finds_hit;
      }
    }
    ASSERT_EQ(map.size(), model.size()) << "op " << op;
    // The key just touched must agree with the model whatever the op was.
    const uint32_t* now = map.find(key);
    auto it = model.find(key);
    if (it == model.end()) {
      ASSERT_EQ(now, nullptr) << "op " << op << " key " << key;
    } else {
      ASSERT_NE(now, nullptr) << "op " << op << " key " << key;
      ASSERT_EQ(*now, it->second) << "op " << op << " key " << key;
    }
    // Periodic full sweeps catch damage to keys other than the touched one.
    if (op % 250000 == 249999) expect_matches(map, model);
    if (HasFatalFailure()) return;
  }
  // Every kind of outcome happened plenty of times.
  EXPECT_GT(puts, 100000u);
  EXPECT_GT(erases_hit, 100000u);
  EXPECT_GT(erases_miss, 100000u);
  EXPECT_GT(finds_hit, 50000u);
  EXPECT_GT(finds_miss, 50000u);
  expect_matches(map, model);
}

// Keys whose home slot (mix64(key) & (capacity - 1)) is `home`, found by search.
std::vector<uint64_t> keys_with_home(size_t capacity, size_t home, size_t n, uint64_t start) {
  std::vector<uint64_t> out;
  for (uint64_t k = start; out.size() < n; ++k)
    if ((mix64(k) & (capacity - 1)) == home) out.push_back(k);
  return out;
}

class FlatMapCollisions : public ::testing::Test {
 protected:
  static constexpr size_t kCapacity = 1024;

  // Builds a map of capacity 1024 holding long clustered probe runs: one that
  // wraps around the end of the table (homes 1020..1023, 0, 1) and one in the
  // middle (homes 500, 501, 503), plus background keys elsewhere. Everything
  // is placed at the final capacity, so `home` below is the real home slot.
  void SetUp() override {
    std::vector<std::pair<size_t, size_t>> clusters = {
        {1020, 30}, {1021, 10}, {1023, 25}, {0, 20}, {1, 10}, {500, 60}, {501, 15}, {503, 20}};
    uint64_t start = 1;
    for (const auto& [home, n] : clusters) {
      for (uint64_t k : keys_with_home(kCapacity, home, n, start)) {
        if (model_.count(k)) continue;
        colliding_.push_back(k);
        model_[k] = static_cast<uint32_t>(k * 2654435761u);
      }
    }
    // Background keys with homes away from the clusters, to push the table
    // to 1024 slots (capacity reaches 1024 once size passes 448).
    for (uint64_t k = 1; model_.size() < 800; ++k) {
      const size_t home = mix64(k) & (kCapacity - 1);
      if (model_.count(k) || (home >= 480 && home <= 620) || home >= 1000 || home <= 120) continue;
      model_[k] = static_cast<uint32_t>(k);
    }
    for (const auto& [k, v] : model_) map_.put(k, v);
    ASSERT_EQ(map_.capacity(), kCapacity);
    ASSERT_LE(model_.size(), max_size_for(kCapacity));
    ASSERT_EQ(map_.size(), model_.size());
    expect_matches(map_, model_);
  }

  // Erases `order` one key at a time; after each erase every remaining key is
  // still found with its value and every erased key is gone.
  void erase_in_order(const std::vector<uint64_t>& order) {
    FlatMap map = map_;
    std::unordered_map<uint64_t, uint32_t> model = model_;
    for (size_t i = 0; i < order.size(); ++i) {
      const uint64_t k = order[i];
      ASSERT_TRUE(map.erase(k)) << "step " << i << " key " << k;
      model.erase(k);
      ASSERT_FALSE(map.erase(k)) << "step " << i << " key " << k;
      ASSERT_EQ(map.size(), model.size());
      for (const auto& [key, value] : model) {
        const uint32_t* found = map.find(key);
        ASSERT_NE(found, nullptr) << "after erasing " << k << " (step " << i << "), key " << key
                                  << " with home " << (mix64(key) & (kCapacity - 1)) << " is lost";
        ASSERT_EQ(*found, value);
      }
      for (size_t j = 0; j <= i; ++j) ASSERT_EQ(map.find(order[j]), nullptr) << order[j];
      ASSERT_EQ(map.capacity(), kCapacity);  // erase never shrinks
    }
    expect_matches(map, model);
    // Re-inserting the erased keys restores the original contents.
    for (uint64_t k : order) map.put(k, model_.at(k));
    expect_matches(map, model_);
  }

  FlatMap map_;
  std::unordered_map<uint64_t, uint32_t> model_;
  std::vector<uint64_t> colliding_;  // insertion order
};

TEST_F(FlatMapCollisions, HomesReallyCollide) {
  size_t at_1020 = 0, at_500 = 0;
  for (uint64_t k : colliding_) {
    const size_t home = mix64(k) & (kCapacity - 1);
    at_1020 += home == 1020;
    at_500 += home == 500;
  }
  EXPECT_EQ(at_1020, 30u);
  EXPECT_EQ(at_500, 60u);
  EXPECT_EQ(colliding_.size(), 190u);
}

TEST_F(FlatMapCollisions, EraseInInsertionOrder) { erase_in_order(colliding_); }

TEST_F(FlatMapCollisions, EraseInReverseOrder) {
  std::vector<uint64_t> order(colliding_.rbegin(), colliding_.rend());
  erase_in_order(order);
}

TEST_F(FlatMapCollisions, EraseInShuffledOrders) {
  for (unsigned seed = 1; seed <= 5; ++seed) {
    std::vector<uint64_t> order = colliding_;
    std::shuffle(order.begin(), order.end(), std::mt19937(seed));
    erase_in_order(order);
    if (HasFatalFailure()) return;
  }
}

TEST_F(FlatMapCollisions, EraseEveryOtherThenAll) {
  std::vector<uint64_t> order;
  for (size_t i = 0; i < colliding_.size(); i += 2) order.push_back(colliding_[i]);
  for (size_t i = 1; i < colliding_.size(); i += 2) order.push_back(colliding_[i]);
  erase_in_order(order);
}

TEST_F(FlatMapCollisions, EraseBackgroundAndClusterKeysMixed) {
  std::vector<uint64_t> order;
  for (const auto& kv : model_) order.push_back(kv.first);
  std::sort(order.begin(), order.end());
  std::shuffle(order.begin(), order.end(), std::mt19937(99));
  order.resize(400);
  erase_in_order(order);
}

TEST_F(FlatMapCollisions, EraseAbsentCollidingKeys) {
  // Keys with the same homes as the clusters but never inserted.
  for (size_t home : {1020u, 0u, 500u}) {
    std::vector<uint64_t> absent;
    for (uint64_t k : keys_with_home(kCapacity, home, 200, 1))
      if (!model_.count(k)) absent.push_back(k);
    ASSERT_FALSE(absent.empty());
    for (uint64_t k : absent) {
      EXPECT_EQ(map_.find(k), nullptr) << k;
      EXPECT_FALSE(map_.erase(k)) << k;
    }
  }
  expect_matches(map_, model_);
}

}  // namespace

// HandleSet: handles found by keys kept outside the set, against a model, under
// ids that come in runs (as sequence-assigned shape ids do) and random ones.
TEST(HandleSet, RandomizedAgainstModel) {
  std::vector<uint64_t> key_of_handle;  // handle -> key (0: free)
  std::vector<uint32_t> free_handles;
  std::unordered_map<uint64_t, uint32_t> model;
  shape_router::HandleSet set;
  auto key_of = [&](uint32_t h) { return key_of_handle[h]; };
  std::mt19937_64 rng(7);
  uint64_t next_run = 1;
  for (int op = 0; op < 400000; ++op) {
    const int what = static_cast<int>(rng() % 100);
    const bool growing = (op / 50000) % 2 == 0;
    if (what < (growing ? 60 : 30)) {
      const uint64_t key = rng() % 4 == 0 ? 1 + rng() % 1000000 : next_run++;
      if (model.count(key) != 0) continue;
      uint32_t h;
      if (!free_handles.empty()) {
        h = free_handles.back();
        free_handles.pop_back();
      } else {
        h = static_cast<uint32_t>(key_of_handle.size());
        key_of_handle.push_back(0);
      }
      key_of_handle[h] = key;
      set.insert(h, key_of);
      model[key] = h;
    } else if (what < 75 && !model.empty()) {
      const uint64_t key = rng() % 2 == 0 ? next_run - 1 - rng() % std::min<uint64_t>(next_run - 1, 5000)
                                          : 1 + rng() % 1000000;
      const auto it = model.find(key);
      ASSERT_EQ(set.erase(key, key_of), it != model.end()) << "op " << op;
      if (it != model.end()) {
        key_of_handle[it->second] = 0;
        free_handles.push_back(it->second);
        model.erase(it);
      }
    } else if (what == 99 && rng() % 64 == 0) {
      // Sizes that are no power of two, from a reservation (bulk loads), then doubled.
      set.reserve(model.size() + rng() % 10000, key_of);
      ASSERT_GE(set.bytes() / sizeof(uint32_t) * 7, set.size() * 8);
    } else {
      const uint64_t key = rng() % 2 == 0 ? next_run - rng() % std::min<uint64_t>(next_run, 5000) : 1 + rng() % 2000000;
      const auto it = model.find(key);
      ASSERT_EQ(set.find(key, key_of), it == model.end() ? shape_router::HandleSet::kNone : it->second)
          << "op " << op << " key " << key;
    }
    ASSERT_EQ(set.size(), model.size());
  }
  for (const auto& [key, h] : model) ASSERT_EQ(set.find(key, key_of), h);
  set.reserve(model.size() * 4, key_of);  // a rehash keeps every handle
  for (const auto& [key, h] : model) ASSERT_EQ(set.find(key, key_of), h);
  EXPECT_GT(model.size(), 1000u);
  // A reservation for a million takes 5.7 bytes a handle (table and tags), not
  // 10 (2^21 entries).
  shape_router::HandleSet big;
  big.reserve(1000000, key_of);
  EXPECT_LE(big.bytes(), 1000000u * 8 / 7 * 5 + 1024);
}

// reserve_one_more before each push_back: a logarithmic number of reallocations
// (reserve(size() + 1) would reallocate, and copy everything, on every call).
TEST(ReserveOneMore, GrowsGeometrically) {
  std::vector<uint64_t> v;
  size_t reallocations = 0;
  const uint64_t* data = nullptr;
  for (uint64_t i = 0; i < 1000000; ++i) {
    shape_router::reserve_one_more(v);
    ASSERT_GT(v.capacity(), v.size());
    if (v.data() != data) {
      reallocations++;
      data = v.data();
    }
    v.push_back(i);
  }
  EXPECT_LE(reallocations, 20u);
  EXPECT_EQ(v[999999], 999999u);
}
