// The program format's layout and the value comparisons the builder, the
// validator, the VM and the disassembler share (internal to the core). The
// format itself is described in include/shape_router/program.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "shape_router/program.h"

namespace {

constexpr uint8_t kMagic = 'S';
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderSize = 8;
// Truth values a program may hold at once: the VM's stack is a fixed array.
constexpr int kMaxStack = 32;

// The opcode byte, then the operands (u16 little-endian) noted beside each.
enum Opcode : uint8_t {
  OP_CMP = 1,          // (tag<<3 | op), u16 attnum, u16 const_off
  OP_CMP_COLS = 2,     // (tag<<3 | op), u16 left, u16 right
  OP_IN = 3,           // (tag<<2 | has_null<<1 | negate), u16 attnum, u16 set_off
  OP_NULL_TEST = 4,    // u8 is_null, u16 attnum
  OP_BOOL_COL = 5,     // u16 attnum
  OP_CONST = 6,        // u8 truth
  OP_LIKE_PREFIX = 7,  // u8 negate, u16 attnum, u16 const_off
  OP_FALLBACK = 8,     // u8 index
  OP_NOT = 9,
  OP_TEST = 10,        // u8 test
  OP_AND = 11,
  OP_OR = 12,
  OP_JUMP_IF_FALSE = 13,  // u16 forward offset from the end of the instruction; top kept
  OP_JUMP_IF_TRUE = 14,
  OP_ARRAY = 15,       // (tag<<3 | has_null<<2 | kind), u16 attnum, u16 set_off: an array column against a set
};

// Bytes of an instruction, operands included; 0 for an unknown opcode.
inline size_t instruction_length(uint8_t opcode) {
  switch (opcode) {
    case OP_CMP:
    case OP_CMP_COLS:
    case OP_IN:
    case OP_LIKE_PREFIX:
    case OP_ARRAY:
      return 6;
    case OP_NULL_TEST:
      return 4;
    case OP_BOOL_COL:
    case OP_JUMP_IF_FALSE:
    case OP_JUMP_IF_TRUE:
      return 3;
    case OP_CONST:
    case OP_FALLBACK:
    case OP_TEST:
      return 2;
    case OP_NOT:
    case OP_AND:
    case OP_OR:
      return 1;
    default:
      return 0;
  }
}

inline uint16_t read_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline int64_t read_i64(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline double read_f64(const uint8_t* p) {
  double v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// How the values of a tag are stored and compared: int64, double or bytes.
enum class Category { Int, Float, Bytes };

inline Category category_of(uint8_t tag) {
  switch (tag) {
    case SR_TAG_FLOAT:
      return Category::Float;
    case SR_TAG_TEXT:
    case SR_TAG_BPCHAR:
    case SR_TAG_UUID:
    case SR_TAG_NUMERIC:
      return Category::Bytes;
    default:
      return Category::Int;
  }
}

inline bool tag_is_native(uint8_t tag) { return tag > SR_TAG_NONE && tag < SR_TAG_COUNT; }

// PostgreSQL's float order: NaN equals NaN and sorts above everything; -0 = 0.
inline int compare_float(double a, double b) {
  if (std::isnan(a)) return std::isnan(b) ? 0 : 1;
  if (std::isnan(b)) return -1;
  return a < b ? -1 : (a > b ? 1 : 0);
}

inline int compare_bytes(const uint8_t* a, uint32_t alen, const uint8_t* b, uint32_t blen) {
  const uint32_t common = std::min(alen, blen);
  int c = common == 0 ? 0 : std::memcmp(a, b, common);  // memcmp wants valid pointers even for 0 bytes
  if (c != 0) return c < 0 ? -1 : 1;
  return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

inline int compare_int(int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

inline int compare_value_const(Category cat, const sr_value& v, const uint8_t* c) {
  switch (cat) {
    case Category::Int:
      return compare_int(v.v.i, read_i64(c));
    case Category::Float:
      return compare_float(v.v.f, read_f64(c));
    case Category::Bytes:
      return compare_bytes(v.v.bytes, v.len, c + 2, read_u16(c));
  }
  return 0;
}

inline int compare_values(Category cat, const sr_value& a, const sr_value& b) {
  switch (cat) {
    case Category::Int:
      return compare_int(a.v.i, b.v.i);
    case Category::Float:
      return compare_float(a.v.f, b.v.f);
    case Category::Bytes:
      return compare_bytes(a.v.bytes, a.len, b.v.bytes, b.len);
  }
  return 0;
}

}  // namespace
