// The VM's operations on truth values and constant sets, shared by the
// per-shape VM (program_vm.cpp) and the form lane (form_lane.cpp), which runs
// one program over many shapes' constants. Inline, in each translation unit:
// both run for every candidate of every change (internal to the core).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "program_format.hpp"

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
inline bool set_contains(Category cat, const uint8_t* set, const sr_value& v) {
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
inline bool set_entry_in(Category cat, const uint8_t* set, size_t i, const sr_value* items, size_t n) {
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
inline uint8_t array_truth(uint8_t flags, const uint8_t* set, const sr_value& array) {
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

// OP_CMP_COLS's truth (flags: tag<<3 | op) for columns a and b.
inline uint8_t columns_truth(uint8_t flags, const sr_value& a, const sr_value& b) {
  const uint8_t op = flags & 7;
  if (a.is_null || b.is_null) return op == SR_OP_DISTINCT ? (a.is_null != b.is_null ? SR_TRUE : SR_FALSE) : SR_NULL;
  return truth_of_compare(op, compare_values(category_of(flags >> 3), a, b));
}

// OP_IN's truth for value v (flags: tag<<2 | has_null<<1 | negate) against set.
inline uint8_t in_truth(uint8_t flags, const uint8_t* set, const sr_value& v) {
  const bool negate = flags & 1, has_null = flags & 2;
  if (read_u16(set) == 0 && !has_null) return negate ? SR_TRUE : SR_FALSE;  // x = ANY('{}') is false even for NULL x
  if (v.is_null) return SR_NULL;
  if (set_contains(category_of(flags >> 2), set, v)) return negate ? SR_FALSE : SR_TRUE;
  return has_null ? SR_NULL : (negate ? SR_TRUE : SR_FALSE);
}

// OP_LIKE_PREFIX's truth for text v against the u16-length-prefixed prefix c.
inline uint8_t like_prefix_truth(bool negate, const uint8_t* c, const sr_value& v) {
  if (v.is_null) return SR_NULL;
  const uint16_t plen = read_u16(c);
  const bool match = v.len >= plen && (plen == 0 || std::memcmp(v.v.bytes, c + 2, plen) == 0);
  return match != negate ? SR_TRUE : SR_FALSE;
}

}  // namespace
