// Unit tests of the program builder (sr_builder_*): the calls it refuses, and
// the programs it must not finish.
#include "shape_router/program.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "program_helpers.hpp"

namespace {

// ---------------------------------------------------------------- builder errors

TEST(ProgramBuilder, Errors) {
  const sr_value null_const = NullV();
  const sr_value one = IntV(1);
  {
    Builder b;
    EXPECT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 1, &null_const), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_compare(b, SR_OP_COUNT, SR_TAG_INT, 1, &one), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_NONE, 1, &one), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_COUNT, 1, &one), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 0, &one), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_compare_columns(b, SR_OP_EQ, SR_TAG_INT, 0, 1), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_compare_columns(b, SR_OP_EQ, SR_TAG_INT, 1, 0), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_compare_columns(b, SR_OP_COUNT, SR_TAG_INT, 1, 2), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_compare_columns(b, SR_OP_EQ, SR_TAG_NONE, 1, 2), SR_INVALID_ARGUMENT);
    const sr_value with_null[] = {IntV(1), NullV()};
    EXPECT_EQ(sr_builder_in(b, SR_TAG_INT, 1, with_null, 2, 1, 0), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_in(b, SR_TAG_NONE, 1, with_null, 1, 0, 0), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_in(b, SR_TAG_INT, 0, with_null, 1, 0, 0), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_null_test(b, 0, 1), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_bool_column(b, 0), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_like_prefix(b, 0, reinterpret_cast<const uint8_t*>("a"), 1, 0), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_fallback(b, 256), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_constant(b, 3), SR_INVALID_ARGUMENT);
    // NOT / truth test on an empty stack.
    EXPECT_EQ(sr_builder_not(b), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_test(b, SR_TEST_IS_TRUE), SR_INVALID_ARGUMENT);
    // Nothing was pushed: finish with depth 0 fails.
    EXPECT_FALSE(b.finish());
  }
  {
    Builder b;
    ASSERT_EQ(sr_builder_constant(b, SR_TRUE), SR_OK);
    EXPECT_EQ(sr_builder_test(b, SR_TEST_COUNT), SR_INVALID_ARGUMENT);
  }
  {
    Builder b;  // an over-long LIKE prefix
    std::string big(70000, 'x');
    EXPECT_EQ(sr_builder_like_prefix(b, 1, reinterpret_cast<const uint8_t*>(big.data()), big.size(), 0),
              SR_INVALID_ARGUMENT);
    const sr_value bigv = ConstBytes(big);
    EXPECT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_TEXT, 1, &bigv), SR_INVALID_ARGUMENT);
  }
  {
    Builder b;  // two values left
    ASSERT_EQ(sr_builder_constant(b, SR_TRUE), SR_OK);
    ASSERT_EQ(sr_builder_constant(b, SR_TRUE), SR_OK);
    sr_status st = SR_OK;
    EXPECT_FALSE(b.finish(0, &st));
    EXPECT_EQ(st, SR_INVALID_ARGUMENT);
  }
  // Unbalanced groups.
  {
    Builder b;
    EXPECT_EQ(sr_builder_group_end(b), SR_INVALID_ARGUMENT);
    EXPECT_EQ(sr_builder_group_term_done(b), SR_INVALID_ARGUMENT);
  }
  {
    Builder b;  // empty group
    ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
    EXPECT_EQ(sr_builder_group_end(b), SR_INVALID_ARGUMENT);
  }
  {
    Builder b;  // group left open
    ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
    ASSERT_EQ(sr_builder_constant(b, SR_TRUE), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    sr_status st = SR_OK;
    EXPECT_FALSE(b.finish(0, &st));
    EXPECT_EQ(st, SR_INVALID_ARGUMENT);
  }
  {
    Builder b;  // term_done with no term pushed (nor a second one with none in between)
    ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
    EXPECT_EQ(sr_builder_group_term_done(b), SR_INVALID_ARGUMENT);
    ASSERT_EQ(sr_builder_constant(b, SR_TRUE), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    EXPECT_EQ(sr_builder_group_term_done(b), SR_INVALID_ARGUMENT);
  }
  {
    Builder b;  // group closed twice
    ASSERT_EQ(sr_builder_group_begin(b, 0), SR_OK);
    ASSERT_EQ(sr_builder_constant(b, SR_TRUE), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_end(b), SR_OK);
    EXPECT_EQ(sr_builder_group_end(b), SR_INVALID_ARGUMENT);
  }
  // Nesting deeper than the 32-value stack.
  {
    Builder b;
    sr_status last = SR_OK;
    int pushed = 0;
    for (int i = 0; i < 40 && last == SR_OK; i++) {
      ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
      last = sr_builder_constant(b, SR_TRUE);
      if (last == SR_OK) {
        pushed++;
        ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
      }
    }
    EXPECT_EQ(last, SR_INVALID_ARGUMENT);
    EXPECT_EQ(pushed, 32);
  }
  {
    Builder b;  // 33 loose values
    for (int i = 0; i < 32; i++) ASSERT_EQ(sr_builder_fallback(b, 0), SR_OK);
    EXPECT_EQ(sr_builder_null_test(b, 1, 1), SR_INVALID_ARGUMENT);
  }
  // Destroying a NULL builder is harmless.
  sr_builder_destroy(nullptr);
}

// An op emitted between the last group_term_done and group_end must not be
// silently dropped (group_end truncates the code to before the last term's
// jump): either the builder refuses it, or the program runs it.
TEST(ProgramBuilder, OpAfterLastTermIsNotDropped) {
  Builder b;
  ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
  ASSERT_EQ(sr_builder_constant(b, SR_TRUE), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  const sr_status not_status = sr_builder_not(b);
  const sr_status end_status = sr_builder_group_end(b);
  Program p = b.finish();
  if (not_status == SR_OK && end_status == SR_OK && p) {
    // Accepted: then the NOT must be in the program.
    sr_value row[1] = {NullV()};
    EXPECT_EQ(sr_program_eval(p.data(), row, nullptr, nullptr), SR_FALSE) << Disassemble(p.data());
  }
}

}  // namespace
