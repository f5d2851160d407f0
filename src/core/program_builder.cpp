// The program builder: the shell's compiler emits a program through it
// (sr_builder_*), and it lays the program out as program_format.hpp says.
#include "shape_router/program.h"
#include "shape_router/guarded.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <vector>

#include "program_format.hpp"

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

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
    if (index > UINT8_MAX) throw std::invalid_argument("too many fallbacks");  // a byte operand
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

}  // extern "C"
