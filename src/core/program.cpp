// Compiled shape predicates: builder, validator, VM and disassembler.
// Format and semantics: include/shape_router/program.h.
#include "shape_router/program.h"
#include "shape_router/guarded.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace {

constexpr uint8_t kMagic = 'S';
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderSize = 8;
constexpr int kMaxStack = 32;

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

size_t instruction_length(uint8_t opcode) {
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

enum class Category { Int, Float, Bytes };

Category category_of(uint8_t tag) {
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

bool tag_is_native(uint8_t tag) { return tag > SR_TAG_NONE && tag < SR_TAG_COUNT; }

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

std::string quote_bytes(const uint8_t* p, size_t len, uint8_t tag) {
  std::string out;
  if (tag == SR_TAG_UUID) {
    static const char* hex = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
      if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
      out += hex[p[i] >> 4];
      out += hex[p[i] & 15];
    }
    return "'" + out + "'";
  }
  out += '\'';
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '\'') out += '\'';
    out += static_cast<char>(p[i]);
  }
  out += '\'';
  return out;
}

const char* tag_name(uint8_t tag) {
  static const char* names[] = {"none", "int", "bool", "date", "timestamp", "timestamptz",
                                "float", "text", "bpchar", "uuid", "numeric"};
  return tag < SR_TAG_COUNT ? names[tag] : "?";
}

const char* op_name(uint8_t op) {
  static const char* names[] = {"=", "<>", "<", "<=", ">", ">=", "IS DISTINCT FROM"};
  return op < SR_OP_COUNT ? names[op] : "?";
}

// Decimal encoding (sr_encode_decimal): a class byte, then for finite non-zero
// values a 4-byte big-endian biased exponent and the significant digits.
constexpr uint8_t kDecNegInf = 0x01, kDecNegative = 0x40, kDecZero = 0x80, kDecPositive = 0xC0,
                  kDecPosInf = 0xFE, kDecNaN = 0xFF;
constexpr uint32_t kExponentBias = 0x80000000u;

// Back to text, for listings.
std::string decode_decimal(const uint8_t* p, size_t len) {
  if (len == 0) return "?";
  switch (p[0]) {
    case kDecNegInf: return "-Infinity";
    case kDecZero: return "0";
    case kDecPosInf: return "Infinity";
    case kDecNaN: return "NaN";
    default: break;
  }
  if (len < 6) return "?";
  const bool negative = p[0] == kDecNegative;
  uint32_t biased = (uint32_t(p[1]) << 24) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 8) | p[4];
  if (negative) biased = ~biased;
  const int64_t exponent = int64_t(biased) - int64_t(kExponentBias);
  std::string digits;
  for (size_t i = 5; i < len; i++) {
    uint8_t d = negative ? uint8_t(0xFF - p[i]) : p[i];
    if (negative && p[i] == 0xFF) break;  // terminator
    digits += char(d);
  }
  // value = 0.digits x 10^exponent
  std::string out = negative ? "-" : "";
  if (exponent <= 0) {
    out += "0." + std::string(size_t(-exponent), '0') + digits;
  } else if (size_t(exponent) >= digits.size()) {
    out += digits + std::string(size_t(exponent) - digits.size(), '0');
  } else {
    out += digits.substr(0, size_t(exponent)) + "." + digits.substr(size_t(exponent));
  }
  return out;
}

std::string format_scalar(uint8_t tag, const uint8_t* c) {
  char buf[64];
  switch (category_of(tag)) {
    case Category::Int:
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(read_i64(c)));
      return buf;
    case Category::Float:
      std::snprintf(buf, sizeof buf, "%.17g", read_f64(c));
      return buf;
    case Category::Bytes:
      if (tag == SR_TAG_NUMERIC) return decode_decimal(c + 2, read_u16(c));
      return quote_bytes(c + 2, read_u16(c), tag);
  }
  return "?";
}

}  // namespace

// ---------------------------------------------------------------- builder

struct sr_program_builder {
  struct Group {
    bool is_and;
    int base_depth;             // stack height when the group began
    int terms = 0;
    std::vector<size_t> jumps;  // positions of u16 offsets to patch
  };
  std::vector<uint8_t> code;
  std::vector<uint8_t> consts;
  std::vector<Group> groups;
  int depth = 0;
  int max_depth = 0;

  void byte(uint8_t b) { code.push_back(b); }
  void u16(uint16_t v) {
    code.push_back(static_cast<uint8_t>(v & 0xff));
    code.push_back(static_cast<uint8_t>(v >> 8));
  }
  void push_truth() {
    if (++depth > max_depth) max_depth = depth;
    if (depth > kMaxStack) throw std::invalid_argument("expression nests too deeply");
  }
  void pop_truth(int n) {
    if (depth < n) throw std::invalid_argument("stack underflow");
    depth -= n;
  }
  uint16_t pool_offset() const {
    if (consts.size() > 0xffff) throw std::invalid_argument("constants too large");
    return static_cast<uint16_t>(consts.size());
  }
  void pool_u16(uint16_t v) {
    consts.push_back(static_cast<uint8_t>(v & 0xff));
    consts.push_back(static_cast<uint8_t>(v >> 8));
  }
  void pool_scalar(Category cat, const sr_value& v) {
    uint8_t raw[8];
    if (cat == Category::Int)
      std::memcpy(raw, &v.v.i, 8);
    else
      std::memcpy(raw, &v.v.f, 8);
    consts.insert(consts.end(), raw, raw + 8);
  }
  void pool_bytes(const uint8_t* p, size_t len) {
    if (len > 0xffff) throw std::invalid_argument("constant string too long");
    pool_u16(static_cast<uint16_t>(len));
    consts.insert(consts.end(), p, p + len);
  }
  void check_attnum(uint16_t attnum) const {
    if (attnum == 0) throw std::invalid_argument("column 0");
  }
};

using shape_router::guarded;

namespace {

void check_tag(uint8_t tag) {
  if (!tag_is_native(tag)) throw std::invalid_argument("type tag");
}

}  // namespace

extern "C" {

sr_status sr_builder_create(sr_program_builder** out) noexcept {
  *out = nullptr;
  return guarded([&] { *out = new sr_program_builder(); });
}

void sr_builder_destroy(sr_program_builder* builder) noexcept { delete builder; }

sr_status sr_builder_compare(sr_program_builder* b, sr_compare_op op, sr_type_tag tag, uint16_t attnum,
                             const sr_value* constant) noexcept {
  return guarded([&] {
    check_tag(tag);
    b->check_attnum(attnum);
    if (op >= SR_OP_COUNT || constant->is_null) throw std::invalid_argument("comparison");
    uint16_t off = b->pool_offset();
    Category cat = category_of(tag);
    if (cat == Category::Bytes)
      b->pool_bytes(constant->v.bytes, constant->len);
    else
      b->pool_scalar(cat, *constant);
    b->byte(OP_CMP);
    b->byte(static_cast<uint8_t>(tag << 3 | op));
    b->u16(attnum);
    b->u16(off);
    b->push_truth();
  });
}

sr_status sr_builder_compare_columns(sr_program_builder* b, sr_compare_op op, sr_type_tag tag, uint16_t left,
                                     uint16_t right) noexcept {
  return guarded([&] {
    check_tag(tag);
    b->check_attnum(left);
    b->check_attnum(right);
    if (op >= SR_OP_COUNT) throw std::invalid_argument("comparison");
    b->byte(OP_CMP_COLS);
    b->byte(static_cast<uint8_t>(tag << 3 | op));
    b->u16(left);
    b->u16(right);
    b->push_truth();
  });
}

namespace {
// Pools an IN set of values (sorted, without duplicates) and returns its offset.
uint16_t pool_set(sr_program_builder* b, Category cat, const sr_value* values, size_t count) {
  std::vector<sr_value> sorted(values, values + count);
  for (const sr_value& v : sorted)
    if (v.is_null) throw std::invalid_argument("NULL in IN set: pass has_null instead");
  std::sort(sorted.begin(), sorted.end(),
            [&](const sr_value& x, const sr_value& y) { return compare_values(cat, x, y) < 0; });
  sorted.erase(std::unique(sorted.begin(), sorted.end(),
                           [&](const sr_value& x, const sr_value& y) { return compare_values(cat, x, y) == 0; }),
               sorted.end());
  if (sorted.size() > 0xffff) throw std::invalid_argument("IN list too long");
  uint16_t set = b->pool_offset();
  b->pool_u16(static_cast<uint16_t>(sorted.size()));
  if (cat == Category::Bytes) {
    size_t table = b->consts.size();
    b->consts.resize(table + 2 * sorted.size());
    for (size_t i = 0; i < sorted.size(); i++) {
      size_t rel = b->consts.size() - set;
      if (rel > 0xffff) throw std::invalid_argument("IN list too large");
      b->consts[table + 2 * i] = static_cast<uint8_t>(rel & 0xff);
      b->consts[table + 2 * i + 1] = static_cast<uint8_t>(rel >> 8);
      b->pool_bytes(sorted[i].v.bytes, sorted[i].len);
    }
  } else {
    for (const sr_value& v : sorted) b->pool_scalar(cat, v);
  }
  return set;
}
}  // namespace

sr_status sr_builder_in(sr_program_builder* b, sr_type_tag tag, uint16_t attnum, const sr_value* values,
                        size_t count, int has_null, int negate) noexcept {
  return guarded([&] {
    check_tag(tag);
    b->check_attnum(attnum);
    const uint16_t set = pool_set(b, category_of(tag), values, count);
    b->byte(OP_IN);
    b->byte(static_cast<uint8_t>(tag << 2 | (has_null ? 2 : 0) | (negate ? 1 : 0)));
    b->u16(attnum);
    b->u16(set);
    b->push_truth();
  });
}

sr_status sr_builder_array(sr_program_builder* b, sr_array_op kind, sr_type_tag tag, uint16_t attnum,
                           const sr_value* values, size_t count, int has_null) noexcept {
  return guarded([&] {
    check_tag(tag);
    b->check_attnum(attnum);
    if (kind < 0 || kind >= SR_ARRAY_OP_COUNT) throw std::invalid_argument("array operator");
    const uint16_t set = pool_set(b, category_of(tag), values, count);
    b->byte(OP_ARRAY);
    b->byte(static_cast<uint8_t>(tag << 3 | (has_null ? 4 : 0) | kind));
    b->u16(attnum);
    b->u16(set);
    b->push_truth();
  });
}

sr_status sr_builder_null_test(sr_program_builder* b, uint16_t attnum, int is_null) noexcept {
  return guarded([&] {
    b->check_attnum(attnum);
    b->byte(OP_NULL_TEST);
    b->byte(is_null ? 1 : 0);
    b->u16(attnum);
    b->push_truth();
  });
}

sr_status sr_builder_bool_column(sr_program_builder* b, uint16_t attnum) noexcept {
  return guarded([&] {
    b->check_attnum(attnum);
    b->byte(OP_BOOL_COL);
    b->u16(attnum);
    b->push_truth();
  });
}

sr_status sr_builder_constant(sr_program_builder* b, int truth) noexcept {
  return guarded([&] {
    if (truth < SR_FALSE || truth > SR_NULL) throw std::invalid_argument("truth value");
    b->byte(OP_CONST);
    b->byte(static_cast<uint8_t>(truth));
    b->push_truth();
  });
}

sr_status sr_builder_like_prefix(sr_program_builder* b, uint16_t attnum, const uint8_t* prefix, size_t len,
                                 int negate) noexcept {
  return guarded([&] {
    b->check_attnum(attnum);
    uint16_t off = b->pool_offset();
    b->pool_bytes(prefix, len);
    b->byte(OP_LIKE_PREFIX);
    b->byte(negate ? 1 : 0);
    b->u16(attnum);
    b->u16(off);
    b->push_truth();
  });
}

sr_status sr_builder_fallback(sr_program_builder* b, uint16_t index) noexcept {
  return guarded([&] {
    if (index > 0xff) throw std::invalid_argument("too many fallbacks");
    b->byte(OP_FALLBACK);
    b->byte(static_cast<uint8_t>(index));
    b->push_truth();
  });
}

sr_status sr_builder_not(sr_program_builder* b) noexcept {
  return guarded([&] {
    if (b->depth < 1) throw std::invalid_argument("NOT of nothing");
    b->byte(OP_NOT);
  });
}

sr_status sr_builder_test(sr_program_builder* b, sr_truth_test test) noexcept {
  return guarded([&] {
    if (b->depth < 1 || test >= SR_TEST_COUNT) throw std::invalid_argument("truth test");
    b->byte(OP_TEST);
    b->byte(static_cast<uint8_t>(test));
  });
}

sr_status sr_builder_group_begin(sr_program_builder* b, int is_and) noexcept {
  return guarded([&] { b->groups.push_back(sr_program_builder::Group{is_and != 0, b->depth, 0, {}}); });
}

sr_status sr_builder_group_term_done(sr_program_builder* b) noexcept {
  return guarded([&] {
    if (b->groups.empty()) throw std::invalid_argument("no group");
    sr_program_builder::Group& g = b->groups.back();
    // The term just compiled pushed one value; after the first term the combined
    // value of the earlier ones is below it.
    if (b->depth != g.base_depth + (g.terms > 0 ? 2 : 1)) throw std::invalid_argument("group term did not push one value");
    if (g.terms > 0) {
      b->byte(g.is_and ? OP_AND : OP_OR);
      b->pop_truth(1);
    }
    g.terms++;
    // Short-circuit: FALSE decides an AND, TRUE an OR; the decided value stays on top.
    b->byte(g.is_and ? OP_JUMP_IF_FALSE : OP_JUMP_IF_TRUE);
    g.jumps.push_back(b->code.size());
    b->u16(0);
  });
}

sr_status sr_builder_group_end(sr_program_builder* b) noexcept {
  return guarded([&] {
    if (b->groups.empty() || b->groups.back().terms == 0) throw std::invalid_argument("empty group");
    sr_program_builder::Group g = b->groups.back();
    // Only the last term's jump may follow the last term_done.
    if (b->code.size() != g.jumps.back() + 2 || b->depth != g.base_depth + 1)
      throw std::invalid_argument("code after the last group term");
    b->groups.pop_back();
    // The jump after the last term would land right after itself: drop it.
    b->code.resize(g.jumps.back() - 1);
    g.jumps.pop_back();
    for (size_t pos : g.jumps) {
      size_t offset = b->code.size() - (pos + 2);
      if (offset > 0xffff) throw std::invalid_argument("jump too long");
      b->code[pos] = static_cast<uint8_t>(offset & 0xff);
      b->code[pos + 1] = static_cast<uint8_t>(offset >> 8);
    }
  });
}

sr_status sr_builder_finish(sr_program_builder* b, uint8_t fallback_count, uint8_t** bytes,
                            size_t* len) noexcept {
  *bytes = nullptr;
  *len = 0;
  return guarded([&] {
    if (!b->groups.empty() || b->depth != 1) throw std::invalid_argument("unbalanced program");
    if (b->code.size() > 0xffff || b->consts.size() > 0xffff) throw std::invalid_argument("program too large");
    size_t total = kHeaderSize + b->code.size() + b->consts.size();
    uint8_t* out = static_cast<uint8_t*>(std::malloc(total));
    if (out == nullptr) throw std::bad_alloc();
    out[0] = kMagic;
    out[1] = kVersion;
    out[2] = static_cast<uint8_t>(b->code.size() & 0xff);
    out[3] = static_cast<uint8_t>(b->code.size() >> 8);
    out[4] = static_cast<uint8_t>(b->consts.size() & 0xff);
    out[5] = static_cast<uint8_t>(b->consts.size() >> 8);
    out[6] = static_cast<uint8_t>(b->max_depth);
    out[7] = fallback_count;
    std::memcpy(out + kHeaderSize, b->code.data(), b->code.size());
    if (!b->consts.empty()) std::memcpy(out + kHeaderSize + b->code.size(), b->consts.data(), b->consts.size());
    *bytes = out;
    *len = total;
  });
}

// ---------------------------------------------------------------- decimals

sr_status sr_encode_decimal(const char* text, size_t len, uint8_t* out, size_t* out_len) noexcept {
  auto is = [&](const char* word) { return len == std::strlen(word) && std::memcmp(text, word, len) == 0; };
  *out_len = 0;
  if (is("NaN")) {
    out[(*out_len)++] = kDecNaN;
    return SR_OK;
  }
  if (is("Infinity")) {
    out[(*out_len)++] = kDecPosInf;
    return SR_OK;
  }
  if (is("-Infinity")) {
    out[(*out_len)++] = kDecNegInf;
    return SR_OK;
  }
  size_t pos = 0;
  bool negative = false;
  if (pos < len && (text[pos] == '-' || text[pos] == '+')) negative = text[pos++] == '-';
  // value = 0.d1d2...dn x 10^exponent, d1..dn the significant digits (no leading
  // or trailing zeros): equal values give equal encodings whatever their scale.
  size_t point = len;                      // index of '.', or len when there is none
  size_t first = len, last = len;          // first and last non-zero digit
  bool any_digit = false;
  for (size_t i = pos; i < len; i++) {
    const char ch = text[i];
    if (ch == '.') {
      if (point != len) return SR_INVALID_ARGUMENT;
      point = i;
      continue;
    }
    if (ch < '0' || ch > '9') return SR_INVALID_ARGUMENT;
    any_digit = true;
    if (ch != '0') {
      if (first == len) first = i;
      last = i;
    }
  }
  if (!any_digit) return SR_INVALID_ARGUMENT;
  if (first == len) {
    out[(*out_len)++] = kDecZero;  // -0 = 0 = 0.000
    return SR_OK;
  }
  // From the first significant digit: integer digits up to the point, or minus
  // the zeros between the point and it.
  const int64_t exponent = first < point ? static_cast<int64_t>(point - first)
                                         : -static_cast<int64_t>(first - point - 1);
  const uint32_t biased = static_cast<uint32_t>(exponent + kExponentBias);
  out[(*out_len)++] = negative ? kDecNegative : kDecPositive;
  const uint32_t e = negative ? ~biased : biased;
  out[(*out_len)++] = static_cast<uint8_t>(e >> 24);
  out[(*out_len)++] = static_cast<uint8_t>(e >> 16);
  out[(*out_len)++] = static_cast<uint8_t>(e >> 8);
  out[(*out_len)++] = static_cast<uint8_t>(e);
  for (size_t i = first; i <= last; i++) {
    if (text[i] == '.') continue;
    out[(*out_len)++] = negative ? static_cast<uint8_t>(0xFF - text[i]) : static_cast<uint8_t>(text[i]);
  }
  // A negative number's digits sort inverted: a terminator above every inverted
  // digit makes -0.12 > -0.123 (a shorter digit string is the larger negative).
  if (negative) out[(*out_len)++] = 0xFF;
  return SR_OK;
}

// ---------------------------------------------------------------- validation

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

// ---------------------------------------------------------------- evaluation

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

// ---------------------------------------------------------------- listing

size_t sr_program_disassemble(const uint8_t* program, char* buf, size_t buflen) noexcept {
  std::string out;
  try {
    const size_t code_len = read_u16(program + 2);
    const uint8_t* code = program + kHeaderSize;
    const uint8_t* pool = code + code_len;
    char line[128];
    for (size_t pos = 0; pos < code_len; pos += instruction_length(code[pos])) {
      const uint8_t* in = code + pos;
      std::snprintf(line, sizeof line, "%3zu: ", pos);
      out += line;
      switch (in[0]) {
        case OP_CMP:
          out += "$" + std::to_string(read_u16(in + 2)) + " " + op_name(in[1] & 7) + " " +
                 format_scalar(in[1] >> 3, pool + read_u16(in + 4)) + " (" + tag_name(in[1] >> 3) + ")";
          break;
        case OP_CMP_COLS:
          out += "$" + std::to_string(read_u16(in + 2)) + " " + op_name(in[1] & 7) + " $" +
                 std::to_string(read_u16(in + 4)) + " (" + tag_name(in[1] >> 3) + ")";
          break;
        case OP_IN: {
          const uint8_t tag = in[1] >> 2;
          const uint8_t* set = pool + read_u16(in + 4);
          const size_t count = read_u16(set);
          out += "$" + std::to_string(read_u16(in + 2)) + ((in[1] & 1) ? " NOT IN (" : " IN (");
          for (size_t i = 0; i < count && i < 8; i++) {
            if (i > 0) out += ", ";
            if (category_of(tag) == Category::Bytes) {
              out += format_scalar(tag, set + read_u16(set + 2 + 2 * i));
            } else {
              out += format_scalar(tag, set + 2 + 8 * i);
            }
          }
          if (count > 8) out += ", ... " + std::to_string(count) + " values";
          if (in[1] & 2) out += count > 0 ? ", NULL" : "NULL";
          out += std::string(") (") + tag_name(tag) + ", sorted)";
          break;
        }
        case OP_ARRAY: {
          static const char* forms[] = {"= ANY of", "@>", "<@", "&&"};
          const uint8_t tag = in[1] >> 3;
          const uint8_t* set = pool + read_u16(in + 4);
          const size_t count = read_u16(set);
          out += "$" + std::to_string(read_u16(in + 2)) + " " + forms[in[1] & 3] + " {";
          for (size_t i = 0; i < count && i < 8; i++) {
            if (i > 0) out += ", ";
            out += category_of(tag) == Category::Bytes ? format_scalar(tag, set + read_u16(set + 2 + 2 * i))
                                                       : format_scalar(tag, set + 2 + 8 * i);
          }
          if (count > 8) out += ", ... " + std::to_string(count) + " values";
          if (in[1] & 4) out += count > 0 ? ", NULL" : "NULL";
          out += std::string("} (") + tag_name(tag) + " array)";
          break;
        }
        case OP_NULL_TEST:
          out += "$" + std::to_string(read_u16(in + 2)) + (in[1] ? " IS NULL" : " IS NOT NULL");
          break;
        case OP_BOOL_COL:
          out += "$" + std::to_string(read_u16(in + 1)) + " (bool column)";
          break;
        case OP_CONST:
          out += in[1] == SR_TRUE ? "TRUE" : (in[1] == SR_FALSE ? "FALSE" : "NULL");
          break;
        case OP_LIKE_PREFIX: {
          const uint8_t* c = pool + read_u16(in + 4);
          std::string pattern(reinterpret_cast<const char*>(c + 2), read_u16(c));
          pattern += '%';
          out += "$" + std::to_string(read_u16(in + 2)) + (in[1] ? " NOT LIKE " : " LIKE ") +
                 quote_bytes(reinterpret_cast<const uint8_t*>(pattern.data()), pattern.size(), SR_TAG_TEXT) +
                 " (prefix)";
          break;
        }
        case OP_FALLBACK:
          out += "FALLBACK " + std::to_string(in[1]) + " (PostgreSQL executor)";
          break;
        case OP_NOT:
          out += "NOT";
          break;
        case OP_TEST: {
          static const char* tests[] = {"IS TRUE", "IS NOT TRUE", "IS FALSE", "IS NOT FALSE", "IS UNKNOWN",
                                        "IS NOT UNKNOWN"};
          out += in[1] < SR_TEST_COUNT ? tests[in[1]] : "?";
          break;
        }
        case OP_AND:
          out += "AND";
          break;
        case OP_OR:
          out += "OR";
          break;
        case OP_JUMP_IF_FALSE:
        case OP_JUMP_IF_TRUE:
          out += std::string(in[0] == OP_JUMP_IF_FALSE ? "IF FALSE GOTO " : "IF TRUE GOTO ") +
                 std::to_string(pos + 3 + read_u16(in + 1));
          break;
        default:
          out += "?";
          break;
      }
      out += "\n";
    }
  } catch (...) {
    out = "(listing failed)\n";
  }
  if (buflen > 0) {
    size_t n = std::min(out.size(), buflen - 1);
    std::memcpy(buf, out.data(), n);
    buf[n] = '\0';
  }
  return out.size() + 1;
}

}  // extern "C"
