// Loading a stored program: the checks that make it safe to run against a
// relation (sr_program_check), and what a loader reads from an accepted one
// (its columns, fallback count and the place of its constants).
#include "shape_router/program.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "program_format.hpp"

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace {

// sr_program_check's body: SR_OK, or SR_INVALID_ARGUMENT with why in reason and errbuf.
sr_status check_program(const uint8_t* program, size_t len, const uint8_t* column_tags, uint16_t natts,
                        uint8_t fallback_count, char* errbuf, size_t errlen, sr_program_fit& reason) noexcept {
  auto fail = [&](const char* what, size_t pos) {
    if (errbuf != nullptr && errlen > 0) std::snprintf(errbuf, errlen, "invalid program: %s at byte %zu", what, pos);
    return SR_INVALID_ARGUMENT;
  };
  auto mismatch = [&](size_t pos) {
    reason = SR_PROGRAM_COLUMN_MISMATCH;
    return fail("column does not match the relation", pos);
  };
  if (len < kHeaderSize) return fail("shorter than its header", 0);
  if (program[0] != kMagic || program[1] != kVersion) return fail("unknown format or version", 0);
  const size_t code_len = read_u16(program + 2);
  const size_t const_len = read_u16(program + 4);
  const int max_stack = program[6];
  if (kHeaderSize + code_len + const_len != len) return fail("length does not match its header", 2);
  if (max_stack < 1 || max_stack > kMaxStack) return fail("stack size out of range", 6);
  if (program[7] != fallback_count) return fail("fallback count does not match the stored fallbacks", 7);
  const uint8_t* code = program + kHeaderSize;
  const uint8_t* pool = code + code_len;

  auto column_ok = [&](uint16_t attnum, uint8_t tag) {
    return attnum >= 1 && attnum <= natts && column_tags[attnum] == tag;
  };
  auto scalar_ok = [&](Category cat, size_t off) {
    if (cat == Category::Bytes) return off + 2 <= const_len && off + 2 + read_u16(pool + off) <= const_len;
    return off + 8 <= const_len;
  };
  auto set_ok = [&](Category cat, size_t off) {
    if (off + 2 > const_len) return false;
    size_t count = read_u16(pool + off);
    if (cat != Category::Bytes) {
      // Strictly ascending, or the binary search in the VM is wrong.
      if (off + 2 + 8 * count > const_len) return false;
      const uint8_t* entries = pool + off + 2;
      for (size_t i = 1; i < count; i++) {
        const uint8_t* prev = entries + 8 * (i - 1);
        const uint8_t* cur = entries + 8 * i;
        int c = cat == Category::Int ? compare_int(read_i64(prev), read_i64(cur))
                                     : compare_float(read_f64(prev), read_f64(cur));
        if (c >= 0) return false;
      }
      return true;
    }
    if (off + 2 + 2 * count > const_len) return false;
    const uint8_t* prev = nullptr;
    for (size_t i = 0; i < count; i++) {
      size_t s = off + read_u16(pool + off + 2 + 2 * i);
      if (s + 2 > const_len || s + 2 + read_u16(pool + s) > const_len) return false;
      const uint8_t* cur = pool + s;
      if (prev != nullptr && compare_bytes(prev + 2, read_u16(prev), cur + 2, read_u16(cur)) >= 0) return false;
      prev = cur;
    }
    return true;
  };

  std::vector<int16_t> expected(code_len + 1, -1);  // stack height required at jump targets
  std::vector<bool> boundary(code_len + 1, false);
  int height = 0;
  size_t pos = 0;
  while (pos < code_len) {
    boundary[pos] = true;
    if (expected[pos] >= 0 && expected[pos] != height) return fail("inconsistent stack at jump target", pos);
    const uint8_t opcode = code[pos];
    const size_t ilen = instruction_length(opcode);
    if (ilen == 0) return fail("unknown opcode", pos);
    if (pos + ilen > code_len) return fail("truncated instruction", pos);
    const uint8_t* in = code + pos;
    int effect = 0;
    switch (opcode) {
      case OP_CMP:
      case OP_CMP_COLS: {
        uint8_t tag = in[1] >> 3, op = in[1] & 7;
        if (!tag_is_native(tag) || op >= SR_OP_COUNT) return fail("bad comparison", pos);
        if (!column_ok(read_u16(in + 2), tag)) return mismatch(pos);
        if (opcode == OP_CMP ? !scalar_ok(category_of(tag), read_u16(in + 4))
                             : !column_ok(read_u16(in + 4), tag))
          return opcode == OP_CMP ? fail("constant out of bounds", pos) : mismatch(pos);
        effect = 1;
        break;
      }
      case OP_IN: {
        uint8_t tag = in[1] >> 2;
        if (!tag_is_native(tag)) return fail("bad IN", pos);
        if (!column_ok(read_u16(in + 2), tag)) return mismatch(pos);
        if (!set_ok(category_of(tag), read_u16(in + 4))) return fail("IN set malformed", pos);
        effect = 1;
        break;
      }
      case OP_ARRAY: {
        const uint8_t tag = in[1] >> 3;
        if (!tag_is_native(tag) || (in[1] & 3) >= SR_ARRAY_OP_COUNT) return fail("bad array operator", pos);
        if (!column_ok(read_u16(in + 2), static_cast<uint8_t>(tag | SR_TAG_ELEMENT_FLAG)))
          return mismatch(pos);
        if (!set_ok(category_of(tag), read_u16(in + 4))) return fail("array set malformed", pos);
        effect = 1;
        break;
      }
      case OP_NULL_TEST: {
        uint16_t attnum = read_u16(in + 2);
        if (in[1] > 1 || attnum < 1 || attnum > natts) return fail("bad NULL test", pos);
        effect = 1;
        break;
      }
      case OP_BOOL_COL:
        if (!column_ok(read_u16(in + 1), SR_TAG_BOOL)) return mismatch(pos);
        effect = 1;
        break;
      case OP_CONST:
        if (in[1] > SR_NULL) return fail("bad constant", pos);
        effect = 1;
        break;
      case OP_LIKE_PREFIX:
        if (in[1] > 1 || !column_ok(read_u16(in + 2), SR_TAG_TEXT)) return fail("bad LIKE", pos);
        if (!scalar_ok(Category::Bytes, read_u16(in + 4))) return fail("constant out of bounds", pos);
        effect = 1;
        break;
      case OP_FALLBACK:
        if (in[1] >= fallback_count) return fail("fallback index out of range", pos);
        effect = 1;
        break;
      case OP_NOT:
        if (height < 1) return fail("stack underflow", pos);
        break;
      case OP_TEST:
        if (height < 1 || in[1] >= SR_TEST_COUNT) return fail("bad truth test", pos);
        break;
      case OP_AND:
      case OP_OR:
        if (height < 2) return fail("stack underflow", pos);
        effect = -1;
        break;
      case OP_JUMP_IF_FALSE:
      case OP_JUMP_IF_TRUE: {
        if (height < 1) return fail("stack underflow", pos);
        size_t target = pos + ilen + read_u16(in + 1);
        if (target > code_len) return fail("jump out of range", pos);
        if (expected[target] >= 0 && expected[target] != height) return fail("inconsistent stack at jump target", pos);
        expected[target] = static_cast<int16_t>(height);
        break;
      }
    }
    height += effect;
    if (height > max_stack) return fail("stack deeper than declared", pos);
    pos += ilen;
  }
  boundary[code_len] = true;
  if (expected[code_len] >= 0 && expected[code_len] != height) return fail("inconsistent stack at end", code_len);
  for (size_t i = 0; i <= code_len; i++)
    if (expected[i] >= 0 && !boundary[i]) return fail("jump into an instruction", i);
  if (height != 1) return fail("program does not leave exactly one value", code_len);
  return SR_OK;
}

}  // namespace

extern "C" {

sr_program_fit sr_program_check(const uint8_t* program, size_t len, const uint8_t* column_tags, uint16_t natts,
                                uint8_t fallback_count, char* errbuf, size_t errlen) noexcept {
  sr_program_fit reason = SR_PROGRAM_MALFORMED;
  return check_program(program, len, column_tags, natts, fallback_count, errbuf, errlen, reason) == SR_OK
             ? SR_PROGRAM_FITS
             : reason;
}

sr_status sr_program_validate(const uint8_t* program, size_t len, const uint8_t* column_tags, uint16_t natts,
                              uint8_t fallback_count, char* errbuf, size_t errlen) noexcept {
  return sr_program_check(program, len, column_tags, natts, fallback_count, errbuf, errlen) == SR_PROGRAM_FITS
             ? SR_OK
             : SR_INVALID_ARGUMENT;
}

uint8_t sr_program_fallback_count(const uint8_t* program) noexcept { return program[7]; }

sr_status sr_program_constants(const uint8_t* program, size_t len, size_t* offset, size_t* const_len) noexcept {
  if (program == nullptr || len < kHeaderSize) return SR_INVALID_ARGUMENT;
  const size_t code_len = read_u16(program + 2), pool_len = read_u16(program + 4);
  if (kHeaderSize + code_len + pool_len != len) return SR_INVALID_ARGUMENT;
  *offset = kHeaderSize + code_len;
  *const_len = pool_len;
  return SR_OK;
}

size_t sr_program_columns(const uint8_t* program, uint16_t* attnums, size_t max) noexcept {
  const size_t code_len = read_u16(program + 2);
  const uint8_t* code = program + kHeaderSize;
  uint16_t found[64];
  size_t count = 0;
  std::vector<uint16_t> overflow;
  auto note = [&](uint16_t a) {
    if (count < 64)
      found[count++] = a;
    else
      overflow.push_back(a);
  };
  for (size_t pos = 0; pos < code_len; pos += instruction_length(code[pos])) {
    const uint8_t* in = code + pos;
    switch (in[0]) {
      case OP_CMP:
      case OP_IN:
      case OP_NULL_TEST:
      case OP_LIKE_PREFIX:
      case OP_ARRAY:
        note(read_u16(in + 2));
        break;
      case OP_CMP_COLS:
        note(read_u16(in + 2));
        note(read_u16(in + 4));
        break;
      case OP_BOOL_COL:
        note(read_u16(in + 1));
        break;
      default:
        break;
    }
  }
  std::vector<uint16_t> all(found, found + count);
  all.insert(all.end(), overflow.begin(), overflow.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  for (size_t i = 0; i < all.size() && i < max; i++) attnums[i] = all[i];
  return all.size();
}

}  // extern "C"
