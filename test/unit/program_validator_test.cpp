// Unit tests of loading a program: the validator (sr_program_validate,
// sr_program_check) and what a loader reads from an accepted program
// (sr_program_columns); and a mutation fuzz of the validator: whatever it
// accepts must run, list and disassemble without reading out of bounds (the
// .asan build checks that; mutants live in exactly-sized heap buffers).
#include "shape_router/program.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "program_gen.hpp"
#include "program_helpers.hpp"

namespace {

// ---------------------------------------------------------------- validator

TEST(ProgramValidate, RejectsMismatches) {
  const sr_value five = IntV(5);
  Builder b;
  ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
  ASSERT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 1, &five), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_fallback(b, 1), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_compare_columns(b, SR_OP_LT, SR_TAG_TEXT, 2, 3), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_group_end(b), SR_OK);
  Program p = b.finish(2);
  ASSERT_TRUE(p);
  const std::vector<uint8_t> good = p.vec();
  const Tags tags = {SR_TAG_NONE, SR_TAG_INT, SR_TAG_TEXT, SR_TAG_TEXT};
  EXPECT_EQ(Validate(good, tags, 3, 2).status, SR_OK);
  EXPECT_EQ(sr_program_fallback_count(p.data()), 2);
  // More columns than read are fine.
  const Tags more = {SR_TAG_NONE, SR_TAG_INT, SR_TAG_TEXT, SR_TAG_TEXT, SR_TAG_NONE, SR_TAG_UUID};
  EXPECT_EQ(Validate(good, more, 5, 2).status, SR_OK);

  // Wrong tags.
  ExpectRejected(Validate(good, {SR_TAG_NONE, SR_TAG_FLOAT, SR_TAG_TEXT, SR_TAG_TEXT}, 3, 2), "int column now float");
  ExpectRejected(Validate(good, {SR_TAG_NONE, SR_TAG_DATE, SR_TAG_TEXT, SR_TAG_TEXT}, 3, 2), "int column now date");
  ExpectRejected(Validate(good, {SR_TAG_NONE, SR_TAG_NONE, SR_TAG_TEXT, SR_TAG_TEXT}, 3, 2), "int column now none");
  ExpectRejected(Validate(good, {SR_TAG_NONE, SR_TAG_INT, SR_TAG_TEXT, SR_TAG_BPCHAR}, 3, 2), "right column bpchar");
  ExpectRejected(Validate(good, {SR_TAG_NONE, SR_TAG_INT, SR_TAG_UUID, SR_TAG_TEXT}, 3, 2), "left column uuid");
  // attnum > natts.
  ExpectRejected(Validate(good, tags, 2, 2), "natts 2");
  ExpectRejected(Validate(good, tags, 0, 2), "natts 0");
  // Wrong fallback count.
  ExpectRejected(Validate(good, tags, 3, 1), "fallback count 1");
  ExpectRejected(Validate(good, tags, 3, 3), "fallback count 3");
  ExpectRejected(Validate(good, tags, 3, 0), "fallback count 0");
  // Truncated / wrong length.
  for (size_t n = 0; n < good.size(); n++)
    ExpectRejected(Validate(std::vector<uint8_t>(good.begin(), good.begin() + n), tags, 3, 2), "truncated");
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  ExpectRejected(Validate(longer, tags, 3, 2), "one byte too long");
  // Bad magic / version.
  std::vector<uint8_t> bad = good;
  bad[0] ^= 0xff;
  ExpectRejected(Validate(bad, tags, 3, 2), "magic");
  bad = good;
  bad[1]++;
  ExpectRejected(Validate(bad, tags, 3, 2), "version");
  // Declared stack too small / too large.
  bad = good;
  bad[6] = 1;
  ExpectRejected(Validate(bad, tags, 3, 2), "stack 1");
  bad[6] = 0;
  ExpectRejected(Validate(bad, tags, 3, 2), "stack 0");
  bad[6] = 33;
  ExpectRejected(Validate(bad, tags, 3, 2), "stack 33");
  // Fallback count in the header disagreeing with the caller's.
  bad = good;
  bad[7] = 3;
  ExpectRejected(Validate(bad, tags, 3, 2), "header fallback count");

  // Messages survive tiny or missing buffers.
  char tiny[4] = {'x', 'x', 'x', 'x'};
  EXPECT_EQ(sr_program_validate(good.data(), good.size(), tags.data(), 2, 2, tiny, sizeof tiny), SR_INVALID_ARGUMENT);
  EXPECT_EQ(tiny[3], '\0');
  EXPECT_EQ(sr_program_validate(good.data(), good.size(), tags.data(), 2, 2, nullptr, 0), SR_INVALID_ARGUMENT);
  EXPECT_EQ(sr_program_validate(good.data(), good.size(), tags.data(), 2, 2, tiny, 0), SR_INVALID_ARGUMENT);
}

TEST(ProgramValidate, AttnumZeroPatchedIn) {
  // The builder refuses column 0, so patch it into the bytes: the first
  // instruction's attnum (u16 after opcode and flags; implementation layout).
  const sr_value five = IntV(5);
  Builder b;
  ASSERT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 1, &five), SR_OK);
  Program p = b.finish();
  ASSERT_TRUE(p);
  std::vector<uint8_t> bytes = p.vec();
  const Tags tags = {SR_TAG_INT, SR_TAG_INT};  // even if tag[0] looked right
  EXPECT_EQ(Validate(bytes, tags, 1, 0).status, SR_OK);
  ASSERT_EQ(bytes[10], 1);
  ASSERT_EQ(bytes[11], 0);
  bytes[10] = 0;
  ExpectRejected(Validate(bytes, tags, 1, 0), "attnum 0");
  bytes[10] = 2;
  ExpectRejected(Validate(bytes, tags, 1, 0), "attnum 2 > natts 1");

  for (auto build : {+[](sr_program_builder* pb) { ASSERT_EQ(sr_builder_null_test(pb, 1, 1), SR_OK); },
                     +[](sr_program_builder* pb) { ASSERT_EQ(sr_builder_bool_column(pb, 1), SR_OK); }}) {
    Builder b2;
    build(b2);
    Program p2 = b2.finish();
    ASSERT_TRUE(p2);
    std::vector<uint8_t> by = p2.vec();
    const Tags btags = {SR_TAG_BOOL, SR_TAG_BOOL};
    EXPECT_EQ(Validate(by, btags, 1, 0).status, SR_OK);
    // Zero every u16 that holds 1 in the code: the attnum.
    bool patched = false;
    for (size_t i = 8; i + 1 < by.size(); i++)
      if (by[i] == 1 && by[i + 1] == 0 && i > 8) {
        by[i] = 0;
        patched = true;
        break;
      }
    ASSERT_TRUE(patched);
    ExpectRejected(Validate(by, btags, 1, 0), "attnum 0 (null test / bool column)");
  }
}

// The column must be an array of the operator's element tag.
TEST(ProgramArray, ValidationWantsTheArrayColumn) {
  Builder b;
  const sr_value one = IntV(1);
  ASSERT_EQ(sr_builder_array(b, SR_ARRAY_CONTAINS, SR_TAG_INT, 1, &one, 1, 0), SR_OK);
  Program p = b.finish(0);
  ASSERT_TRUE(p);
  const Tags scalar = {SR_TAG_NONE, SR_TAG_INT}, text_array = {SR_TAG_NONE, SR_TAG_TEXT | SR_TAG_ELEMENT_FLAG},
             int_array = {SR_TAG_NONE, SR_TAG_INT | SR_TAG_ELEMENT_FLAG};
  char err[160];
  EXPECT_EQ(sr_program_validate(p.data(), p.size(), scalar.data(), 1, 0, err, sizeof err), SR_INVALID_ARGUMENT);
  EXPECT_EQ(sr_program_validate(p.data(), p.size(), text_array.data(), 1, 0, err, sizeof err), SR_INVALID_ARGUMENT);
  EXPECT_EQ(sr_program_validate(p.data(), p.size(), int_array.data(), 1, 0, err, sizeof err), SR_OK);
  uint16_t attnums[4];
  EXPECT_EQ(sr_program_columns(p.data(), attnums, 4), 1u);
  EXPECT_EQ(attnums[0], 1);
  EXPECT_NE(Disassemble(p.data()).find("$1 @> {1} (int array)"), std::string::npos) << Disassemble(p.data());
}

// The check says why a program does not fit, so that the shell need not read its message.
TEST(ProgramCheck, SaysWhyAProgramDoesNotFit) {
  const sr_value ten = IntV(10);
  Builder b;
  ASSERT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 1, &ten), SR_OK);
  Program p = b.finish();
  ASSERT_TRUE(p);
  char message[128];
  const Tags ints = {SR_TAG_NONE, SR_TAG_INT}, texts = {SR_TAG_NONE, SR_TAG_TEXT};
  EXPECT_EQ(sr_program_check(p.data(), p.size(), ints.data(), 1, 0, message, sizeof message), SR_PROGRAM_FITS);
  EXPECT_EQ(sr_program_check(p.data(), p.size(), texts.data(), 1, 0, message, sizeof message),
            SR_PROGRAM_COLUMN_MISMATCH);
  EXPECT_NE(std::string(message).find("column does not match"), std::string::npos);
  EXPECT_EQ(sr_program_check(p.data(), p.size(), ints.data(), 0, 0, message, sizeof message),
            SR_PROGRAM_COLUMN_MISMATCH);  // the column is gone
  EXPECT_EQ(sr_program_check(p.data(), p.size() - 1, ints.data(), 1, 0, message, sizeof message),
            SR_PROGRAM_MALFORMED);
  EXPECT_EQ(sr_program_check(p.data(), p.size(), ints.data(), 1, 1, message, sizeof message), SR_PROGRAM_MALFORMED);
  EXPECT_EQ(sr_program_validate(p.data(), p.size(), texts.data(), 1, 0, nullptr, 0), SR_INVALID_ARGUMENT);
}

// ---------------------------------------------------------------- columns

TEST(ProgramColumns, SortedUniqueAttnums) {
  const sr_value v = IntV(1);
  const sr_value vals[] = {IntV(1), IntV(2)};
  Builder b;
  ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
  for (uint16_t att : {9, 2, 9}) {
    ASSERT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, att, &v), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  }
  ASSERT_EQ(sr_builder_compare_columns(b, SR_OP_LT, SR_TAG_INT, 7, 2), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_in(b, SR_TAG_INT, 4, vals, 2, 0, 1), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_null_test(b, 11, 0), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_bool_column(b, 3), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_like_prefix(b, 1, reinterpret_cast<const uint8_t*>("p"), 1, 0), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_fallback(b, 0), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_constant(b, SR_TRUE), SR_OK);
  ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
  ASSERT_EQ(sr_builder_group_end(b), SR_OK);
  Program p = b.finish(1);
  ASSERT_TRUE(p);
  const std::vector<uint16_t> expected = {1, 2, 3, 4, 7, 9, 11};
  std::vector<uint16_t> out(10, 0xeeee);
  ASSERT_EQ(sr_program_columns(p.data(), out.data(), out.size()), expected.size());
  EXPECT_EQ(std::vector<uint16_t>(out.begin(), out.begin() + 7), expected);
  EXPECT_EQ(out[7], 0xeeee);
  // Fewer slots: the count is still the full count; only max are written.
  std::vector<uint16_t> few(5, 0xeeee);
  ASSERT_EQ(sr_program_columns(p.data(), few.data(), 3), expected.size());
  EXPECT_EQ(few, std::vector<uint16_t>({1, 2, 3, 0xeeee, 0xeeee}));
  EXPECT_EQ(sr_program_columns(p.data(), nullptr, 0), expected.size());

  // A program reading no column.
  Builder c;
  ASSERT_EQ(sr_builder_fallback(c, 0), SR_OK);
  Program pc = c.finish(1);
  ASSERT_TRUE(pc);
  EXPECT_EQ(sr_program_columns(pc.data(), out.data(), out.size()), 0u);

  // More than 64 distinct columns, in descending order with repeats.
  Builder d;
  ASSERT_EQ(sr_builder_group_begin(d, 0), SR_OK);
  for (int rep = 0; rep < 2; rep++)
    for (uint16_t att = 150; att >= 1; att--) {
      ASSERT_EQ(sr_builder_null_test(d, att, 1), SR_OK);
      ASSERT_EQ(sr_builder_group_term_done(d), SR_OK);
    }
  ASSERT_EQ(sr_builder_group_end(d), SR_OK);
  Program pd = d.finish();
  ASSERT_TRUE(pd);
  std::vector<uint16_t> all(200, 0);
  ASSERT_EQ(sr_program_columns(pd.data(), all.data(), all.size()), 150u);
  for (uint16_t i = 0; i < 150; i++) EXPECT_EQ(all[i], i + 1);
}

// ---------------------------------------------------------------- mutation fuzz

struct Specimen {
  std::vector<uint8_t> bytes;
  Tags tags;
  uint8_t fallback_count;
};

std::vector<Specimen> Corpus(Gen& gen, int trees) {
  std::vector<Specimen> corpus;
  Tags tags;
  for (int t = 0; t < trees; t++) {
    if (t % 8 == 0) tags = gen.schema();
    const uint8_t fc = static_cast<uint8_t>(gen.below(4));
    const Node tree = gen.tree(tags, fc, 1 + static_cast<int>(gen.below(6)));
    Builder b;
    if (!Emit(b, tree)) {
      ADD_FAILURE() << Describe(tree);
      continue;
    }
    Program p = b.finish(fc);
    if (!p) {
      ADD_FAILURE() << Describe(tree);
      continue;
    }
    corpus.push_back({p.vec(), tags, fc});
  }
  return corpus;
}

void PutU16(std::vector<uint8_t>& m, size_t pos, uint16_t v) {
  m[pos] = static_cast<uint8_t>(v & 0xff);
  m[pos + 1] = static_cast<uint8_t>(v >> 8);
}
uint16_t GetU16(const std::vector<uint8_t>& m, size_t pos) { return static_cast<uint16_t>(m[pos] | (m[pos + 1] << 8)); }

// Instruction lengths by opcode as program_format.hpp lays them out (an implementation
// detail used only to aim mutations at operands; 0 = unknown).
size_t InstructionLength(uint8_t opcode) {
  static const uint8_t lengths[] = {0, 6, 6, 6, 4, 3, 2, 6, 2, 1, 2, 1, 1, 3, 3};
  return opcode < sizeof lengths ? lengths[opcode] : 0;
}

// Nudges one operand of one instruction: u16 fields towards the pool's end,
// small deltas, or boundary values; byte fields by small deltas.
bool MutateOperand(std::vector<uint8_t>& m, Gen& g) {
  if (m.size() < 8) return false;
  const size_t code_len = GetU16(m, 2), const_len = GetU16(m, 4);
  if (8 + code_len > m.size()) return false;
  std::vector<size_t> starts;
  for (size_t pos = 0; pos < code_len;) {
    const size_t ilen = InstructionLength(m[8 + pos]);
    if (ilen == 0 || pos + ilen > code_len) break;
    if (ilen > 1) starts.push_back(pos);
    pos += ilen;
  }
  if (starts.empty()) return false;
  const size_t start = 8 + starts[g.below(static_cast<uint32_t>(starts.size()))];
  const size_t ilen = InstructionLength(m[start]);
  const size_t field = 1 + g.below(static_cast<uint32_t>(ilen - 1));
  if (field + 1 < ilen && g.chance(75)) {
    const uint16_t old = GetU16(m, start + field);
    const int delta = (g.chance(50) ? 1 : -1) * static_cast<int>(1 + g.below(9));
    const uint16_t choices[] = {static_cast<uint16_t>(old + delta),
                                static_cast<uint16_t>(const_len - g.below(10)),
                                static_cast<uint16_t>(const_len + g.below(3)),
                                static_cast<uint16_t>(code_len - g.below(8)),
                                0,
                                Gen::kNatts,
                                Gen::kNatts + 1,
                                0xffff};
    PutU16(m, start + field, choices[g.below(sizeof choices / sizeof *choices)]);
  } else {
    m[start + field] = static_cast<uint8_t>(m[start + field] + (g.chance(50) ? 1 : -1) * static_cast<int>(1 + g.below(4)));
  }
  return true;
}

void Mutate(std::vector<uint8_t>& m, Gen& g) {
  const size_t len = m.size();
  if (g.chance(30) && MutateOperand(m, g)) return;
  switch (g.below(9)) {
    case 0: {  // overwrite 1..4 bytes anywhere
      const uint32_t n = 1 + g.below(4);
      for (uint32_t i = 0; i < n && !m.empty(); i++) m[g.below(static_cast<uint32_t>(m.size()))] = static_cast<uint8_t>(g.below(256));
      break;
    }
    case 1:  // overwrite one byte after the header
      if (len > 8) m[8 + g.below(static_cast<uint32_t>(len - 8))] = static_cast<uint8_t>(g.below(256));
      break;
    case 2:  // flip one bit
      if (len > 0) m[g.below(static_cast<uint32_t>(len))] ^= static_cast<uint8_t>(1u << g.below(8));
      break;
    case 3:  // truncate
      m.resize(g.below(static_cast<uint32_t>(len + 1)));
      break;
    case 4: {  // extend with random bytes
      const uint32_t n = 1 + g.below(16);
      for (uint32_t i = 0; i < n; i++) m.push_back(static_cast<uint8_t>(g.below(256)));
      break;
    }
    case 5: {  // shrink or grow the constant pool, keeping the header's length consistent
      if (len < 8) break;
      const uint16_t const_len = GetU16(m, 4);
      const int delta = static_cast<int>(g.below(17)) - 8;
      if (delta < 0 && -delta > const_len) break;
      if (delta < 0) {
        m.resize(len - static_cast<size_t>(-delta));
      } else {
        for (int i = 0; i < delta; i++) m.push_back(static_cast<uint8_t>(g.below(256)));
      }
      PutU16(m, 4, static_cast<uint16_t>(const_len + delta));
      break;
    }
    case 6: {  // an interesting u16 anywhere after the magic
      if (len < 4) break;
      const uint16_t code_len = GetU16(m, 2);
      const uint16_t choices[] = {0, 1, 2, 7, 8, 9, 0x7fff, 0x8000, 0xffff, code_len,
                                  static_cast<uint16_t>(code_len + 1), static_cast<uint16_t>(len),
                                  static_cast<uint16_t>(g.below(65536))};
      PutU16(m, 2 + g.below(static_cast<uint32_t>(len - 3)), choices[g.below(sizeof choices / sizeof *choices)]);
      break;
    }
    case 7: {  // insert or delete one code byte, fixing code_len
      if (len < 8) break;
      const uint16_t code_len = GetU16(m, 2);
      if (8 + static_cast<size_t>(code_len) > len) break;
      if (g.chance(50) && code_len > 0) {
        m.erase(m.begin() + 8 + g.below(code_len));
        PutU16(m, 2, static_cast<uint16_t>(code_len - 1));
      } else {
        m.insert(m.begin() + 8 + g.below(code_len + 1u), static_cast<uint8_t>(g.below(256)));
        PutU16(m, 2, static_cast<uint16_t>(code_len + 1));
      }
      break;
    }
    default: {  // small arithmetic on one byte (nudges offsets, tags, ops, jump lengths)
      if (len == 0) break;
      const size_t pos = g.below(static_cast<uint32_t>(len));
      m[pos] = static_cast<uint8_t>(m[pos] + (g.chance(50) ? 1 : -1) * static_cast<int>(1 + g.below(8)));
      break;
    }
  }
}

// Runs everything that may follow a successful validation on an accepted mutant.
void ExerciseAccepted(const uint8_t* prog, const Tags& tags, uint8_t fallback_count, Gen& g) {
  const uint16_t natts = static_cast<uint16_t>(tags.size() - 1);
  const std::vector<Datum> row = g.row(tags);
  const RowBuf rb(tags, row);
  std::vector<int> fb = g.fallback_results(fallback_count);
  for (int& x : fb)
    if (g.chance(5)) x = g.chance(50) ? 9 : -4;  // not a truth value: must stop
  CheckedFallbacks cf{&fb, fallback_count, {}};
  const bool with_callback = g.chance(90);
  const int r = sr_program_eval(prog, rb.data(), with_callback ? &CheckedFallbacks::fn : nullptr, &cf);
  ASSERT_GE(r, SR_FALSE);
  ASSERT_LE(r, SR_STOP);
  // Every fallback answer but the last was a truth value; the last one decides
  // whether the program stopped. Without a callback, only reaching a fallback stops.
  for (size_t k = 0; k < cf.calls.size(); k++) {
    const int answer = fb[cf.calls[k]];
    const bool truth = answer >= SR_FALSE && answer <= SR_NULL;
    if (k + 1 < cf.calls.size()) {
      ASSERT_TRUE(truth) << k;
    } else {
      ASSERT_EQ(r == SR_STOP, !truth) << "last fallback answered " << answer;
    }
  }
  if (with_callback && cf.calls.empty()) {
    ASSERT_NE(r, SR_STOP) << "stopped without a failing fallback";
  }

  uint16_t cols[Gen::kNatts + 2];
  const size_t n = sr_program_columns(prog, cols, Gen::kNatts + 2);
  ASSERT_LE(n, static_cast<size_t>(natts));
  for (size_t i = 0; i < n; i++) {
    ASSERT_GE(cols[i], 1);
    ASSERT_LE(cols[i], natts);
    if (i > 0) {
      ASSERT_LT(cols[i - 1], cols[i]);
    }
  }

  const size_t need = sr_program_disassemble(prog, nullptr, 0);
  ASSERT_GE(need, 1u);
  const size_t buflen = g.chance(50) ? need : 1 + g.below(static_cast<uint32_t>(need));
  std::unique_ptr<char[]> buf(new char[buflen]);
  ASSERT_EQ(sr_program_disassemble(prog, buf.get(), buflen), need);
  ASSERT_EQ(buf[buflen - 1 < need - 1 ? buflen - 1 : need - 1], '\0');
}

TEST(ProgramFuzz, MutatedProgramsValidateOrAreRejectedSafely) {
  constexpr int kMutations = 520000;
  Gen gen(0xF022u);
  std::vector<Specimen> corpus = Corpus(gen, 3000);
  // Hand-written programs covering every instruction, including big IN sets.
  {
    Tags tags = {SR_TAG_NONE, SR_TAG_INT, SR_TAG_FLOAT, SR_TAG_TEXT, SR_TAG_UUID, SR_TAG_BOOL, SR_TAG_BPCHAR,
                 SR_TAG_DATE, SR_TAG_NONE};
    std::vector<sr_value> ints, floats, strs;
    std::vector<std::string> str_store;
    for (int i = 0; i < 40; i++) ints.push_back(IntV(i * 5 - 100));
    for (int i = 0; i < 20; i++) floats.push_back(FloatV(i * 0.5 - 3));
    floats.push_back(FloatV(kNaN));
    for (int i = 0; i < 30; i++) str_store.push_back(std::string(static_cast<size_t>(i % 5), static_cast<char>('a' + i)));
    for (const std::string& s : str_store) strs.push_back(ConstBytes(s));
    const sr_value c1 = IntV(7), c2 = FloatV(-0.0);
    const std::string u(16, '\x11');
    const sr_value c3 = ConstBytes(u);
    const std::string bp = "xy";
    const sr_value c4 = ConstBytes(bp);
    Builder b;
    ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
    ASSERT_EQ(sr_builder_in(b, SR_TAG_INT, 1, ints.data(), ints.size(), 1, 0), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_in(b, SR_TAG_FLOAT, 2, floats.data(), floats.size(), 0, 1), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_begin(b, 0), SR_OK);
    ASSERT_EQ(sr_builder_in(b, SR_TAG_TEXT, 3, strs.data(), strs.size(), 0, 0), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_compare(b, SR_OP_LT, SR_TAG_INT, 1, &c1), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_compare(b, SR_OP_GE, SR_TAG_FLOAT, 2, &c2), SR_OK);
    ASSERT_EQ(sr_builder_not(b), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_compare(b, SR_OP_DISTINCT, SR_TAG_UUID, 4, &c3), SR_OK);
    ASSERT_EQ(sr_builder_test(b, SR_TEST_IS_NOT_TRUE), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_end(b), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_compare(b, SR_OP_NE, SR_TAG_BPCHAR, 6, &c4), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_compare_columns(b, SR_OP_LE, SR_TAG_DATE, 7, 7), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_bool_column(b, 5), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_null_test(b, 8, 0), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_like_prefix(b, 3, reinterpret_cast<const uint8_t*>("ab"), 2, 1), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_fallback(b, 1), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_constant(b, SR_NULL), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_end(b), SR_OK);
    Program p = b.finish(2);
    ASSERT_TRUE(p);
    ASSERT_EQ(Validate(p.vec(), tags, 8, 2).status, SR_OK);
    for (int i = 0; i < 200; i++) corpus.push_back({p.vec(), tags, 2});  // weight it
  }
  for (const Specimen& s : corpus)
    ASSERT_EQ(Validate(s.bytes, s.tags, Gen::kNatts, s.fallback_count).status, SR_OK);

  long accepted = 0, accepted_changed = 0;
  for (int it = 0; it < kMutations; it++) {
    const Specimen& sp = corpus[gen.below(static_cast<uint32_t>(corpus.size()))];
    std::vector<uint8_t> m = sp.bytes;
    Mutate(m, gen);
    if (gen.chance(30)) Mutate(m, gen);
    // Sometimes trust the (mutated) header's fallback count, so such mutants can pass.
    const uint8_t fc = (m.size() >= 8 && gen.chance(25)) ? m[7] : sp.fallback_count;
    std::unique_ptr<uint8_t[]> prog(new uint8_t[m.size()]);  // exactly sized
    if (!m.empty()) std::memcpy(prog.get(), m.data(), m.size());
    char err[120];
    err[0] = '\0';
    const sr_status st =
        sr_program_validate(prog.get(), m.size(), sp.tags.data(), Gen::kNatts, fc, err, sizeof err);
    if (st != SR_OK) {
      ASSERT_EQ(st, SR_INVALID_ARGUMENT);
      ASSERT_GT(std::strlen(err), 0u);
      continue;
    }
    accepted++;
    if (m != sp.bytes) accepted_changed++;
    ExerciseAccepted(prog.get(), sp.tags, fc, gen);
    if (HasFatalFailure()) {
      std::string hex;
      for (uint8_t c : m) {
        char h[4];
        std::snprintf(h, sizeof h, "%02x", c);
        hex += h;
      }
      FAIL() << "mutant " << it << ": " << hex;
    }
  }
  RecordProperty("accepted", static_cast<int>(accepted));
  RecordProperty("accepted_changed", static_cast<int>(accepted_changed));
  // The fuzz must reach eval and the listing often enough to mean something.
  EXPECT_GT(accepted_changed, 20000) << "accepted " << accepted;
}

}  // namespace
