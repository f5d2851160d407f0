// Random programs for the program unit tests: schemas, rows and expression
// trees, a reference evaluator written from SQL's three-valued rules, and the
// builder calls that compile a tree.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "program_helpers.hpp"
#include "shape_router/program.h"

namespace {

// A value as the reference evaluator sees it.
struct Datum {
  bool null = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
};

enum class Cat { Int, Float, Bytes };
inline Cat CatOf(uint8_t tag) {
  switch (tag) {
    case SR_TAG_FLOAT:
      return Cat::Float;
    case SR_TAG_TEXT:
    case SR_TAG_BPCHAR:
    case SR_TAG_UUID:
      return Cat::Bytes;
    default:
      return Cat::Int;
  }
}

// Reference three-way comparison of two non-NULL values.
inline int RefCompare(uint8_t tag, const Datum& a, const Datum& b) {
  switch (CatOf(tag)) {
    case Cat::Int:
      return (a.i > b.i) - (a.i < b.i);
    case Cat::Float: {
      // PostgreSQL: every NaN equal, above everything; -0 = 0.
      const std::pair<int, double> ka(std::isnan(a.f) ? 1 : 0, std::isnan(a.f) ? 0.0 : a.f + 0.0);
      const std::pair<int, double> kb(std::isnan(b.f) ? 1 : 0, std::isnan(b.f) ? 0.0 : b.f + 0.0);
      return (ka > kb) - (ka < kb);
    }
    case Cat::Bytes: {
      auto lt = [](const std::string& x, const std::string& y) {
        return std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end(), [](char p, char q) {
          return static_cast<unsigned char>(p) < static_cast<unsigned char>(q);
        });
      };
      return lt(b.s, a.s) - lt(a.s, b.s);
    }
  }
  return 0;
}

enum class Kind { Cmp, CmpCols, In, NullTest, BoolCol, Const, Like, Fallback, Not, Test, And, Or };

struct Node {
  Kind kind = Kind::Const;
  uint8_t op = 0, tag = 0, truth = 0, test = 0;
  uint16_t att = 0, att2 = 0, index = 0;
  bool has_null = false, negate = false, is_null = false;
  Datum constant;
  std::vector<Datum> list;
  std::vector<Node> kids;
};

struct RefContext {
  const std::vector<Datum>* row;
  const std::vector<int>* fallback_results;
  Calls calls;
};

inline int RefEval(const Node& n, RefContext& ctx) {
  const std::vector<Datum>& row = *ctx.row;
  switch (n.kind) {
    case Kind::Cmp: {
      const Datum& v = row[n.att];
      if (v.null) return n.op == SR_OP_DISTINCT ? SR_TRUE : SR_NULL;
      return OpTruth(n.op, RefCompare(n.tag, v, n.constant));
    }
    case Kind::CmpCols: {
      const Datum& a = row[n.att];
      const Datum& b = row[n.att2];
      if (a.null || b.null) {
        if (n.op != SR_OP_DISTINCT) return SR_NULL;
        return a.null != b.null ? SR_TRUE : SR_FALSE;
      }
      return OpTruth(n.op, RefCompare(n.tag, a, b));
    }
    case Kind::In: {
      const Datum& v = row[n.att];
      if (n.list.empty() && !n.has_null) return n.negate ? SR_TRUE : SR_FALSE;
      if (v.null) return SR_NULL;
      bool found = false;
      for (const Datum& e : n.list)
        if (RefCompare(n.tag, v, e) == 0) found = true;
      if (found) return n.negate ? SR_FALSE : SR_TRUE;
      if (n.has_null) return SR_NULL;
      return n.negate ? SR_TRUE : SR_FALSE;
    }
    case Kind::NullTest:
      return row[n.att].null == n.is_null ? SR_TRUE : SR_FALSE;
    case Kind::BoolCol:
      return row[n.att].null ? SR_NULL : (row[n.att].i != 0 ? SR_TRUE : SR_FALSE);
    case Kind::Const:
      return n.truth;
    case Kind::Like: {
      const Datum& v = row[n.att];
      if (v.null) return SR_NULL;
      const std::string& p = n.constant.s;
      const bool match = v.s.size() >= p.size() && v.s.compare(0, p.size(), p) == 0;
      return match != n.negate ? SR_TRUE : SR_FALSE;
    }
    case Kind::Fallback: {
      ctx.calls.push_back(n.index);
      return (*ctx.fallback_results)[n.index];
    }
    case Kind::Not: {
      const int r = RefEval(n.kids[0], ctx);
      if (r == SR_STOP || r == SR_NULL) return r;
      return r == SR_TRUE ? SR_FALSE : SR_TRUE;
    }
    case Kind::Test: {
      const int r = RefEval(n.kids[0], ctx);
      if (r == SR_STOP) return r;
      bool t = false;
      switch (n.test) {
        case SR_TEST_IS_TRUE:
          t = r == SR_TRUE;
          break;
        case SR_TEST_IS_NOT_TRUE:
          t = r != SR_TRUE;
          break;
        case SR_TEST_IS_FALSE:
          t = r == SR_FALSE;
          break;
        case SR_TEST_IS_NOT_FALSE:
          t = r != SR_FALSE;
          break;
        case SR_TEST_IS_UNKNOWN:
          t = r == SR_NULL;
          break;
        case SR_TEST_IS_NOT_UNKNOWN:
          t = r != SR_NULL;
          break;
      }
      return t ? SR_TRUE : SR_FALSE;
    }
    case Kind::And:
    case Kind::Or: {
      // PostgreSQL's BoolExpr: arguments in order; the deciding value ends it.
      const int decides = n.kind == Kind::And ? SR_FALSE : SR_TRUE;
      bool any_null = false;
      for (const Node& k : n.kids) {
        const int r = RefEval(k, ctx);
        if (r == SR_STOP || r == decides) return r;
        if (r == SR_NULL) any_null = true;
      }
      return any_null ? SR_NULL : (n.kind == Kind::And ? SR_TRUE : SR_FALSE);
    }
  }
  return -1;
}

inline void RefColumns(const Node& n, std::set<uint16_t>& out) {
  switch (n.kind) {
    case Kind::Cmp:
    case Kind::In:
    case Kind::NullTest:
    case Kind::BoolCol:
    case Kind::Like:
      out.insert(n.att);
      break;
    case Kind::CmpCols:
      out.insert(n.att);
      out.insert(n.att2);
      break;
    default:
      break;
  }
  for (const Node& k : n.kids) RefColumns(k, out);
}

// Columns whose tag the program checks (all native reads but NULL tests).
inline void TypedColumns(const Node& n, std::set<uint16_t>& out) {
  if (n.kind != Kind::NullTest && n.kind != Kind::Fallback && n.kind != Kind::Const) {
    if (n.att != 0) out.insert(n.att);
    if (n.kind == Kind::CmpCols) out.insert(n.att2);
  }
  for (const Node& k : n.kids) TypedColumns(k, out);
}

inline sr_value ConstOf(uint8_t tag, const Datum& d) {
  switch (CatOf(tag)) {
    case Cat::Int:
      return IntV(d.i);
    case Cat::Float:
      return FloatV(d.f);
    case Cat::Bytes:
      return ConstBytes(d.s);
  }
  return NullV();
}

inline bool Emit(sr_program_builder* b, const Node& n) {
  switch (n.kind) {
    case Kind::Cmp: {
      const sr_value c = ConstOf(n.tag, n.constant);
      return sr_builder_compare(b, static_cast<sr_compare_op>(n.op), static_cast<sr_type_tag>(n.tag), n.att, &c) ==
             SR_OK;
    }
    case Kind::CmpCols:
      return sr_builder_compare_columns(b, static_cast<sr_compare_op>(n.op), static_cast<sr_type_tag>(n.tag), n.att,
                                        n.att2) == SR_OK;
    case Kind::In: {
      std::vector<sr_value> vals;
      for (const Datum& d : n.list) vals.push_back(ConstOf(n.tag, d));
      return sr_builder_in(b, static_cast<sr_type_tag>(n.tag), n.att, vals.data(), vals.size(), n.has_null,
                           n.negate) == SR_OK;
    }
    case Kind::NullTest:
      return sr_builder_null_test(b, n.att, n.is_null) == SR_OK;
    case Kind::BoolCol:
      return sr_builder_bool_column(b, n.att) == SR_OK;
    case Kind::Const:
      return sr_builder_constant(b, n.truth) == SR_OK;
    case Kind::Like:
      return sr_builder_like_prefix(b, n.att, reinterpret_cast<const uint8_t*>(n.constant.s.data()),
                                    n.constant.s.size(), n.negate) == SR_OK;
    case Kind::Fallback:
      return sr_builder_fallback(b, n.index) == SR_OK;
    case Kind::Not:
      return Emit(b, n.kids[0]) && sr_builder_not(b) == SR_OK;
    case Kind::Test:
      return Emit(b, n.kids[0]) && sr_builder_test(b, static_cast<sr_truth_test>(n.test)) == SR_OK;
    case Kind::And:
    case Kind::Or:
      if (sr_builder_group_begin(b, n.kind == Kind::And) != SR_OK) return false;
      for (const Node& k : n.kids)
        if (!Emit(b, k) || sr_builder_group_term_done(b) != SR_OK) return false;
      return sr_builder_group_end(b) == SR_OK;
  }
  return false;
}

inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\'') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "'";
}

inline std::string DatumText(uint8_t tag, const Datum& d) {
  if (d.null) return "NULL";
  char buf[64];
  switch (CatOf(tag)) {
    case Cat::Int:
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d.i));
      return buf;
    case Cat::Float:
      std::snprintf(buf, sizeof buf, "%.17g", d.f);
      return buf;
    case Cat::Bytes:
      return Quote(d.s);
  }
  return "?";
}

inline std::string Describe(const Node& n) {
  static const char* ops[] = {"=", "<>", "<", "<=", ">", ">=", "IS DISTINCT FROM"};
  static const char* tests[] = {"IS TRUE", "IS NOT TRUE", "IS FALSE", "IS NOT FALSE", "IS UNKNOWN", "IS NOT UNKNOWN"};
  const std::string col = "$" + std::to_string(n.att);
  switch (n.kind) {
    case Kind::Cmp:
      return col + " " + ops[n.op] + " " + DatumText(n.tag, n.constant);
    case Kind::CmpCols:
      return col + " " + ops[n.op] + " $" + std::to_string(n.att2);
    case Kind::In: {
      std::string s = col + (n.negate ? " NOT IN (" : " IN (");
      for (size_t i = 0; i < n.list.size(); i++) s += (i ? ", " : "") + DatumText(n.tag, n.list[i]);
      if (n.has_null) s += n.list.empty() ? "NULL" : ", NULL";
      return s + ")";
    }
    case Kind::NullTest:
      return col + (n.is_null ? " IS NULL" : " IS NOT NULL");
    case Kind::BoolCol:
      return col;
    case Kind::Const:
      return n.truth == SR_TRUE ? "TRUE" : (n.truth == SR_FALSE ? "FALSE" : "NULL");
    case Kind::Like:
      return col + (n.negate ? " NOT LIKE " : " LIKE ") + Quote(n.constant.s + "%");
    case Kind::Fallback:
      return "fb" + std::to_string(n.index);
    case Kind::Not:
      return "NOT (" + Describe(n.kids[0]) + ")";
    case Kind::Test:
      return "(" + Describe(n.kids[0]) + ") " + tests[n.test];
    case Kind::And:
    case Kind::Or: {
      std::string s = "(";
      for (size_t i = 0; i < n.kids.size(); i++)
        s += (i ? (n.kind == Kind::And ? " AND " : " OR ") : "") + Describe(n.kids[i]);
      return s + ")";
    }
  }
  return "?";
}

// Random schemas, values, rows and expression trees.
class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  uint32_t below(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }
  bool chance(uint32_t percent) { return below(100) < percent; }
  std::mt19937_64& rng() { return rng_; }

  static constexpr uint16_t kNatts = 8;

  Tags schema() {
    static const uint8_t choices[] = {SR_TAG_NONE,      SR_TAG_INT,         SR_TAG_INT,   SR_TAG_BOOL,
                                      SR_TAG_DATE,      SR_TAG_TIMESTAMP,   SR_TAG_TIMESTAMPTZ, SR_TAG_FLOAT,
                                      SR_TAG_FLOAT,     SR_TAG_TEXT,        SR_TAG_TEXT,  SR_TAG_BPCHAR,
                                      SR_TAG_UUID};
    Tags t(kNatts + 1, SR_TAG_NONE);
    for (uint16_t i = 1; i <= kNatts; i++) t[i] = choices[below(sizeof choices)];
    return t;
  }

  // A non-NULL value of tag, from small ranges and edge values.
  Datum value(uint8_t tag) {
    Datum d;
    switch (tag) {
      case SR_TAG_BOOL:
        d.i = below(2);
        break;
      case SR_TAG_FLOAT: {
        static const double pool[] = {kNaN, -kNaN, kInf, -kInf, -0.0, 0.0, 1.0, -1.0, 0.5, 2.5, DBL_MAX,
                                      -DBL_MAX, DBL_MIN, kDenorm, -kDenorm};
        d.f = chance(35) ? static_cast<double>(static_cast<int>(below(7)) - 3) : pool[below(sizeof pool / sizeof *pool)];
        break;
      }
      case SR_TAG_TEXT:
      case SR_TAG_BPCHAR: {
        static const std::string pool[] = {"",   "a",  "ab",           "abc",          "abd",        "b",
                                           "A",  "\xff", "\x80",       "ab\xff",       "it's",       Bytes("\0", 1),
                                           Bytes("\0\0", 2), Bytes("a\0", 2), Bytes("a\0b", 3)};
        d.s = pool[below(sizeof pool / sizeof *pool)];
        break;
      }
      case SR_TAG_UUID: {
        d.s = std::string(16, '\0');
        switch (below(6)) {
          case 0:
            break;
          case 1:
            d.s = std::string(16, '\xff');
            break;
          case 2:
            for (int i = 0; i < 16; i++) d.s[i] = static_cast<char>(i);
            break;
          case 3:
            for (int i = 0; i < 16; i++) d.s[i] = static_cast<char>(i);
            d.s[15] = 0x10;
            break;
          case 4:
            d.s[0] = '\x80';
            break;
          default:
            d.s[15] = 1;
            break;
        }
        break;
      }
      default: {  // the int64 tags (and NONE)
        static const int64_t pool[] = {INT64_MIN, INT64_MIN + 1, -1000000, 1000000, INT64_MAX - 1, INT64_MAX};
        d.i = chance(70) ? static_cast<int64_t>(below(7)) - 3 : pool[below(sizeof pool / sizeof *pool)];
        break;
      }
    }
    return d;
  }

  std::vector<Datum> row(const Tags& tags) {
    std::vector<Datum> r(tags.size());
    r[0].null = true;
    for (size_t i = 1; i < tags.size(); i++) {
      if (chance(30)) {
        r[i].null = true;
      } else {
        r[i] = value(tags[i]);
      }
    }
    return r;
  }

  // Each fallback's answer for one row: mostly truth values, some STOP.
  std::vector<int> fallback_results(uint8_t count) {
    std::vector<int> r(count);
    for (int& x : r) {
      const uint32_t p = below(100);
      x = p < 31 ? SR_FALSE : (p < 62 ? SR_TRUE : (p < 93 ? SR_NULL : SR_STOP));
    }
    return r;
  }

  Node tree(const Tags& tags, uint8_t fallback_count, int max_depth) {
    tags_ = &tags;
    fallback_count_ = fallback_count;
    budget_ = 6 + static_cast<int>(below(40));
    return node(0, max_depth);
  }

 private:
  uint16_t column_where(bool (*pred)(uint8_t)) {
    uint16_t found[Gen::kNatts + 1];
    int n = 0;
    for (uint16_t i = 1; i < tags_->size(); i++)
      if (pred((*tags_)[i])) found[n++] = i;
    return n == 0 ? 0 : found[below(n)];
  }

  Node leaf() {
    const Tags& tags = *tags_;
    for (;;) {
      Node n;
      const uint32_t k = below(100);
      if (k < 28) {
        n.kind = Kind::Cmp;
        n.att = column_where([](uint8_t t) { return t != SR_TAG_NONE; });
        if (n.att == 0) continue;
        n.tag = tags[n.att];
        n.op = static_cast<uint8_t>(below(SR_OP_COUNT));
        n.constant = value(n.tag);
      } else if (k < 38) {
        n.kind = Kind::CmpCols;
        n.att = column_where([](uint8_t t) { return t != SR_TAG_NONE; });
        if (n.att == 0) continue;
        n.tag = tags[n.att];
        std::vector<uint16_t> same;
        for (uint16_t i = 1; i < tags.size(); i++)
          if (tags[i] == n.tag) same.push_back(i);
        n.att2 = same[below(static_cast<uint32_t>(same.size()))];
        n.op = static_cast<uint8_t>(below(SR_OP_COUNT));
      } else if (k < 53) {
        n.kind = Kind::In;
        n.att = column_where([](uint8_t t) { return t != SR_TAG_NONE; });
        if (n.att == 0) continue;
        n.tag = tags[n.att];
        const uint32_t size = chance(10) ? below(40) : below(7);
        for (uint32_t i = 0; i < size; i++) n.list.push_back(value(n.tag));
        n.has_null = chance(25);
        n.negate = chance(50);
      } else if (k < 60) {
        n.kind = Kind::NullTest;
        n.att = static_cast<uint16_t>(1 + below(static_cast<uint32_t>(tags.size() - 1)));
        n.is_null = chance(50);
      } else if (k < 65) {
        n.kind = Kind::BoolCol;
        n.att = column_where([](uint8_t t) { return t == SR_TAG_BOOL; });
        if (n.att == 0) continue;
      } else if (k < 71) {
        n.kind = Kind::Const;
        n.truth = static_cast<uint8_t>(below(3));
      } else if (k < 78) {
        n.kind = Kind::Like;
        n.att = column_where([](uint8_t t) { return t == SR_TAG_TEXT; });
        if (n.att == 0) continue;
        n.constant = value(SR_TAG_TEXT);
        n.negate = chance(50);
      } else {
        if (fallback_count_ == 0) continue;
        n.kind = Kind::Fallback;
        n.index = static_cast<uint16_t>(below(fallback_count_));
      }
      return n;
    }
  }

  Node node(int depth, int max_depth) {
    budget_--;
    const int leaf_percent = 12 + 14 * depth;
    if (depth >= max_depth || budget_ <= 0 || chance(static_cast<uint32_t>(std::min(leaf_percent, 100))))
      return leaf();
    Node n;
    const uint32_t k = below(100);
    if (k < 40) {
      n.kind = Kind::And;
    } else if (k < 80) {
      n.kind = Kind::Or;
    } else if (k < 90) {
      n.kind = Kind::Not;
    } else {
      n.kind = Kind::Test;
      n.test = static_cast<uint8_t>(below(SR_TEST_COUNT));
    }
    const uint32_t terms = (n.kind == Kind::And || n.kind == Kind::Or) ? 1 + below(4) : 1;
    for (uint32_t i = 0; i < terms; i++) n.kids.push_back(node(depth + 1, max_depth));
    return n;
  }

  std::mt19937_64 rng_;
  const Tags* tags_ = nullptr;
  uint8_t fallback_count_ = 0;
  int budget_ = 0;
};

// A row as the VM sees it: an exactly-sized sr_value array (natts + 1) whose
// strings live in exactly-sized heap buffers.
class RowBuf {
 public:
  RowBuf(const Tags& tags, const std::vector<Datum>& d) : vals_(new sr_value[d.size()]) {
    for (size_t i = 0; i < d.size(); i++) {
      sr_value v{};
      if (d[i].null) {
        v.is_null = 1;
      } else {
        switch (CatOf(tags[i])) {
          case Cat::Int:
            v.v.i = d[i].i;
            break;
          case Cat::Float:
            v.v.f = d[i].f;
            break;
          case Cat::Bytes:
            v = store_.bytes(d[i].s);
            break;
        }
      }
      vals_[i] = v;
    }
  }
  const sr_value* data() const { return vals_.get(); }

 private:
  std::unique_ptr<sr_value[]> vals_;
  Store store_;
};

struct CheckedFallbacks {
  const std::vector<int>* results;
  uint8_t count;
  Calls calls;
  static int fn(void* arg, uint16_t index) {
    CheckedFallbacks* self = static_cast<CheckedFallbacks*>(arg);
    self->calls.push_back(index);
    if (index >= self->count) {
      ADD_FAILURE() << "fallback index " << index << " >= count " << int(self->count);
      return SR_STOP;
    }
    return (*self->results)[index];
  }
};

inline std::string RowText(const Tags& tags, const std::vector<Datum>& row) {
  std::string s;
  for (size_t i = 1; i < row.size(); i++)
    s += "$" + std::to_string(i) + "(" + std::to_string(tags[i]) + ")=" + DatumText(tags[i], row[i]) + " ";
  return s;
}

inline std::string CallsText(const Calls& c) {
  std::string s = "[";
  for (size_t i = 0; i < c.size(); i++) s += (i ? "," : "") + std::to_string(c[i]);
  return s + "]";
}

}  // namespace
