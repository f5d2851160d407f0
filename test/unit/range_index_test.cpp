// Unit tests of range atoms (range_index.hpp): order keys never decrease along
// each tag's order, the static ranges' stabbing answers against a brute-force
// scan, and one column's overlay, tombstones and rebuilds against a model.
#include "shape_router/range_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using shape_router::order_key;
using shape_router::RangeColumn;
using shape_router::StaticRanges;

sr_value int_value(int64_t i) {
  sr_value v{};
  v.v.i = i;
  return v;
}

sr_value float_value(double f) {
  sr_value v{};
  v.v.f = f;
  return v;
}

sr_value bytes_value(const std::string& s) {
  sr_value v{};
  v.v.bytes = reinterpret_cast<const uint8_t*>(s.data());
  v.len = static_cast<uint32_t>(s.size());
  return v;
}

TEST(OrderKey, IntegersAndTimesAreExactAndOrdered) {
  const std::vector<int64_t> values = {std::numeric_limits<int64_t>::min(), -1000000, -1, 0, 1, 42,
                                       std::numeric_limits<int64_t>::max()};
  for (uint8_t tag : {SR_TAG_INT, SR_TAG_DATE, SR_TAG_TIMESTAMP, SR_TAG_TIMESTAMPTZ}) {
    EXPECT_EQ(shape_router::tag_order(tag), SR_ORDER_EXACT);
    for (size_t i = 1; i < values.size(); i++)
      EXPECT_LT(order_key(tag, int_value(values[i - 1])), order_key(tag, int_value(values[i])));
  }
}

TEST(OrderKey, FloatsFollowPostgresOrder) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {-inf, -1e300, -1.5, -std::numeric_limits<double>::denorm_min(), 0.0,
                                      std::numeric_limits<double>::denorm_min(), 1.5, 1e300, inf};
  for (size_t i = 1; i < values.size(); i++)
    EXPECT_LT(order_key(SR_TAG_FLOAT, float_value(values[i - 1])), order_key(SR_TAG_FLOAT, float_value(values[i])));
  EXPECT_EQ(order_key(SR_TAG_FLOAT, float_value(-0.0)), order_key(SR_TAG_FLOAT, float_value(0.0)));
  // NaN: above +Infinity, every NaN alike
  EXPECT_GT(order_key(SR_TAG_FLOAT, float_value(std::nan(""))), order_key(SR_TAG_FLOAT, float_value(inf)));
  EXPECT_EQ(order_key(SR_TAG_FLOAT, float_value(std::nan("1"))), order_key(SR_TAG_FLOAT, float_value(-std::nan(""))));
}

TEST(OrderKey, TextAndNumericKeysNeverDecrease) {
  EXPECT_EQ(shape_router::tag_order(SR_TAG_TEXT), SR_ORDER_PREFIX);
  EXPECT_EQ(shape_router::tag_order(SR_TAG_UUID), SR_ORDER_NONE);
  std::vector<std::string> texts = {"", "a", "ab", "abc", "abcdefgh", "abcdefghi", "abcdefgz", "b", "\xff"};
  std::sort(texts.begin(), texts.end());
  for (size_t i = 1; i < texts.size(); i++)
    EXPECT_LE(order_key(SR_TAG_TEXT, bytes_value(texts[i - 1])), order_key(SR_TAG_TEXT, bytes_value(texts[i])));
  EXPECT_LT(order_key(SR_TAG_TEXT, bytes_value("ab")), order_key(SR_TAG_TEXT, bytes_value("abc")));
  // numeric through its memcmp-ordered encoding
  const std::vector<std::string> numbers = {"-Infinity", "-1000.5", "-1", "-0.001", "0", "0.001", "1",
                                            "1.5", "12345678901234567890", "Infinity", "NaN"};
  std::vector<uint64_t> keys;
  for (const std::string& n : numbers) {
    uint8_t encoded[64];
    size_t len = 0;
    ASSERT_EQ(sr_encode_decimal(n.data(), n.size(), encoded, &len), SR_OK);
    sr_value v{};
    v.v.bytes = encoded;
    v.len = static_cast<uint32_t>(len);
    keys.push_back(order_key(SR_TAG_NUMERIC, v));
  }
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
}

std::vector<uint32_t> brute(const std::vector<StaticRanges::Entry>& entries, uint64_t v) {
  std::vector<uint32_t> out;
  for (const StaticRanges::Entry& e : entries)
    if (e.lo <= v && v <= e.hi) out.push_back(e.slot);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(StaticRanges, StabsExactlyTheRangesHoldingTheValue) {
  std::mt19937_64 rng(7);
  for (size_t n : {0, 1, 2, 3, 10, 100, 5000}) {
    // two-sided, upper-open, lower-open, a mix, and any width up to the whole domain
    for (int shape = 0; shape < 5; shape++) {
      std::vector<StaticRanges::Entry> entries;
      for (size_t i = 0; i < n; i++) {
        uint64_t lo = rng() % 1000, hi = lo + rng() % 100;
        if (shape == 1 || (shape == 3 && i % 3 == 0)) hi = UINT64_MAX;
        if (shape == 2 || (shape == 3 && i % 3 == 1)) lo = 0;
        if (shape == 4) {
          lo = i % 5 == 0 ? 0 : rng() >> (rng() % 64);
          hi = i % 7 == 0 ? UINT64_MAX : lo + (rng() >> (rng() % 64)) / 2;
        }
        entries.push_back(StaticRanges::Entry{lo, hi, static_cast<uint32_t>(i)});
      }
      const std::vector<StaticRanges::Entry> copy = entries;
      StaticRanges tree;
      tree.build(entries);
      ASSERT_EQ(tree.size(), n);
      for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{500}, uint64_t{999}, uint64_t{1100}, UINT64_MAX - 1,
                         UINT64_MAX, uint64_t{1} << 63, rng(), rng() >> 20}) {
        std::vector<uint32_t> got;
        tree.stab(v, [&](uint32_t slot) { got.push_back(slot); });
        std::sort(got.begin(), got.end());
        ASSERT_EQ(got, brute(copy, v)) << "n " << n << " shape " << shape << " v " << v;
        ASSERT_TRUE(got.empty() || tree.may_hit(v)) << "n " << n << " shape " << shape << " v " << v;
      }
      for (int q = 0; q < 200; q++) {
        const uint64_t v = rng() % 1200;
        std::vector<uint32_t> got;
        tree.stab(v, [&](uint32_t slot) { got.push_back(slot); });
        std::sort(got.begin(), got.end());
        ASSERT_EQ(got, brute(copy, v)) << "n " << n << " shape " << shape << " v " << v;
        ASSERT_TRUE(got.empty() || tree.may_hit(v)) << "n " << n << " shape " << shape << " v " << v;
      }
      if (n == 0) {
        EXPECT_FALSE(tree.may_hit(500));
      }
    }
  }
}

// Narrow two-sided ranges get a bucket cover, which answers most values no range
// holds without a search, and never changes an answer; ranges too wide for one
// (more than 4 bits a bucket) get none, with the same answers.
TEST(StaticRanges, BucketCoverOfNarrowRanges) {
  std::mt19937_64 rng(5);
  for (bool wide : {false, true}) {
    std::vector<StaticRanges::Entry> entries;
    for (uint32_t i = 0; i < 2000; i++) {
      const uint64_t lo = (uint64_t{1} << 63) + rng() % 1000000000;
      entries.push_back(StaticRanges::Entry{lo, lo + (wide ? 100000000 : 999), i});
    }
    const std::vector<StaticRanges::Entry> copy = entries;
    uint64_t lowest = UINT64_MAX, highest = 0;  // the span the cover covers
    for (const StaticRanges::Entry& e : copy) {
      lowest = std::min(lowest, e.lo);
      highest = std::max(highest, e.hi);
    }
    StaticRanges ranges;
    ranges.build(entries);
    EXPECT_EQ(ranges.has_cover(), !wide);
    int quiet = 0;  // values may_hit rules out
    for (int q = 0; q < 20000; q++) {
      const uint64_t v = q % 2 == 0 ? (uint64_t{1} << 63) + rng() % 1100000000
                                    : copy[rng() % copy.size()].lo + rng() % 1000;  // often inside one
      // The word a prefetch loads lies in the cover, for any value.
      const size_t word = ranges.cover_word(v);
      if (ranges.has_cover() && v >= lowest && v <= highest) {
        ASSERT_NE(word, StaticRanges::kNoWord) << v;
      }
      if (word != StaticRanges::kNoWord) {
        ASSERT_LT(word, ranges.cover_words()) << v;
      }
      std::vector<uint32_t> got;
      ranges.stab(v, [&](uint32_t slot) { got.push_back(slot); });
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, brute(copy, v)) << "wide " << wide << " v " << v;
      // may_hit answers most values no range holds (those the cover rules out) at once
      ASSERT_TRUE(got.empty() || ranges.may_hit(v)) << "wide " << wide << " v " << v;
      quiet += !ranges.may_hit(v);
    }
    if (!wide) {
      EXPECT_GT(quiet, 5000);
    }
    EXPECT_EQ(ranges.cover_word(0), StaticRanges::kNoWord);
    EXPECT_EQ(ranges.cover_word(UINT64_MAX), StaticRanges::kNoWord);
  }
}

TEST(StaticRanges, ManyIdenticalRanges) {
  std::vector<StaticRanges::Entry> entries;
  for (uint32_t i = 0; i < 100000; i++) entries.push_back(StaticRanges::Entry{10, 20, i});
  StaticRanges tree;
  tree.build(entries);
  size_t hits = 0;
  tree.stab(15, [&](uint32_t) { hits++; });
  EXPECT_EQ(hits, 100000u);
  tree.stab(21, [&](uint32_t) { hits++; });
  EXPECT_EQ(hits, 100000u);
}

// Random adds (several ranges per slot), drops, slot reuse and rebuilds against
// a model of the live entries.
// A column and its model: random adds (one or two ranges a slot) and drops, and
// stabs checked against the model.
struct ColumnModel {
  RangeColumn column;
  std::multimap<uint32_t, std::pair<uint64_t, uint64_t>> model;
  std::set<uint32_t> live;

  void step(std::mt19937_64& rng, uint32_t slots) {
    const uint32_t slot = static_cast<uint32_t>(rng() % slots);
    if (live.count(slot) > 0 && rng() % 2 == 0) {
      column.drop(slot);
      model.erase(slot);
      live.erase(slot);
    } else if (live.count(slot) == 0) {
      const int ranges = 1 + static_cast<int>(rng() % 2);
      for (int i = 0; i < ranges; i++) {
        const uint64_t lo = rng() % 500, hi = rng() % 3 == 0 ? UINT64_MAX : lo + rng() % 50;
        column.add(slot, lo, hi);
        model.emplace(slot, std::make_pair(lo, hi));
      }
      live.insert(slot);
    }
  }
  void check(std::mt19937_64& rng, int op) {
    const uint64_t v = rng() % 600;
    std::vector<uint32_t> got, want;
    column.stab(v, [&](uint32_t s) { got.push_back(s); });
    for (const auto& [s, r] : model)
      if (r.first <= v && v <= r.second) want.push_back(s);
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    ASSERT_EQ(got, want) << "op " << op;
    ASSERT_TRUE(got.empty() || column.may_hit(v)) << "op " << op;
    ASSERT_EQ(column.entries(), model.size()) << "op " << op;
  }
};

TEST(RangeColumn, OverlayTombstonesAndRebuildsAgainstModel) {
  std::mt19937_64 rng(99);
  ColumnModel m;
  for (int op = 0; op < 20000; op++) {
    m.step(rng, 300);
    if (op % 97 == 0) m.column.maintain(op % 3 == 0);
    if (op % 13 == 0) {
      ASSERT_NO_FATAL_FAILURE(m.check(rng, op));
    }
  }
}

// Background builds: every build runs on a thread (threshold 0), while adds and
// drops (of the snapshot's slots, of slots re-added since, of entries added
// since) go on; stabs stay exact before, during and after each install.
TEST(RangeColumn, BackgroundBuildsStayExact) {
  std::mt19937_64 rng(2026);
  ColumnModel m;
  m.column.set_background_min_entries(0);
  size_t installs = 0;
  for (int op = 0; op < 30000; op++) {
    m.step(rng, 400);
    if (op % 37 == 0) {
      if (m.column.building() && rng() % 2 == 0) m.column.wait_for_build();  // done, not yet installed
      installs += m.column.maintain(op % 1000 == 0) ? 1 : 0;
    }
    if (op % 7 == 0) {
      ASSERT_NO_FATAL_FAILURE(m.check(rng, op));
    }
  }
  EXPECT_GT(m.column.background_builds(), 20u);
  EXPECT_GT(installs, 20u);
}

}  // namespace
