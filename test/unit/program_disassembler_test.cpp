// Unit tests of the disassembler (sr_program_disassemble): what a listing
// says, and its truncation to the caller's buffer.
#include "shape_router/program.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "program_helpers.hpp"

namespace {

TEST(ProgramDisassemble, MentionsOpsAndTruncates) {
  const sr_value five = IntV(-5);
  const sr_value pi = FloatV(2.5);
  const std::string uuid = "\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef";
  const sr_value u = ConstBytes(uuid);
  const std::string txt = "it's";
  const sr_value t = ConstBytes(txt);
  const sr_value set[] = {IntV(3), IntV(1), IntV(2)};
  Builder b;
  ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
  ASSERT_EQ(sr_builder_compare(b, SR_OP_GE, SR_TAG_INT, 1, &five), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_compare(b, SR_OP_DISTINCT, SR_TAG_FLOAT, 2, &pi), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_UUID, 3, &u), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_compare(b, SR_OP_NE, SR_TAG_TEXT, 4, &t), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_in(b, SR_TAG_INT, 1, set, 3, 1, 1), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_group_begin(b, 0), SR_OK);
  ASSERT_EQ(sr_builder_null_test(b, 5, 1), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_like_prefix(b, 4, reinterpret_cast<const uint8_t*>("ab"), 2, 0), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_fallback(b, 3), SR_OK);
  ASSERT_EQ(sr_builder_test(b, SR_TEST_IS_NOT_UNKNOWN), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_group_end(b), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_bool_column(b, 6), SR_OK);
  ASSERT_EQ(sr_builder_not(b), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_constant(b, SR_NULL), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_group_end(b), SR_OK);
  Program p = b.finish(4);
  ASSERT_TRUE(p);
  const Tags tags = {SR_TAG_NONE, SR_TAG_INT, SR_TAG_FLOAT, SR_TAG_UUID, SR_TAG_TEXT, SR_TAG_NONE, SR_TAG_BOOL};
  ASSERT_EQ(Validate(p.vec(), tags, 6, 4).status, SR_OK);

  const std::string text = Disassemble(p.data());
  for (const char* needle :
       {"$1 >= -5 (int)", "IS DISTINCT FROM", "2.5", "'01234567-89ab-cdef-0123-456789abcdef'", "(uuid)",
        "$4 <> 'it''s' (text)", "$1 NOT IN (1, 2, 3, NULL)", "$5 IS NULL", "$4 LIKE 'ab%'", "FALLBACK 3",
        "IS NOT UNKNOWN", "$6 (bool column)", "NOT", "AND", "OR", "NULL", "IF FALSE GOTO", "IF TRUE GOTO"})
    EXPECT_NE(text.find(needle), std::string::npos) << "missing " << needle << " in:\n" << text;

  // Truncation: always NUL-terminated, always returns the full size needed.
  const size_t need = text.size() + 1;
  EXPECT_EQ(sr_program_disassemble(p.data(), nullptr, 0), need);
  for (size_t buflen : {size_t{1}, size_t{2}, size_t{5}, size_t{17}, need - 1, need, need + 10}) {
    std::unique_ptr<char[]> buf(new char[buflen]);
    std::memset(buf.get(), '#', buflen);
    EXPECT_EQ(sr_program_disassemble(p.data(), buf.get(), buflen), need) << buflen;
    const size_t n = std::min(buflen - 1, text.size());
    EXPECT_EQ(buf[n], '\0') << buflen;
    EXPECT_EQ(std::string(buf.get(), n), text.substr(0, n)) << buflen;
  }
  char one = 'z';
  EXPECT_EQ(sr_program_disassemble(p.data(), &one, 1), need);
  EXPECT_EQ(one, '\0');
}

// The '%' of a LIKE prefix holding a quote lands after the doubled quote, at
// the end of the quoted text.
TEST(ProgramDisassemble, LikePrefixWithQuote) {
  Builder b;
  ASSERT_EQ(sr_builder_like_prefix(b, 1, reinterpret_cast<const uint8_t*>("a'b"), 3, 0), SR_OK);
  Program p = b.finish();
  ASSERT_TRUE(p);
  EXPECT_NE(Disassemble(p.data()).find("LIKE 'a''b%'"), std::string::npos) << Disassemble(p.data());
}

}  // namespace
