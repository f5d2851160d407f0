// The router's stored form of a shape's definition: every field reads back as
// given, the program's constants are the shape's own bytes (so that shapes
// differing only there share the rest), and bytes that are not an encoding are
// refused.
#include "shape_router/shape_spec.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "shape_router/program.h"

using shape_router::decode_shape_spec;
using shape_router::encode_shape_spec;

namespace {

// `col1 = k` over ints, as the compiler makes it.
std::vector<uint8_t> equality_program(int64_t k) {
  sr_program_builder* b = nullptr;
  EXPECT_EQ(sr_builder_create(&b), SR_OK);
  sr_value constant{};
  constant.v.i = k;
  EXPECT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 1, &constant), SR_OK);
  uint8_t* bytes = nullptr;
  size_t len = 0;
  EXPECT_EQ(sr_builder_finish(b, 0, &bytes, &len), SR_OK);
  std::vector<uint8_t> program(bytes, bytes + len);
  std::free(bytes);
  sr_builder_destroy(b);
  return program;
}

struct Spec {
  std::vector<uint8_t> program;
  std::vector<int16_t> where, columns;
  bool all_columns = true;
  std::string fallback;
  bool has_fallback = false;

  sr_shape_spec view() const {
    sr_shape_spec s{};
    s.program = program.empty() ? nullptr : program.data();
    s.program_len = static_cast<uint32_t>(program.size());
    s.where_attnums = where.data();
    s.where_count = static_cast<uint32_t>(where.size());
    s.column_attnums = columns.data();
    s.column_count = all_columns ? -1 : static_cast<int32_t>(columns.size());
    s.fallback_text = has_fallback ? fallback.c_str() : nullptr;
    return s;
  }
};

void expect_same(const sr_shape_spec& got, const Spec& want) {
  ASSERT_EQ(got.program_len, want.program.size());
  if (!want.program.empty()) {
    EXPECT_EQ(std::memcmp(got.program, want.program.data(), want.program.size()), 0);
  }
  ASSERT_EQ(got.where_count, want.where.size());
  for (size_t i = 0; i < want.where.size(); i++) EXPECT_EQ(got.where_attnums[i], want.where[i]);
  EXPECT_EQ(got.column_count, want.all_columns ? -1 : static_cast<int32_t>(want.columns.size()));
  for (size_t i = 0; !want.all_columns && i < want.columns.size(); i++)
    EXPECT_EQ(got.column_attnums[i], want.columns[i]);
  if (want.has_fallback)
    EXPECT_STREQ(got.fallback_text, want.fallback.c_str());
  else
    EXPECT_EQ(got.fallback_text, nullptr);
}

}  // namespace

TEST(ShapeSpec, EveryFieldReadsBack) {
  std::mt19937_64 rng(3);
  std::vector<uint8_t> bytes;
  std::vector<int16_t> where, columns;
  for (int round = 0; round < 2000; round++) {
    Spec s;
    if (rng() % 4 != 0) {
      s.program.resize(rng() % 300);
      for (auto& b : s.program) b = static_cast<uint8_t>(rng());
    }
    for (size_t n = rng() % 5; n > 0; n--) s.where.push_back(static_cast<int16_t>(1 + rng() % 1600));
    s.all_columns = rng() % 3 == 0;
    if (!s.all_columns)
      for (size_t n = rng() % 4; n > 0; n--) s.columns.push_back(static_cast<int16_t>(rng() % 1600));
    s.has_fallback = rng() % 3 == 0;
    if (s.has_fallback) s.fallback = std::string(rng() % 200, 'x') + std::to_string(round);
    size_t own_offset = 0, own_len = 0;
    encode_shape_spec(s.view(), bytes, &own_offset, &own_len);
    sr_shape_spec got{};
    ASSERT_TRUE(decode_shape_spec(bytes.data(), bytes.size(), &got, where, columns)) << round;
    expect_same(got, s);
    if (s.has_fallback) {
      EXPECT_EQ(own_offset, SR_BLOB_UNSHARED);  // its text is its own
    }
    if (s.program.empty() && !s.has_fallback) {
      EXPECT_EQ(own_offset, 0u);  // nothing of its own
    }
  }
}

TEST(ShapeSpec, ConstantsAreTheShapesOwnBytes) {
  Spec a, b;
  a.program = equality_program(41);
  b.program = equality_program(1234567);
  a.where = b.where = {1};
  std::vector<uint8_t> ea, eb;
  size_t oa, la, ob, lb;
  encode_shape_spec(a.view(), ea, &oa, &la);
  encode_shape_spec(b.view(), eb, &ob, &lb);
  ASSERT_NE(oa, SR_BLOB_UNSHARED);
  ASSERT_EQ(oa, ob);
  ASSERT_EQ(la, lb);
  ASSERT_GT(la, 0u);
  ASSERT_EQ(ea.size(), eb.size());
  // the two differ only in the own bytes
  EXPECT_EQ(std::memcmp(ea.data(), eb.data(), oa), 0);
  EXPECT_EQ(std::memcmp(ea.data() + oa + la, eb.data() + oa + la, ea.size() - oa - la), 0);
  EXPECT_NE(std::memcmp(ea.data() + oa, eb.data() + oa, la), 0);
}

TEST(ShapeSpec, RefusesWhatIsNotAnEncoding) {
  Spec s;
  s.program = equality_program(7);
  s.where = {1};
  s.has_fallback = true;
  s.fallback = "f";
  std::vector<uint8_t> bytes;
  std::vector<int16_t> w, c;
  size_t o, l;
  encode_shape_spec(s.view(), bytes, &o, &l);
  sr_shape_spec got{};
  EXPECT_TRUE(decode_shape_spec(bytes.data(), bytes.size(), &got, w, c));
  for (size_t cut = 0; cut < bytes.size(); cut++)
    EXPECT_FALSE(decode_shape_spec(bytes.data(), cut, &got, w, c)) << cut;  // short
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  EXPECT_FALSE(decode_shape_spec(longer.data(), longer.size(), &got, w, c));
  bytes.back() = 'x';  // the fallback text lost its NUL
  EXPECT_FALSE(decode_shape_spec(bytes.data(), bytes.size(), &got, w, c));
  const uint8_t endless[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
  EXPECT_FALSE(decode_shape_spec(endless, sizeof endless, &got, w, c));
  Spec bad;
  bad.all_columns = false;
  sr_shape_spec v = bad.view();
  v.column_count = -2;
  EXPECT_THROW(encode_shape_spec(v, bytes, &o, &l), std::invalid_argument);
}
