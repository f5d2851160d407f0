// Unit tests of the VM (sr_program_eval): focused tests per instruction, and a
// randomized differential test of its results and the exact order of its
// fallback calls against a recursive reference evaluator written from SQL's
// three-valued rules (program_gen.hpp).
#include "shape_router/program.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "program_gen.hpp"
#include "program_helpers.hpp"

namespace {

// "$1 op constant" on one column of tag holding col.
int Compare(sr_compare_op op, sr_type_tag tag, sr_value col, sr_value constant) {
  return RunProgram([&](sr_program_builder* b) { ASSERT_EQ(sr_builder_compare(b, op, tag, 1, &constant), SR_OK); },
             {SR_TAG_NONE, static_cast<uint8_t>(tag)}, {NullV(), col});
}

// "$1 op $2", both columns of tag.
int CompareCols(sr_compare_op op, sr_type_tag tag, sr_value a, sr_value b) {
  return RunProgram([&](sr_program_builder* pb) { ASSERT_EQ(sr_builder_compare_columns(pb, op, tag, 1, 2), SR_OK); },
             {SR_TAG_NONE, static_cast<uint8_t>(tag), static_cast<uint8_t>(tag)}, {NullV(), a, b});
}

// "$1 [NOT] IN (values [, NULL])".
int In(sr_type_tag tag, sr_value col, const std::vector<sr_value>& values, bool has_null, bool negate) {
  return RunProgram(
      [&](sr_program_builder* b) {
        ASSERT_EQ(sr_builder_in(b, tag, 1, values.data(), values.size(), has_null, negate), SR_OK);
      },
      {SR_TAG_NONE, static_cast<uint8_t>(tag)}, {NullV(), col});
}

const sr_compare_op kOps[] = {SR_OP_EQ, SR_OP_NE, SR_OP_LT, SR_OP_LE, SR_OP_GT, SR_OP_GE, SR_OP_DISTINCT};
const sr_type_tag kIntTags[] = {SR_TAG_INT, SR_TAG_BOOL, SR_TAG_DATE, SR_TAG_TIMESTAMP, SR_TAG_TIMESTAMPTZ};
const sr_type_tag kByteTags[] = {SR_TAG_TEXT, SR_TAG_BPCHAR, SR_TAG_UUID};

// Values with their rank in the expected order (equal rank = equal values).
struct RankedFloat {
  double v;
  int rank;
};
std::vector<RankedFloat> RankedFloats() {
  return {{-kInf, 0},   {-DBL_MAX, 1}, {-1.5, 2},    {-kDenorm, 3}, {-0.0, 4}, {0.0, 4},
          {kDenorm, 5}, {1.5, 6},      {DBL_MAX, 7}, {kInf, 8},     {kNaN, 9}, {-kNaN, 9}};
}

struct RankedBytes {
  std::string v;
  int rank;
};
std::vector<RankedBytes> RankedTexts() {
  return {{"", 0},
          {Bytes("\0", 1), 1},
          {Bytes("\0\0", 2), 2},
          {Bytes("\0a", 2), 3},
          {"a", 4},
          {Bytes("a\0", 2), 5},
          {Bytes("a\0b", 3), 6},
          {"ab", 7},
          {"abc", 8},
          {"b", 9},
          {"\x7f", 10},
          {"\x80", 11},
          {"\xff", 12},
          {"\xff\xff", 13}};
}
std::vector<RankedBytes> RankedUuids() {
  std::string zero(16, '\0'), one(16, '\0'), mid(16, '\0'), high(16, '\x80'), max(16, '\xff');
  one[15] = 1;
  mid[0] = 0x12;
  return {{zero, 0}, {one, 1}, {mid, 2}, {high, 3}, {max, 4}};
}

// ---------------------------------------------------------------- comparisons

TEST(ProgramCompare, IntegerTagsAllOpsAgainstConstants) {
  const int64_t ints[] = {INT64_MIN, INT64_MIN + 1, -2, -1, 0, 1, 2, INT64_MAX - 1, INT64_MAX};
  for (sr_type_tag tag : kIntTags) {
    std::vector<int64_t> vals(std::begin(ints), std::end(ints));
    if (tag == SR_TAG_BOOL) vals = {0, 1};
    for (int64_t a : vals)
      for (int64_t c : vals)
        for (sr_compare_op op : kOps)
          EXPECT_EQ(Compare(op, tag, IntV(a), IntV(c)), OpTruth(op, (a > c) - (a < c)))
              << "tag " << tag << " " << a << " op " << op << " " << c;
    for (int64_t c : vals)
      for (sr_compare_op op : kOps)
        EXPECT_EQ(Compare(op, tag, NullV(), IntV(c)), op == SR_OP_DISTINCT ? SR_TRUE : SR_NULL)
            << "tag " << tag << " NULL op " << op << " " << c;
  }
  // Spot checks written out (signedness, extremes).
  EXPECT_EQ(Compare(SR_OP_LT, SR_TAG_INT, IntV(INT64_MIN), IntV(INT64_MAX)), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_GT, SR_TAG_INT, IntV(-1), IntV(0)), SR_FALSE);
  EXPECT_EQ(Compare(SR_OP_LT, SR_TAG_TIMESTAMPTZ, IntV(-1), IntV(1)), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_DISTINCT, SR_TAG_DATE, IntV(7), IntV(7)), SR_FALSE);
  EXPECT_EQ(Compare(SR_OP_DISTINCT, SR_TAG_DATE, IntV(7), IntV(8)), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_NE, SR_TAG_TIMESTAMP, NullV(), IntV(8)), SR_NULL);
  EXPECT_EQ(Compare(SR_OP_EQ, SR_TAG_BOOL, IntV(1), IntV(1)), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_GE, SR_TAG_INT, IntV(INT64_MAX), IntV(INT64_MIN)), SR_TRUE);
}

TEST(ProgramCompare, FloatPostgresOrder) {
  const std::vector<RankedFloat> vals = RankedFloats();
  for (const RankedFloat& a : vals)
    for (const RankedFloat& c : vals)
      for (sr_compare_op op : kOps)
        EXPECT_EQ(Compare(op, SR_TAG_FLOAT, FloatV(a.v), FloatV(c.v)),
                  OpTruth(op, (a.rank > c.rank) - (a.rank < c.rank)))
            << a.v << " op " << op << " " << c.v;
  for (const RankedFloat& c : vals)
    for (sr_compare_op op : kOps)
      EXPECT_EQ(Compare(op, SR_TAG_FLOAT, NullV(), FloatV(c.v)), op == SR_OP_DISTINCT ? SR_TRUE : SR_NULL);
  // Spot checks written out.
  EXPECT_EQ(Compare(SR_OP_EQ, SR_TAG_FLOAT, FloatV(kNaN), FloatV(kNaN)), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_NE, SR_TAG_FLOAT, FloatV(kNaN), FloatV(kNaN)), SR_FALSE);
  EXPECT_EQ(Compare(SR_OP_DISTINCT, SR_TAG_FLOAT, FloatV(kNaN), FloatV(kNaN)), SR_FALSE);
  EXPECT_EQ(Compare(SR_OP_GT, SR_TAG_FLOAT, FloatV(kNaN), FloatV(kInf)), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_LT, SR_TAG_FLOAT, FloatV(kInf), FloatV(kNaN)), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_GE, SR_TAG_FLOAT, FloatV(1.0), FloatV(kNaN)), SR_FALSE);
  EXPECT_EQ(Compare(SR_OP_LE, SR_TAG_FLOAT, FloatV(kNaN), FloatV(kNaN)), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_EQ, SR_TAG_FLOAT, FloatV(-0.0), FloatV(0.0)), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_LT, SR_TAG_FLOAT, FloatV(-0.0), FloatV(0.0)), SR_FALSE);
  EXPECT_EQ(Compare(SR_OP_DISTINCT, SR_TAG_FLOAT, FloatV(0.0), FloatV(-0.0)), SR_FALSE);
  EXPECT_EQ(Compare(SR_OP_LT, SR_TAG_FLOAT, FloatV(-kInf), FloatV(-DBL_MAX)), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_GT, SR_TAG_FLOAT, FloatV(kInf), FloatV(DBL_MAX)), SR_TRUE);
}

TEST(ProgramCompare, BytesOrderMemcmpThenLength) {
  for (sr_type_tag tag : kByteTags) {
    const std::vector<RankedBytes> vals = tag == SR_TAG_UUID ? RankedUuids() : RankedTexts();
    for (const RankedBytes& a : vals)
      for (const RankedBytes& c : vals)
        for (sr_compare_op op : kOps) {
          Store st;
          EXPECT_EQ(Compare(op, tag, st.bytes(a.v), ConstBytes(c.v)),
                    OpTruth(op, (a.rank > c.rank) - (a.rank < c.rank)))
              << "tag " << tag << " ranks " << a.rank << " op " << op << " " << c.rank;
        }
    for (const RankedBytes& c : vals)
      for (sr_compare_op op : kOps)
        EXPECT_EQ(Compare(op, tag, NullV(), ConstBytes(c.v)), op == SR_OP_DISTINCT ? SR_TRUE : SR_NULL);
  }
  Store st;
  EXPECT_EQ(Compare(SR_OP_EQ, SR_TAG_TEXT, st.bytes(""), ConstBytes("")), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_LT, SR_TAG_TEXT, st.bytes(""), ConstBytes(Bytes("\0", 1))), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_EQ, SR_TAG_TEXT, st.bytes(Bytes("a\0b", 3)), ConstBytes(Bytes("a\0c", 3))), SR_FALSE);
  EXPECT_EQ(Compare(SR_OP_LT, SR_TAG_TEXT, st.bytes(Bytes("a\0b", 3)), ConstBytes(Bytes("a\0c", 3))), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_LT, SR_TAG_TEXT, st.bytes("ab"), ConstBytes("abc")), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_GT, SR_TAG_TEXT, st.bytes("\xff"), ConstBytes("a")), SR_TRUE);  // unsigned bytes
  EXPECT_EQ(Compare(SR_OP_EQ, SR_TAG_BPCHAR, st.bytes("x"), ConstBytes("x")), SR_TRUE);
  EXPECT_EQ(Compare(SR_OP_LT, SR_TAG_TEXT, st.bytes("B"), ConstBytes("a")), SR_TRUE);  // C collation
}

TEST(ProgramCompare, ColumnVersusColumn) {
  // Integers (all int tags).
  const int64_t ints[] = {INT64_MIN, -1, 0, 1, INT64_MAX};
  for (sr_type_tag tag : kIntTags)
    for (int64_t a : ints)
      for (int64_t c : ints) {
        if (tag == SR_TAG_BOOL && (a < 0 || a > 1 || c < 0 || c > 1)) continue;
        for (sr_compare_op op : kOps)
          EXPECT_EQ(CompareCols(op, tag, IntV(a), IntV(c)), OpTruth(op, (a > c) - (a < c)));
      }
  // Floats.
  for (const RankedFloat& a : RankedFloats())
    for (const RankedFloat& c : RankedFloats())
      for (sr_compare_op op : kOps)
        EXPECT_EQ(CompareCols(op, SR_TAG_FLOAT, FloatV(a.v), FloatV(c.v)),
                  OpTruth(op, (a.rank > c.rank) - (a.rank < c.rank)))
            << a.v << " op " << op << " " << c.v;
  // Bytes.
  for (sr_type_tag tag : kByteTags) {
    const std::vector<RankedBytes> vals = tag == SR_TAG_UUID ? RankedUuids() : RankedTexts();
    for (const RankedBytes& a : vals)
      for (const RankedBytes& c : vals)
        for (sr_compare_op op : kOps) {
          Store st;
          EXPECT_EQ(CompareCols(op, tag, st.bytes(a.v), st.bytes(c.v)),
                    OpTruth(op, (a.rank > c.rank) - (a.rank < c.rank)));
        }
  }
  // NULL on either side: NULL, except IS DISTINCT FROM.
  Store st;
  const std::pair<sr_type_tag, sr_value> samples[] = {
      {SR_TAG_INT, IntV(3)}, {SR_TAG_FLOAT, FloatV(kNaN)}, {SR_TAG_TEXT, st.bytes("")}, {SR_TAG_UUID, st.bytes(std::string(16, 'u'))}};
  for (const auto& s : samples)
    for (sr_compare_op op : kOps) {
      const int one_null = op == SR_OP_DISTINCT ? SR_TRUE : SR_NULL;
      const int both_null = op == SR_OP_DISTINCT ? SR_FALSE : SR_NULL;
      EXPECT_EQ(CompareCols(op, s.first, NullV(), s.second), one_null);
      EXPECT_EQ(CompareCols(op, s.first, s.second, NullV()), one_null);
      EXPECT_EQ(CompareCols(op, s.first, NullV(), NullV()), both_null);
    }
  // A column against itself.
  EXPECT_EQ(RunProgram([](sr_program_builder* b) { ASSERT_EQ(sr_builder_compare_columns(b, SR_OP_EQ, SR_TAG_FLOAT, 1, 1), SR_OK); },
                {SR_TAG_NONE, SR_TAG_FLOAT}, {NullV(), FloatV(kNaN)}),
            SR_TRUE);
  EXPECT_EQ(RunProgram([](sr_program_builder* b) { ASSERT_EQ(sr_builder_compare_columns(b, SR_OP_DISTINCT, SR_TAG_INT, 1, 1), SR_OK); },
                {SR_TAG_NONE, SR_TAG_INT}, {NullV(), NullV()}),
            SR_FALSE);
}

// ---------------------------------------------------------------- IN

TEST(ProgramIn, ThreeValuedTruthTable) {
  const std::vector<sr_value> one_two = {IntV(2), IntV(1)};
  // x IN (1, 2)
  EXPECT_EQ(In(SR_TAG_INT, IntV(1), one_two, false, false), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_INT, IntV(2), one_two, false, false), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_INT, IntV(3), one_two, false, false), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_INT, NullV(), one_two, false, false), SR_NULL);
  // x IN (1, 2, NULL)
  EXPECT_EQ(In(SR_TAG_INT, IntV(1), one_two, true, false), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_INT, IntV(3), one_two, true, false), SR_NULL);
  EXPECT_EQ(In(SR_TAG_INT, NullV(), one_two, true, false), SR_NULL);
  // x NOT IN (1, 2)
  EXPECT_EQ(In(SR_TAG_INT, IntV(1), one_two, false, true), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_INT, IntV(3), one_two, false, true), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_INT, NullV(), one_two, false, true), SR_NULL);
  // x NOT IN (1, 2, NULL)
  EXPECT_EQ(In(SR_TAG_INT, IntV(1), one_two, true, true), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_INT, IntV(3), one_two, true, true), SR_NULL);
  EXPECT_EQ(In(SR_TAG_INT, NullV(), one_two, true, true), SR_NULL);
  // Empty list: FALSE (NOT IN: TRUE) even for NULL x.
  for (sr_value x : {IntV(0), NullV()}) {
    EXPECT_EQ(In(SR_TAG_INT, x, {}, false, false), SR_FALSE);
    EXPECT_EQ(In(SR_TAG_INT, x, {}, false, true), SR_TRUE);
    // (NULL) alone: NULL either way.
    EXPECT_EQ(In(SR_TAG_INT, x, {}, true, false), SR_NULL);
    EXPECT_EQ(In(SR_TAG_INT, x, {}, true, true), SR_NULL);
  }
  // Empty lists for the other categories too.
  EXPECT_EQ(In(SR_TAG_TEXT, NullV(), {}, false, false), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_FLOAT, NullV(), {}, false, true), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_UUID, NullV(), {}, true, true), SR_NULL);
}

TEST(ProgramIn, IntegerTagsDuplicatesAndExtremes) {
  const std::vector<sr_value> list = {IntV(5), IntV(INT64_MIN), IntV(5), IntV(-1), IntV(INT64_MAX),
                                      IntV(0), IntV(-1), IntV(5)};
  const std::set<int64_t> members = {5, INT64_MIN, -1, INT64_MAX, 0};
  for (sr_type_tag tag : {SR_TAG_INT, SR_TAG_DATE, SR_TAG_TIMESTAMP, SR_TAG_TIMESTAMPTZ})
    for (int64_t x : {INT64_MIN, INT64_MIN + 1, int64_t{-2}, int64_t{-1}, int64_t{0}, int64_t{1}, int64_t{4},
                      int64_t{5}, int64_t{6}, INT64_MAX - 1, INT64_MAX}) {
      const bool in = members.count(x) > 0;
      EXPECT_EQ(In(tag, IntV(x), list, false, false), in ? SR_TRUE : SR_FALSE) << x;
      EXPECT_EQ(In(tag, IntV(x), list, false, true), in ? SR_FALSE : SR_TRUE) << x;
      EXPECT_EQ(In(tag, IntV(x), list, true, false), in ? SR_TRUE : SR_NULL) << x;
      EXPECT_EQ(In(tag, IntV(x), list, true, true), in ? SR_FALSE : SR_NULL) << x;
    }
  EXPECT_EQ(In(SR_TAG_BOOL, IntV(1), {IntV(1), IntV(1)}, false, false), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_BOOL, IntV(0), {IntV(1)}, false, false), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_BOOL, IntV(0), {IntV(1)}, true, true), SR_NULL);
}

TEST(ProgramIn, LargeListBinarySearch) {
  // 1000 shuffled multiples of 3 with duplicates: every member and the gaps.
  std::vector<sr_value> list;
  for (int64_t i = 0; i < 1000; i++) list.push_back(IntV(3 * i));
  for (int64_t i = 0; i < 1000; i += 7) list.push_back(IntV(3 * i));
  std::shuffle(list.begin(), list.end(), std::mt19937_64(11));
  Builder b;
  ASSERT_EQ(sr_builder_in(b, SR_TAG_INT, 1, list.data(), list.size(), 0, 0), SR_OK);
  Program p = b.finish();
  ASSERT_TRUE(p);
  const Tags tags = {SR_TAG_NONE, SR_TAG_INT};
  ASSERT_EQ(sr_program_validate(p.data(), p.size(), tags.data(), 1, 0, nullptr, 0), SR_OK);
  for (int64_t x = -5; x < 3005; x++) {
    sr_value row[2] = {NullV(), IntV(x)};
    EXPECT_EQ(sr_program_eval(p.data(), row, nullptr, nullptr), (x >= 0 && x < 3000 && x % 3 == 0) ? SR_TRUE : SR_FALSE)
        << x;
  }
  // And strings.
  std::vector<std::string> strs;
  for (int i = 0; i < 300; i++) strs.push_back(std::to_string(i * 7));
  std::vector<sr_value> svals;
  for (const std::string& s : strs) svals.push_back(ConstBytes(s));
  Builder b2;
  ASSERT_EQ(sr_builder_in(b2, SR_TAG_TEXT, 1, svals.data(), svals.size(), 0, 0), SR_OK);
  Program p2 = b2.finish();
  ASSERT_TRUE(p2);
  const Tags ttags = {SR_TAG_NONE, SR_TAG_TEXT};
  ASSERT_EQ(sr_program_validate(p2.data(), p2.size(), ttags.data(), 1, 0, nullptr, 0), SR_OK);
  for (int i = 0; i < 2200; i++) {
    Store st;
    sr_value row[2] = {NullV(), st.bytes(std::to_string(i))};
    EXPECT_EQ(sr_program_eval(p2.data(), row, nullptr, nullptr), (i % 7 == 0 && i < 2100) ? SR_TRUE : SR_FALSE) << i;
  }
}

TEST(ProgramIn, FloatsWithNaNInfAndSignedZero) {
  const std::vector<sr_value> list = {FloatV(kNaN), FloatV(1.5), FloatV(-0.0), FloatV(kInf), FloatV(-kNaN),
                                      FloatV(0.0), FloatV(1.5)};
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(kNaN), list, false, false), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(-kNaN), list, false, false), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(0.0), list, false, false), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(-0.0), list, false, false), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(kInf), list, false, false), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(-kInf), list, false, false), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(DBL_MAX), list, false, false), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(1.5), list, false, true), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(2.5), list, false, true), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(2.5), list, true, false), SR_NULL);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(kNaN), list, true, true), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_FLOAT, NullV(), list, false, false), SR_NULL);
  // Only NaN in the list; values around it.
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(kNaN), {FloatV(kNaN)}, false, false), SR_TRUE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(kInf), {FloatV(kNaN)}, false, false), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(kNaN), {FloatV(kInf), FloatV(-kInf)}, false, false), SR_FALSE);
  EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(-kInf), {FloatV(kInf), FloatV(-kInf)}, false, false), SR_TRUE);
  // Every ranked value against a list of all of them but one rank.
  const std::vector<RankedFloat> ranked = RankedFloats();
  for (int skip = 0; skip <= 9; skip++) {
    std::vector<sr_value> l;
    for (const RankedFloat& r : ranked)
      if (r.rank != skip) l.push_back(FloatV(r.v));
    for (const RankedFloat& r : ranked)
      EXPECT_EQ(In(SR_TAG_FLOAT, FloatV(r.v), l, false, false), r.rank != skip ? SR_TRUE : SR_FALSE)
          << r.v << " skip " << skip;
  }
}

TEST(ProgramIn, StringsWithEmptyAndEmbeddedNul) {
  const std::vector<std::string> raw = {"b", "", Bytes("a\0", 2), "a", Bytes("\0", 1), "b", "ab", ""};
  std::vector<sr_value> list;
  for (const std::string& s : raw) list.push_back(ConstBytes(s));
  for (sr_type_tag tag : {SR_TAG_TEXT, SR_TAG_BPCHAR}) {
    for (const RankedBytes& r : RankedTexts()) {
      const bool in = std::find(raw.begin(), raw.end(), r.v) != raw.end();
      Store st;
      EXPECT_EQ(In(tag, st.bytes(r.v), list, false, false), in ? SR_TRUE : SR_FALSE) << r.rank;
      EXPECT_EQ(In(tag, st.bytes(r.v), list, false, true), in ? SR_FALSE : SR_TRUE) << r.rank;
      EXPECT_EQ(In(tag, st.bytes(r.v), list, true, false), in ? SR_TRUE : SR_NULL) << r.rank;
      EXPECT_EQ(In(tag, st.bytes(r.v), list, true, true), in ? SR_FALSE : SR_NULL) << r.rank;
    }
    EXPECT_EQ(In(tag, NullV(), list, false, false), SR_NULL);
    Store st;
    EXPECT_EQ(In(tag, st.bytes(Bytes("\0\0", 2)), list, false, false), SR_FALSE);
    EXPECT_EQ(In(tag, st.bytes("A"), list, false, false), SR_FALSE);
  }
  // UUIDs.
  const std::vector<RankedBytes> uuids = RankedUuids();
  std::vector<sr_value> ulist = {ConstBytes(uuids[3].v), ConstBytes(uuids[0].v), ConstBytes(uuids[3].v)};
  for (const RankedBytes& r : uuids) {
    Store st;
    const bool in = r.rank == 0 || r.rank == 3;
    EXPECT_EQ(In(SR_TAG_UUID, st.bytes(r.v), ulist, false, false), in ? SR_TRUE : SR_FALSE);
    EXPECT_EQ(In(SR_TAG_UUID, st.bytes(r.v), ulist, true, true), in ? SR_FALSE : SR_NULL);
  }
}

// ---------------------------------------------------------------- other leaves

// "$1 <kind> constants" on an int[] or text[] column: the array's non-NULL
// elements and whether it had a NULL one (null_array: the array is NULL).
int ArrayOp(sr_array_op kind, sr_type_tag tag, const std::vector<sr_value>& elements, bool null_element,
            const std::vector<sr_value>& constants, bool constant_null, bool null_array = false) {
  sr_value array{};
  array.v.bytes = reinterpret_cast<const uint8_t*>(elements.data());
  array.len = static_cast<uint32_t>(elements.size());
  array.has_null_element = null_element ? 1 : 0;
  array.is_null = null_array ? 1 : 0;
  return RunProgram(
      [&](sr_program_builder* b) {
        ASSERT_EQ(sr_builder_array(b, kind, tag, 1, constants.data(), constants.size(), constant_null), SR_OK);
      },
      {SR_TAG_NONE, static_cast<uint8_t>(tag | SR_TAG_ELEMENT_FLAG)}, {NullV(), array});
}

// PostgreSQL's array operators: NULL elements never match; a NULL array is NULL.
TEST(ProgramArray, OperatorsAsPostgresDecidesThem) {
  const std::vector<sr_value> a = {IntV(1), IntV(2), IntV(3)};
  const std::vector<sr_value> none;
  // c = ANY(arr): NULL when absent and the array holds a NULL
  EXPECT_EQ(ArrayOp(SR_ARRAY_ANY_EQ, SR_TAG_INT, a, false, {IntV(2)}, false), SR_TRUE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_ANY_EQ, SR_TAG_INT, a, false, {IntV(4)}, false), SR_FALSE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_ANY_EQ, SR_TAG_INT, a, true, {IntV(4)}, false), SR_NULL);
  EXPECT_EQ(ArrayOp(SR_ARRAY_ANY_EQ, SR_TAG_INT, a, true, {IntV(3)}, false), SR_TRUE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_ANY_EQ, SR_TAG_INT, none, false, {IntV(3)}, false), SR_FALSE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_ANY_EQ, SR_TAG_INT, a, false, {IntV(3)}, false, true), SR_NULL);
  // arr @> c: every constant present; a NULL constant never is; '{}' always
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINS, SR_TAG_INT, a, false, {IntV(3), IntV(1)}, false), SR_TRUE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINS, SR_TAG_INT, a, true, {IntV(3), IntV(4)}, false), SR_FALSE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINS, SR_TAG_INT, a, false, {IntV(3)}, true), SR_FALSE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINS, SR_TAG_INT, none, false, {}, false), SR_TRUE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINS, SR_TAG_INT, a, false, {IntV(1)}, false, true), SR_NULL);
  // arr <@ c: every element present; a NULL element never is
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINED_BY, SR_TAG_INT, a, false, {IntV(1), IntV(2), IntV(3), IntV(9)}, true),
            SR_TRUE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINED_BY, SR_TAG_INT, a, true, {IntV(1), IntV(2), IntV(3)}, false), SR_FALSE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINED_BY, SR_TAG_INT, a, false, {IntV(1), IntV(2)}, false), SR_FALSE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINED_BY, SR_TAG_INT, none, false, {}, false), SR_TRUE);
  // arr && c: some non-NULL element in common, NULLs ignored on both sides
  EXPECT_EQ(ArrayOp(SR_ARRAY_OVERLAPS, SR_TAG_INT, a, true, {IntV(9), IntV(2)}, true), SR_TRUE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_OVERLAPS, SR_TAG_INT, a, true, {IntV(9)}, true), SR_FALSE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_OVERLAPS, SR_TAG_INT, none, false, {IntV(9)}, false), SR_FALSE);
  // text elements compare as bytes
  Store store;
  const std::vector<sr_value> t = {store.bytes("b"), store.bytes(""), store.bytes("ab")};
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINS, SR_TAG_TEXT, t, false, {ConstBytes("ab"), ConstBytes("")}, false), SR_TRUE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINS, SR_TAG_TEXT, t, false, {ConstBytes("a")}, false), SR_FALSE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_ANY_EQ, SR_TAG_TEXT, t, false, {ConstBytes("b")}, false), SR_TRUE);
  EXPECT_EQ(ArrayOp(SR_ARRAY_CONTAINED_BY, SR_TAG_TEXT, t, false, {ConstBytes("ab"), ConstBytes("b")}, false),
            SR_FALSE);
}

TEST(ProgramLeaves, NullTests) {
  Store st;
  const Tags tags = {SR_TAG_NONE, SR_TAG_INT, SR_TAG_FLOAT, SR_TAG_TEXT, SR_TAG_UUID, SR_TAG_NONE};
  const std::vector<sr_value> row = {NullV(), IntV(0), NullV(), st.bytes(""), NullV(), IntV(0)};
  for (uint16_t att = 1; att <= 5; att++)
    for (int is_null = 0; is_null <= 1; is_null++) {
      const bool null = row[att].is_null != 0;
      EXPECT_EQ(RunProgram([&](sr_program_builder* b) { ASSERT_EQ(sr_builder_null_test(b, att, is_null), SR_OK); }, tags, row),
                (null == (is_null != 0)) ? SR_TRUE : SR_FALSE)
          << "att " << att << " is_null " << is_null;
    }
}

TEST(ProgramLeaves, BoolColumn) {
  const Tags tags = {SR_TAG_NONE, SR_TAG_BOOL};
  auto bool_col = [](sr_program_builder* b) { ASSERT_EQ(sr_builder_bool_column(b, 1), SR_OK); };
  EXPECT_EQ(RunProgram(bool_col, tags, {NullV(), IntV(1)}), SR_TRUE);
  EXPECT_EQ(RunProgram(bool_col, tags, {NullV(), IntV(0)}), SR_FALSE);
  EXPECT_EQ(RunProgram(bool_col, tags, {NullV(), NullV()}), SR_NULL);
  auto not_bool = [](sr_program_builder* b) {
    ASSERT_EQ(sr_builder_bool_column(b, 1), SR_OK);
    ASSERT_EQ(sr_builder_not(b), SR_OK);
  };
  EXPECT_EQ(RunProgram(not_bool, tags, {NullV(), IntV(1)}), SR_FALSE);
  EXPECT_EQ(RunProgram(not_bool, tags, {NullV(), NullV()}), SR_NULL);
  // Only a bool column may be read as one.
  Builder b;
  ASSERT_EQ(sr_builder_bool_column(b, 1), SR_OK);
  Program p = b.finish();
  ASSERT_TRUE(p);
  const Tags wrong = {SR_TAG_NONE, SR_TAG_INT};
  char err[128] = "";
  EXPECT_EQ(sr_program_validate(p.data(), p.size(), wrong.data(), 1, 0, err, sizeof err), SR_INVALID_ARGUMENT);
  EXPECT_GT(std::strlen(err), 0u);
}

TEST(ProgramLeaves, Constants) {
  for (int t : {SR_FALSE, SR_TRUE, SR_NULL}) {
    EXPECT_EQ(RunProgram([&](sr_program_builder* b) { ASSERT_EQ(sr_builder_constant(b, t), SR_OK); }, {SR_TAG_NONE}, {NullV()}),
              t);
  }
  Builder b;
  EXPECT_EQ(sr_builder_constant(b, 3), SR_INVALID_ARGUMENT);
  EXPECT_EQ(sr_builder_constant(b, -1), SR_INVALID_ARGUMENT);
}

TEST(ProgramLeaves, LikePrefix) {
  struct Case {
    std::string value, prefix;
    bool match;
  };
  const Case cases[] = {
      {"abc", "ab", true},
      {"ab", "ab", true},
      {"a", "ab", false},
      {"", "", true},
      {"anything", "", true},
      {"", "a", false},
      {"Abc", "ab", false},
      {"xab", "ab", false},
      {Bytes("a\0b", 3), Bytes("a\0", 2), true},
      {"a", Bytes("a\0", 2), false},
      {Bytes("a\0", 2), "a", true},
      {"\xff\x80z", "\xff\x80", true},
      {"\xff", "\xfe", false},
      {"50%", "50%", true},  // no wildcards in a prefix
      {"500", "50%", false},
  };
  const Tags tags = {SR_TAG_NONE, SR_TAG_TEXT};
  for (const Case& c : cases)
    for (int negate = 0; negate <= 1; negate++) {
      Store st;
      EXPECT_EQ(RunProgram(
                    [&](sr_program_builder* b) {
                      ASSERT_EQ(sr_builder_like_prefix(b, 1, reinterpret_cast<const uint8_t*>(c.prefix.data()),
                                                       c.prefix.size(), negate),
                                SR_OK);
                    },
                    tags, {NullV(), st.bytes(c.value)}),
                (c.match != (negate != 0)) ? SR_TRUE : SR_FALSE)
          << "'" << c.value << "' prefix '" << c.prefix << "' negate " << negate;
      EXPECT_EQ(RunProgram(
                    [&](sr_program_builder* b) {
                      ASSERT_EQ(sr_builder_like_prefix(b, 1, reinterpret_cast<const uint8_t*>(c.prefix.data()),
                                                       c.prefix.size(), negate),
                                SR_OK);
                    },
                    tags, {NullV(), NullV()}),
                SR_NULL);
    }
  // LIKE needs a text column.
  Builder b;
  ASSERT_EQ(sr_builder_like_prefix(b, 1, reinterpret_cast<const uint8_t*>("a"), 1, 0), SR_OK);
  Program p = b.finish();
  ASSERT_TRUE(p);
  const Tags wrong = {SR_TAG_NONE, SR_TAG_INT};
  EXPECT_EQ(sr_program_validate(p.data(), p.size(), wrong.data(), 1, 0, nullptr, 0), SR_INVALID_ARGUMENT);
}

TEST(ProgramLeaves, TruthTestsNeverNull) {
  // expected[test][input]
  const int expected[SR_TEST_COUNT][3] = {
      /* IS TRUE        */ {SR_FALSE, SR_TRUE, SR_FALSE},
      /* IS NOT TRUE    */ {SR_TRUE, SR_FALSE, SR_TRUE},
      /* IS FALSE       */ {SR_TRUE, SR_FALSE, SR_FALSE},
      /* IS NOT FALSE   */ {SR_FALSE, SR_TRUE, SR_TRUE},
      /* IS UNKNOWN     */ {SR_FALSE, SR_FALSE, SR_TRUE},
      /* IS NOT UNKNOWN */ {SR_TRUE, SR_TRUE, SR_FALSE},
  };
  for (int test = 0; test < SR_TEST_COUNT; test++)
    for (int in = SR_FALSE; in <= SR_NULL; in++) {
      EXPECT_EQ(RunProgram(
                    [&](sr_program_builder* b) {
                      ASSERT_EQ(sr_builder_constant(b, in), SR_OK);
                      ASSERT_EQ(sr_builder_test(b, static_cast<sr_truth_test>(test)), SR_OK);
                    },
                    {SR_TAG_NONE}, {NullV()}),
                expected[test][in])
          << "test " << test << " input " << in;
      // Also on a fallback's answer.
      Fallbacks fb;
      fb.results = {in};
      EXPECT_EQ(RunProgram(
                    [&](sr_program_builder* b) {
                      ASSERT_EQ(sr_builder_fallback(b, 0), SR_OK);
                      ASSERT_EQ(sr_builder_test(b, static_cast<sr_truth_test>(test)), SR_OK);
                    },
                    {SR_TAG_NONE}, {NullV()}, &fb, 1),
                expected[test][in]);
      EXPECT_EQ(fb.calls, Calls({0}));
    }
}

TEST(ProgramLeaves, Not) {
  const int expected[3] = {SR_TRUE, SR_FALSE, SR_NULL};
  for (int in = SR_FALSE; in <= SR_NULL; in++) {
    EXPECT_EQ(RunProgram(
                  [&](sr_program_builder* b) {
                    ASSERT_EQ(sr_builder_constant(b, in), SR_OK);
                    ASSERT_EQ(sr_builder_not(b), SR_OK);
                  },
                  {SR_TAG_NONE}, {NullV()}),
              expected[in]);
    EXPECT_EQ(RunProgram(
                  [&](sr_program_builder* b) {
                    ASSERT_EQ(sr_builder_constant(b, in), SR_OK);
                    ASSERT_EQ(sr_builder_not(b), SR_OK);
                    ASSERT_EQ(sr_builder_not(b), SR_OK);
                  },
                  {SR_TAG_NONE}, {NullV()}),
              in);
  }
}

// ---------------------------------------------------------------- AND / OR

int And3(int a, int b) {
  if (a == SR_FALSE || b == SR_FALSE) return SR_FALSE;
  if (a == SR_NULL || b == SR_NULL) return SR_NULL;
  return SR_TRUE;
}
int Or3(int a, int b) {
  if (a == SR_TRUE || b == SR_TRUE) return SR_TRUE;
  if (a == SR_NULL || b == SR_NULL) return SR_NULL;
  return SR_FALSE;
}

// A group of fallbacks 0..n-1 answering results; returns the result and the calls made.
std::pair<int, Calls> FallbackGroup(bool is_and, const std::vector<int>& results) {
  Fallbacks fb;
  fb.results = results;
  int r = RunProgram(
      [&](sr_program_builder* b) {
        ASSERT_EQ(sr_builder_group_begin(b, is_and), SR_OK);
        for (size_t i = 0; i < results.size(); i++) {
          ASSERT_EQ(sr_builder_fallback(b, static_cast<uint16_t>(i)), SR_OK);
          ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
        }
        ASSERT_EQ(sr_builder_group_end(b), SR_OK);
      },
      {SR_TAG_NONE}, {NullV()}, &fb, static_cast<uint8_t>(results.size()));
  return {r, fb.calls};
}

TEST(ProgramGroups, TruthTablesWithConstants) {
  for (int n = 1; n <= 3; n++) {
    int combos = 1;
    for (int i = 0; i < n; i++) combos *= 3;
    for (int c = 0; c < combos; c++) {
      std::vector<int> v;
      for (int i = 0, x = c; i < n; i++, x /= 3) v.push_back(x % 3);
      for (int is_and = 0; is_and <= 1; is_and++) {
        int expected = v[0];
        for (int i = 1; i < n; i++) expected = is_and ? And3(expected, v[i]) : Or3(expected, v[i]);
        EXPECT_EQ(RunProgram(
                      [&](sr_program_builder* b) {
                        ASSERT_EQ(sr_builder_group_begin(b, is_and), SR_OK);
                        for (int t : v) {
                          ASSERT_EQ(sr_builder_constant(b, t), SR_OK);
                          ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
                        }
                        ASSERT_EQ(sr_builder_group_end(b), SR_OK);
                      },
                      {SR_TAG_NONE}, {NullV()}),
                  expected)
            << (is_and ? "AND" : "OR") << " combo " << c << " n " << n;
      }
    }
  }
}

TEST(ProgramGroups, ShortCircuitSkipsLaterFallbacks) {
  const int F = SR_FALSE, T = SR_TRUE, N = SR_NULL, S = SR_STOP;
  using R = std::pair<int, Calls>;
  // AND: stops at the first FALSE; NULL does not stop it.
  EXPECT_EQ(FallbackGroup(true, {F, T, T}), R(F, {0}));
  EXPECT_EQ(FallbackGroup(true, {T, F, S}), R(F, {0, 1}));
  EXPECT_EQ(FallbackGroup(true, {N, F, S}), R(F, {0, 1}));
  EXPECT_EQ(FallbackGroup(true, {N, T, N}), R(N, {0, 1, 2}));
  EXPECT_EQ(FallbackGroup(true, {T, T, T}), R(T, {0, 1, 2}));
  EXPECT_EQ(FallbackGroup(true, {N, N, F}), R(F, {0, 1, 2}));
  EXPECT_EQ(FallbackGroup(true, {T, S, F}), R(S, {0, 1}));
  EXPECT_EQ(FallbackGroup(true, {S, F, F}), R(S, {0}));
  EXPECT_EQ(FallbackGroup(true, {F}), R(F, {0}));
  // OR: stops at the first TRUE.
  EXPECT_EQ(FallbackGroup(false, {T, F, S}), R(T, {0}));
  EXPECT_EQ(FallbackGroup(false, {F, T, S}), R(T, {0, 1}));
  EXPECT_EQ(FallbackGroup(false, {N, T, S}), R(T, {0, 1}));
  EXPECT_EQ(FallbackGroup(false, {N, F, N}), R(N, {0, 1, 2}));
  EXPECT_EQ(FallbackGroup(false, {F, F, F}), R(F, {0, 1, 2}));
  EXPECT_EQ(FallbackGroup(false, {F, S, T}), R(S, {0, 1}));
  EXPECT_EQ(FallbackGroup(false, {N}), R(N, {0}));
  // A fallback answering something that is not a truth value stops the program.
  EXPECT_EQ(FallbackGroup(false, {F, 7, T}), R(S, {0, 1}));
  EXPECT_EQ(FallbackGroup(true, {T, -1, T}), R(S, {0, 1}));
}

TEST(ProgramGroups, ShortCircuitAcrossNesting) {
  const Tags tags = {SR_TAG_NONE, SR_TAG_INT};
  // (fb0 AND (fb1 OR fb2)) OR NOT (fb3 AND FALSE) OR fb4
  auto build = [](sr_program_builder* b) {
    ASSERT_EQ(sr_builder_group_begin(b, 0), SR_OK);
    {
      ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
      ASSERT_EQ(sr_builder_fallback(b, 0), SR_OK);
      ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
      ASSERT_EQ(sr_builder_group_begin(b, 0), SR_OK);
      ASSERT_EQ(sr_builder_fallback(b, 1), SR_OK);
      ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
      ASSERT_EQ(sr_builder_fallback(b, 2), SR_OK);
      ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
      ASSERT_EQ(sr_builder_group_end(b), SR_OK);
      ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
      ASSERT_EQ(sr_builder_group_end(b), SR_OK);
    }
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    {
      ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
      ASSERT_EQ(sr_builder_fallback(b, 3), SR_OK);
      ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
      ASSERT_EQ(sr_builder_constant(b, SR_FALSE), SR_OK);
      ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
      ASSERT_EQ(sr_builder_group_end(b), SR_OK);
      ASSERT_EQ(sr_builder_not(b), SR_OK);
    }
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_fallback(b, 4), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_end(b), SR_OK);
  };
  const int F = SR_FALSE, T = SR_TRUE, N = SR_NULL, S = SR_STOP;
  struct Case {
    std::vector<int> fb;
    int result;
    Calls calls;
  };
  const Case cases[] = {
      {{T, T, S, S, S}, T, {0, 1}},        // fb0 AND fb1 is TRUE: done
      {{F, S, S, T, S}, T, {0, 3}},        // fb0 FALSE skips fb1/fb2; NOT(.. AND FALSE) TRUE
      {{T, F, N, N, S}, T, {0, 1, 2, 3}},  // inner OR NULL -> AND NULL; then NOT(FALSE)
      {{N, F, F, F, S}, T, {0, 1, 2, 3}},  // NOT(FALSE AND ..) = TRUE; fb4 skipped
      {{T, F, S, S, S}, S, {0, 1, 2}},     // stop inside the nested OR
      {{F, S, S, S, S}, S, {0, 3}},
  };
  for (const Case& c : cases) {
    Fallbacks fb;
    fb.results = c.fb;
    EXPECT_EQ(RunProgram(build, tags, {NullV(), IntV(0)}, &fb, 5), c.result);
    EXPECT_EQ(fb.calls, c.calls);
  }
  // A skipped fallback with no callback at all is never reached...
  EXPECT_EQ(RunProgram(
                [](sr_program_builder* b) {
                  ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
                  ASSERT_EQ(sr_builder_constant(b, SR_FALSE), SR_OK);
                  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
                  ASSERT_EQ(sr_builder_fallback(b, 0), SR_OK);
                  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
                  ASSERT_EQ(sr_builder_group_end(b), SR_OK);
                },
                {SR_TAG_NONE}, {NullV()}, nullptr, 1),
            SR_FALSE);
  // ... but a reached one without a callback stops.
  EXPECT_EQ(RunProgram([](sr_program_builder* b) { ASSERT_EQ(sr_builder_fallback(b, 0), SR_OK); }, {SR_TAG_NONE}, {NullV()},
                nullptr, 1),
            SR_STOP);
}

TEST(ProgramGroups, NestedMixedLeaves) {
  // ($1 > 10 AND $2 LIKE 'ab%') OR ($3 IN (1.5, NaN) AND NOT $4 IS NULL) OR $5
  Store st;
  const Tags tags = {SR_TAG_NONE, SR_TAG_INT, SR_TAG_TEXT, SR_TAG_FLOAT, SR_TAG_UUID, SR_TAG_BOOL};
  auto build = [](sr_program_builder* b) {
    const sr_value ten = IntV(10);
    const std::vector<sr_value> set = {FloatV(1.5), FloatV(kNaN)};
    ASSERT_EQ(sr_builder_group_begin(b, 0), SR_OK);
    ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
    ASSERT_EQ(sr_builder_compare(b, SR_OP_GT, SR_TAG_INT, 1, &ten), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_like_prefix(b, 2, reinterpret_cast<const uint8_t*>("ab"), 2, 0), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_end(b), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
    ASSERT_EQ(sr_builder_in(b, SR_TAG_FLOAT, 3, set.data(), set.size(), 0, 0), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_null_test(b, 4, 1), SR_OK);
    ASSERT_EQ(sr_builder_not(b), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_end(b), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_bool_column(b, 5), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_end(b), SR_OK);
  };
  const std::string uuid(16, '\x42');
  EXPECT_EQ(RunProgram(build, tags, {NullV(), IntV(11), st.bytes("abc"), NullV(), NullV(), IntV(0)}), SR_TRUE);
  EXPECT_EQ(RunProgram(build, tags, {NullV(), IntV(10), st.bytes("abc"), FloatV(kNaN), st.bytes(uuid), IntV(0)}), SR_TRUE);
  EXPECT_EQ(RunProgram(build, tags, {NullV(), IntV(10), st.bytes("abc"), FloatV(kNaN), NullV(), IntV(0)}), SR_FALSE);
  EXPECT_EQ(RunProgram(build, tags, {NullV(), NullV(), st.bytes("abc"), FloatV(2.0), NullV(), IntV(0)}), SR_NULL);
  EXPECT_EQ(RunProgram(build, tags, {NullV(), NullV(), st.bytes("xbc"), FloatV(2.0), NullV(), IntV(0)}), SR_FALSE);
  EXPECT_EQ(RunProgram(build, tags, {NullV(), NullV(), st.bytes("xbc"), NullV(), st.bytes(uuid), IntV(0)}), SR_NULL);
  EXPECT_EQ(RunProgram(build, tags, {NullV(), NullV(), st.bytes("xbc"), NullV(), st.bytes(uuid), IntV(1)}), SR_TRUE);
  EXPECT_EQ(RunProgram(build, tags, {NullV(), NullV(), st.bytes("xbc"), NullV(), st.bytes(uuid), NullV()}), SR_NULL);
}

TEST(ProgramGroups, DeepLeftNestingAndFullStack) {
  // 200 groups nested as first terms: the stack never grows past 2.
  for (int innermost : {SR_FALSE, SR_TRUE, SR_NULL}) {
    Fallbacks fb;
    fb.results = {SR_TRUE};
    const int r = RunProgram(
        [&](sr_program_builder* b) {
          for (int i = 0; i < 200; i++) ASSERT_EQ(sr_builder_group_begin(b, i % 2), SR_OK);
          ASSERT_EQ(sr_builder_constant(b, innermost), SR_OK);
          for (int i = 199; i >= 0; i--) {
            ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
            ASSERT_EQ(sr_builder_fallback(b, 0), SR_OK);  // AND TRUE / OR TRUE alternately
            ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
            ASSERT_EQ(sr_builder_group_end(b), SR_OK);
          }
        },
        {SR_TAG_NONE}, {NullV()}, &fb, 1);
    // Level i is an AND when i is odd; each level's second term is fallback 0 (TRUE),
    // reached only when the level's first term does not decide it.
    int expected = innermost;
    size_t expected_calls = 0;
    for (int i = 199; i >= 0; i--) {
      const bool is_and = i % 2 != 0;
      if (expected == (is_and ? SR_FALSE : SR_TRUE)) continue;
      expected_calls++;
      expected = is_and ? And3(expected, SR_TRUE) : Or3(expected, SR_TRUE);
    }
    EXPECT_EQ(r, expected) << innermost;
    EXPECT_EQ(fb.calls.size(), expected_calls) << innermost;
    EXPECT_GE(expected_calls, 99u);
  }
  // 32 values on the stack at once: right-nested ANDs of TRUE, last one FALSE or TRUE.
  for (int last : {SR_TRUE, SR_FALSE, SR_NULL}) {
    EXPECT_EQ(RunProgram(
                  [&](sr_program_builder* b) {
                    for (int i = 0; i < 31; i++) {
                      ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
                      ASSERT_EQ(sr_builder_constant(b, SR_TRUE), SR_OK);
                      ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
                    }
                    ASSERT_EQ(sr_builder_constant(b, last), SR_OK);  // the 32nd value
                    for (int i = 0; i < 31; i++) {
                      ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
                      ASSERT_EQ(sr_builder_group_end(b), SR_OK);
                    }
                  },
                  {SR_TAG_NONE}, {NullV()}),
              last);
  }
}

// ---------------------------------------------------------------- random expressions

TEST(ProgramRandom, DifferentialAgainstReferenceEvaluator) {
  constexpr int kTrees = 200000;
  constexpr int kRowsPerTree = 3;
  Gen gen(0x5EEDC0DEu);
  Tags tags;
  long outcomes[4] = {0, 0, 0, 0};
  long fallback_calls = 0;
  for (int t = 0; t < kTrees; t++) {
    if (t % 64 == 0) tags = gen.schema();
    const uint8_t fallback_count = static_cast<uint8_t>(gen.below(7));  // 0..6
    const Node tree = gen.tree(tags, fallback_count, 1 + static_cast<int>(gen.below(6)));
    Builder b;
    ASSERT_TRUE(Emit(b, tree)) << Describe(tree);
    Program p = b.finish(fallback_count);
    ASSERT_TRUE(p) << Describe(tree);

    char err[160] = "";
    ASSERT_EQ(sr_program_validate(p.data(), p.size(), tags.data(), Gen::kNatts, fallback_count, err, sizeof err), SR_OK)
        << err << "\n" << Describe(tree) << "\n" << Disassemble(p.data());

    std::set<uint16_t> cols;
    RefColumns(tree, cols);
    uint16_t got[Gen::kNatts + 1];
    const size_t ncols = sr_program_columns(p.data(), got, Gen::kNatts + 1);
    ASSERT_EQ(std::vector<uint16_t>(got, got + std::min<size_t>(ncols, Gen::kNatts + 1)),
              std::vector<uint16_t>(cols.begin(), cols.end()))
        << Describe(tree);

    if (t % 16 == 0) {
      // The same program against a relation whose type changed, or that lost columns.
      std::set<uint16_t> typed;
      TypedColumns(tree, typed);
      if (!typed.empty()) {
        auto it = typed.begin();
        std::advance(it, gen.below(static_cast<uint32_t>(typed.size())));
        Tags changed = tags;
        changed[*it] = static_cast<uint8_t>(tags[*it] % (SR_TAG_COUNT - 1) + 1);  // another native tag
        ExpectRejected(Validate(p.vec(), changed, Gen::kNatts, fallback_count), "changed tag");
      }
      if (!cols.empty())
        ExpectRejected(Validate(p.vec(), tags, static_cast<uint16_t>(*cols.rbegin() - 1), fallback_count),
                       "fewer columns");
      ExpectRejected(Validate(p.vec(), tags, Gen::kNatts, static_cast<uint8_t>(fallback_count + 1)),
                     "fallback count + 1");
    }

    for (int r = 0; r < kRowsPerTree; r++) {
      const std::vector<Datum> row = gen.row(tags);
      const std::vector<int> fb = gen.fallback_results(fallback_count);
      RefContext ctx{&row, &fb, {}};
      const int expected = RefEval(tree, ctx);
      const RowBuf rb(tags, row);
      CheckedFallbacks vm{&fb, fallback_count, {}};
      const int got_result = sr_program_eval(p.data(), rb.data(), &CheckedFallbacks::fn, &vm);
      ASSERT_EQ(got_result, expected) << "tree " << t << ": " << Describe(tree) << "\nrow: " << RowText(tags, row)
                                      << "\nfallback calls: ref " << CallsText(ctx.calls) << " vm "
                                      << CallsText(vm.calls) << "\n"
                                      << Disassemble(p.data());
      ASSERT_EQ(vm.calls, ctx.calls) << "tree " << t << ": " << Describe(tree) << "\nrow: " << RowText(tags, row)
                                     << "\n"
                                     << Disassemble(p.data());
      outcomes[expected]++;
      fallback_calls += static_cast<long>(vm.calls.size());
    }
  }
  for (int o = 0; o < 4; o++) RecordProperty("outcome" + std::to_string(o), static_cast<int>(outcomes[o]));
  // The generator must exercise every outcome substantially.
  for (int o = 0; o < 4; o++) EXPECT_GT(outcomes[o], 10000) << "outcome " << o;
  EXPECT_GT(fallback_calls, 100000);
}

}  // namespace
