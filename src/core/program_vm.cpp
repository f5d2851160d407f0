// The VM: runs a validated program on a row (sr_program_eval). It runs for
// every candidate shape of every change: its helpers and program_format.hpp's
// comparisons stay inline, in this translation unit.
#include "shape_router/program.h"

#include <cstring>

#include "program_format.hpp"

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace {

// SQL's three-valued logic on the VM's truth values.
inline uint8_t truth_of_compare(uint8_t op, int c) {
  switch (op) {
    case SR_OP_EQ:
      return c == 0;
    case SR_OP_NE:
    case SR_OP_DISTINCT:
      return c != 0;
    case SR_OP_LT:
      return c < 0;
    case SR_OP_LE:
      return c <= 0;
    case SR_OP_GT:
      return c > 0;
    default:  // SR_OP_GE
      return c >= 0;
  }
}

inline uint8_t and3(uint8_t a, uint8_t b) {
  if (a == SR_FALSE || b == SR_FALSE) return SR_FALSE;
  if (a == SR_NULL || b == SR_NULL) return SR_NULL;
  return SR_TRUE;
}

inline uint8_t or3(uint8_t a, uint8_t b) {
  if (a == SR_TRUE || b == SR_TRUE) return SR_TRUE;
  if (a == SR_NULL || b == SR_NULL) return SR_NULL;
  return SR_FALSE;
}

inline uint8_t not3(uint8_t a) { return a == SR_NULL ? SR_NULL : static_cast<uint8_t>(a ^ 1); }

inline uint8_t truth_test(uint8_t test, uint8_t a) {
  switch (test) {
    case SR_TEST_IS_TRUE:
      return a == SR_TRUE;
    case SR_TEST_IS_NOT_TRUE:
      return a != SR_TRUE;
    case SR_TEST_IS_FALSE:
      return a == SR_FALSE;
    case SR_TEST_IS_NOT_FALSE:
      return a != SR_FALSE;
    case SR_TEST_IS_UNKNOWN:
      return a == SR_NULL;
    default:  // SR_TEST_IS_NOT_UNKNOWN
      return a != SR_NULL;
  }
}

// IN-set layout at set: u16 count, then 8-byte entries (Int/Float) or u16
// offsets (relative to set) of u16-length-prefixed strings, all ascending.
bool set_contains(Category cat, const uint8_t* set, const sr_value& v) {
  size_t lo = 0, hi = read_u16(set);
  const uint8_t* entries = set + 2;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c;
    if (cat == Category::Bytes) {
      const uint8_t* s = set + read_u16(entries + 2 * mid);
      c = compare_bytes(v.v.bytes, v.len, s + 2, read_u16(s));
    } else {
      c = compare_value_const(cat, v, entries + 8 * mid);
    }
    if (c == 0) return true;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return false;
}

// Whether the set's entry i is one of items[0..n).
bool set_entry_in(Category cat, const uint8_t* set, size_t i, const sr_value* items, size_t n) {
  for (size_t k = 0; k < n; k++) {
    int c;
    if (cat == Category::Bytes) {
      const uint8_t* s = set + read_u16(set + 2 + 2 * i);
      c = compare_bytes(items[k].v.bytes, items[k].len, s + 2, read_u16(s));
    } else {
      c = compare_value_const(cat, items[k], set + 2 + 8 * i);
    }
    if (c == 0) return true;
  }
  return false;
}

// An array operator on a non-NULL array value (its non-NULL elements, and
// whether it had a NULL one) and a constant set, as PostgreSQL's array
// functions decide it: NULL elements never match.
uint8_t array_truth(uint8_t flags, const uint8_t* set, const sr_value& array) {
  const Category cat = category_of(flags >> 3);
  const bool set_null = flags & 4;
  const sr_value* items = reinterpret_cast<const sr_value*>(array.v.bytes);
  const size_t n = array.len, count = read_u16(set);
  switch (static_cast<sr_array_op>(flags & 3)) {
    case SR_ARRAY_ANY_EQ:  // c = ANY(arr): NULL when no element is c and one is NULL
      for (size_t k = 0; k < n; k++)
        if (set_contains(cat, set, items[k])) return SR_TRUE;
      return array.has_null_element ? SR_NULL : SR_FALSE;
    case SR_ARRAY_OVERLAPS:  // arr && set
      for (size_t k = 0; k < n; k++)
        if (set_contains(cat, set, items[k])) return SR_TRUE;
      return SR_FALSE;
    case SR_ARRAY_CONTAINS:  // arr @> set: a NULL in the set is never found
      if (set_null) return SR_FALSE;
      for (size_t i = 0; i < count; i++)
        if (!set_entry_in(cat, set, i, items, n)) return SR_FALSE;
      return SR_TRUE;
    default:  // SR_ARRAY_CONTAINED_BY, arr <@ set: nor a NULL element of arr
      if (array.has_null_element) return SR_FALSE;
      for (size_t k = 0; k < n; k++)
        if (!set_contains(cat, set, items[k])) return SR_FALSE;
      return SR_TRUE;
  }
}

}  // namespace

extern "C" {

int sr_program_eval(const uint8_t* program, const sr_value* row, sr_fallback_fn fallback,
                    void* fallback_arg) noexcept {
  const size_t code_len = read_u16(program + 2);
  const uint8_t* code = program + kHeaderSize;
  const uint8_t* pool = code + code_len;
  uint8_t stack[kMaxStack];
  int sp = 0;  // number of values on the stack
  size_t pos = 0;

  while (pos < code_len) {
    const uint8_t* in = code + pos;
    switch (in[0]) {
      case OP_CMP: {
        const uint8_t op = in[1] & 7;
        const sr_value& v = row[read_u16(in + 2)];
        if (v.is_null)
          stack[sp++] = op == SR_OP_DISTINCT ? SR_TRUE : SR_NULL;
        else
          stack[sp++] = truth_of_compare(op, compare_value_const(category_of(in[1] >> 3), v, pool + read_u16(in + 4)));
        pos += 6;
        break;
      }
      case OP_CMP_COLS: {
        const uint8_t op = in[1] & 7;
        const sr_value& a = row[read_u16(in + 2)];
        const sr_value& b = row[read_u16(in + 4)];
        if (a.is_null || b.is_null)
          stack[sp++] = op == SR_OP_DISTINCT ? (a.is_null != b.is_null ? SR_TRUE : SR_FALSE) : SR_NULL;
        else
          stack[sp++] = truth_of_compare(op, compare_values(category_of(in[1] >> 3), a, b));
        pos += 6;
        break;
      }
      case OP_ARRAY: {
        const sr_value& v = row[read_u16(in + 2)];
        stack[sp++] = v.is_null ? SR_NULL : array_truth(in[1], pool + read_u16(in + 4), v);
        pos += 6;
        break;
      }
      case OP_IN: {
        const uint8_t flags = in[1];
        const bool negate = flags & 1, has_null = flags & 2;
        const uint8_t* set = pool + read_u16(in + 4);
        const sr_value& v = row[read_u16(in + 2)];
        uint8_t result;
        if (read_u16(set) == 0 && !has_null)
          result = negate ? SR_TRUE : SR_FALSE;  // x = ANY('{}') is false even for NULL x
        else if (v.is_null)
          result = SR_NULL;
        else if (set_contains(category_of(flags >> 2), set, v))
          result = negate ? SR_FALSE : SR_TRUE;
        else
          result = has_null ? SR_NULL : (negate ? SR_TRUE : SR_FALSE);
        stack[sp++] = result;
        pos += 6;
        break;
      }
      case OP_NULL_TEST:
        stack[sp++] = (row[read_u16(in + 2)].is_null != 0) == (in[1] != 0) ? SR_TRUE : SR_FALSE;
        pos += 4;
        break;
      case OP_BOOL_COL: {
        const sr_value& v = row[read_u16(in + 1)];
        stack[sp++] = v.is_null ? SR_NULL : (v.v.i != 0 ? SR_TRUE : SR_FALSE);
        pos += 3;
        break;
      }
      case OP_CONST:
        stack[sp++] = in[1];
        pos += 2;
        break;
      case OP_LIKE_PREFIX: {
        const sr_value& v = row[read_u16(in + 2)];
        const uint8_t* c = pool + read_u16(in + 4);
        const uint16_t plen = read_u16(c);
        if (v.is_null)
          stack[sp++] = SR_NULL;
        else {
          bool match = v.len >= plen && (plen == 0 || std::memcmp(v.v.bytes, c + 2, plen) == 0);
          stack[sp++] = (match != (in[1] != 0)) ? SR_TRUE : SR_FALSE;
        }
        pos += 6;
        break;
      }
      case OP_FALLBACK: {
        int r = fallback != nullptr ? fallback(fallback_arg, in[1]) : SR_STOP;
        if (r == SR_STOP || r < SR_FALSE || r > SR_NULL) return SR_STOP;
        stack[sp++] = static_cast<uint8_t>(r);
        pos += 2;
        break;
      }
      case OP_NOT:
        stack[sp - 1] = not3(stack[sp - 1]);
        pos += 1;
        break;
      case OP_TEST:
        stack[sp - 1] = truth_test(in[1], stack[sp - 1]) ? SR_TRUE : SR_FALSE;
        pos += 2;
        break;
      case OP_AND:
        sp--;
        stack[sp - 1] = and3(stack[sp - 1], stack[sp]);
        pos += 1;
        break;
      case OP_OR:
        sp--;
        stack[sp - 1] = or3(stack[sp - 1], stack[sp]);
        pos += 1;
        break;
      case OP_JUMP_IF_FALSE:
        pos += 3 + (stack[sp - 1] == SR_FALSE ? read_u16(in + 1) : 0);
        break;
      case OP_JUMP_IF_TRUE:
        pos += 3 + (stack[sp - 1] == SR_TRUE ? read_u16(in + 1) : 0);
        break;
      default:
        return SR_STOP;  // unreachable for a validated program
    }
  }
  return stack[0];
}

}  // extern "C"
