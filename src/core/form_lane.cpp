// Scan shapes of one form, evaluated together (include/shape_router/form_lane.hpp).
#include "shape_router/form_lane.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "program_ops.hpp"

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {
namespace {

// Where a lane's code is made of: a program's header and code, and its
// constants' bounds (false: not a program's layout).
bool program_parts(const uint8_t* program, size_t len, size_t& code_len, size_t& const_len) {
  if (program == nullptr || len < kHeaderSize || program[0] != kMagic || program[1] != kVersion) return false;
  code_len = read_u16(program + 2);
  const_len = read_u16(program + 4);
  return kHeaderSize + code_len + const_len == len;
}

// A lane does not follow a short-circuit jump member by member: members whose
// value decides the group go on through the code the jump skips, and must
// come out of it with the same stack. They do when that code only ends the
// group: terms, each folded into the decided value by the group's own AND (a
// jump on FALSE) or OR (on TRUE), and jumps that land no further. That is how
// sr_builder_group_* compiles a group; a program from elsewhere that is not
// runs alone.
bool jumps_skip_group_terms(const uint8_t* code, size_t code_len) {
  std::vector<int> height(code_len + 1, 0);  // stack height before each instruction
  int h = 0;
  for (size_t pos = 0; pos < code_len; pos += instruction_length(code[pos])) {
    height[pos] = h;
    switch (code[pos]) {
      case OP_AND:
      case OP_OR:
        h--;
        break;
      case OP_NOT:
      case OP_TEST:
      case OP_JUMP_IF_FALSE:
      case OP_JUMP_IF_TRUE:
        break;
      default:
        h++;
    }
  }
  for (size_t pos = 0; pos < code_len; pos += instruction_length(code[pos])) {
    if (code[pos] != OP_JUMP_IF_FALSE && code[pos] != OP_JUMP_IF_TRUE) continue;
    const uint8_t fold = code[pos] == OP_JUMP_IF_FALSE ? OP_AND : OP_OR;
    const size_t target = pos + 3 + read_u16(code + pos + 1);
    const int base = height[pos];  // the decided value is entry base - 1
    for (size_t p = pos + 3; p < target; p += instruction_length(code[p])) {
      const int at = height[p];
      const uint8_t op = code[p];
      if (at < base) return false;
      if (at == base && (op == OP_NOT || op == OP_TEST || op == OP_AND || op == OP_OR)) return false;
      if (at == base + 1 && (op == OP_AND || op == OP_OR) && op != fold) return false;
      if ((op == OP_JUMP_IF_FALSE || op == OP_JUMP_IF_TRUE) && p + 3 + read_u16(code + p + 1) > target) return false;
    }
  }
  return true;
}

template <typename Compare>
void compare_down(uint8_t op, size_t n, uint8_t* out, Compare&& compare) {
  switch (op) {
    case SR_OP_EQ:
      for (size_t i = 0; i < n; i++) out[i] = compare(i) == 0;
      break;
    case SR_OP_NE:
    case SR_OP_DISTINCT:
      for (size_t i = 0; i < n; i++) out[i] = compare(i) != 0;
      break;
    case SR_OP_LT:
      for (size_t i = 0; i < n; i++) out[i] = compare(i) < 0;
      break;
    case SR_OP_LE:
      for (size_t i = 0; i < n; i++) out[i] = compare(i) <= 0;
      break;
    case SR_OP_GT:
      for (size_t i = 0; i < n; i++) out[i] = compare(i) > 0;
      break;
    default:  // SR_OP_GE
      for (size_t i = 0; i < n; i++) out[i] = compare(i) >= 0;
      break;
  }
}

}  // namespace

bool FormLane::admits(const uint8_t* program, size_t len, std::vector<Column>& columns) {
  size_t code_len, const_len;
  columns.clear();
  if (!program_parts(program, len, code_len, const_len) || program[7] != 0 || code_len > kMaxCode) return false;
  const uint8_t* code = program + kHeaderSize;
  std::vector<uint8_t> tags;  // by attnum; SR_TAG_NONE: not read with a tag (yet)
  uint16_t natts = 0;
  auto read = [&](uint16_t attnum, int tag) {
    if (attnum == 0 || attnum >= SR_VIRTUAL_ATTNUM_BASE) return false;
    if (attnum >= tags.size()) tags.resize(attnum + 1, SR_TAG_NONE);
    natts = std::max(natts, attnum);
    if (tag < 0) return true;  // a NULL test: any tag
    if (tags[attnum] != SR_TAG_NONE && tags[attnum] != tag) return false;
    tags[attnum] = static_cast<uint8_t>(tag);
    return true;
  };
  for (size_t pos = 0; pos < code_len;) {
    const size_t ilen = instruction_length(code[pos]);
    if (ilen == 0 || pos + ilen > code_len) return false;
    const uint8_t* in = code + pos;
    bool ok = true;
    switch (in[0]) {
      case OP_CMP:
        ok = read(read_u16(in + 2), in[1] >> 3);
        break;
      case OP_CMP_COLS:
        ok = read(read_u16(in + 2), in[1] >> 3) && read(read_u16(in + 4), in[1] >> 3);
        break;
      case OP_IN:
        ok = read(read_u16(in + 2), in[1] >> 2);
        break;
      case OP_ARRAY:
        ok = read(read_u16(in + 2), (in[1] >> 3) | SR_TAG_ELEMENT_FLAG);
        break;
      case OP_NULL_TEST:
        ok = read(read_u16(in + 2), -1);
        break;
      case OP_BOOL_COL:
        ok = read(read_u16(in + 1), SR_TAG_BOOL);
        break;
      case OP_LIKE_PREFIX:
        ok = read(read_u16(in + 2), SR_TAG_TEXT);
        break;
      case OP_FALLBACK:
        ok = false;
        break;
      default:
        break;
    }
    if (!ok) return false;
    pos += ilen;
  }
  for (uint16_t attnum = 1; attnum < tags.size(); attnum++) {
    if (tags[attnum] != SR_TAG_NONE) {
      columns.push_back(Column{attnum, tags[attnum]});
      continue;
    }
    // Read by a NULL test alone: the relation's tag for it is not known here.
    for (size_t pos = 0; pos < code_len; pos += instruction_length(code[pos]))
      if (code[pos] == OP_NULL_TEST && read_u16(code + pos + 2) == attnum) return false;
  }
  if (tags.empty()) tags.resize(1, SR_TAG_NONE);
  char reason[8];
  if (sr_program_check(program, len, tags.data(), natts, 0, reason, sizeof reason) != SR_PROGRAM_FITS) return false;
  return jumps_skip_group_terms(code, code_len);
}

FormLane::FormLane(const uint8_t* program, size_t len, std::vector<Column> columns) : columns_(std::move(columns)) {
  const size_t code_len = read_u16(program + 2);
  code_.assign(program, program + kHeaderSize + code_len);
  const_len_ = len - code_.size();
}

bool FormLane::same_form(const uint8_t* program, size_t len) const noexcept {
  return len == code_.size() + const_len_ && std::memcmp(program, code_.data(), code_.size()) == 0;
}

void FormLane::add(uint32_t slot, const uint8_t* program) {
  const size_t depth = std::max<size_t>(code_[6], 1);
  // Grown by doubling (a load adds members one by one), then filled: nothing
  // below the put throws.
  reserve_one_more(slots_);
  if (constants_.capacity() - constants_.size() < const_len_)
    constants_.reserve(std::max(2 * constants_.capacity(), constants_.size() + const_len_));
  if (stack_.size() < depth * (slots_.size() + 1)) stack_.resize(depth * std::max<size_t>(2 * slots_.size(), 8));
  member_of_.put(uint64_t{slot} + 1, static_cast<uint32_t>(slots_.size()));
  slots_.push_back(slot);
  constants_.insert(constants_.end(), program + code_.size(), program + code_.size() + const_len_);
}

bool FormLane::remove(uint32_t slot) noexcept {
  const uint32_t* found = member_of_.find(uint64_t{slot} + 1);
  if (found == nullptr) return false;
  const size_t member = *found, last = slots_.size() - 1;
  member_of_.erase(uint64_t{slot} + 1);
  if (member != last) {
    slots_[member] = slots_[last];
    member_of_.put(uint64_t{slots_[member]} + 1, static_cast<uint32_t>(member));  // present: allocates nothing
    if (const_len_ > 0)
      std::memcpy(constants_.data() + member * const_len_, constants_.data() + last * const_len_, const_len_);
  }
  slots_.pop_back();
  constants_.resize(constants_.size() - const_len_);
  return true;
}

void FormLane::evaluate(const sr_value* row, uint8_t* out) const {
  const size_t n = slots_.size();
  if (n == 0) return;
  const size_t code_len = read_u16(code_.data() + 2), stride = const_len_;
  const uint8_t* code = code_.data() + kHeaderSize;
  const uint8_t* constants = constants_.data();
  // Entry k: members' values at stack_[k * n], or one value for all of them.
  bool uniform[kMaxStack] = {};
  uint8_t value[kMaxStack] = {};
  auto members = [&](int k) { return stack_.data() + static_cast<size_t>(k) * n; };
  auto spread = [&](int k) {  // entry k, member by member
    if (uniform[k]) std::memset(members(k), value[k], n);
    uniform[k] = false;
  };
  int sp = 0;
  auto push_one = [&](uint8_t v) {
    uniform[sp] = true;
    value[sp++] = v;
  };
  // An instruction that reads each member's constants at offset: truth(i, c).
  auto push_each = [&](uint16_t offset, auto&& truth) {
    uint8_t* d = members(sp);
    const uint8_t* c = constants + offset;
    for (size_t i = 0; i < n; i++) d[i] = truth(c + i * stride);
    uniform[sp++] = false;
  };
  // The same for an instruction that is NULL for every member on a NULL value.
  auto push_each_or_null = [&](const uint8_t* in, auto&& truth) {
    const sr_value& v = row[read_u16(in + 2)];
    if (v.is_null)
      push_one(SR_NULL);
    else
      push_each(read_u16(in + 4), [&](const uint8_t* c) { return truth(c, v); });
  };

  for (size_t pos = 0; pos < code_len;) {
    const uint8_t* in = code + pos;
    switch (in[0]) {
      case OP_CMP: {
        const uint8_t op = in[1] & 7;
        const sr_value& v = row[read_u16(in + 2)];
        if (v.is_null) {
          push_one(op == SR_OP_DISTINCT ? SR_TRUE : SR_NULL);
        } else {
          uint8_t* d = members(sp);
          const uint8_t* c = constants + read_u16(in + 4);
          switch (category_of(in[1] >> 3)) {
            case Category::Int: {
              const int64_t x = v.v.i;
              compare_down(op, n, d, [&](size_t i) { return compare_int(x, read_i64(c + i * stride)); });
              break;
            }
            case Category::Float: {
              const double x = v.v.f;
              compare_down(op, n, d, [&](size_t i) { return compare_float(x, read_f64(c + i * stride)); });
              break;
            }
            case Category::Bytes:
              compare_down(op, n, d, [&](size_t i) {
                const uint8_t* s = c + i * stride;
                return compare_bytes(v.v.bytes, v.len, s + 2, read_u16(s));
              });
              break;
          }
          uniform[sp++] = false;
        }
        pos += 6;
        break;
      }
      case OP_CMP_COLS:
        push_one(columns_truth(in[1], row[read_u16(in + 2)], row[read_u16(in + 4)]));
        pos += 6;
        break;
      case OP_ARRAY: {
        const uint8_t flags = in[1];
        push_each_or_null(in, [&](const uint8_t* set, const sr_value& v) { return array_truth(flags, set, v); });
        pos += 6;
        break;
      }
      case OP_IN: {
        const sr_value& v = row[read_u16(in + 2)];
        const uint8_t flags = in[1];
        push_each(read_u16(in + 4), [&](const uint8_t* set) { return in_truth(flags, set, v); });
        pos += 6;
        break;
      }
      case OP_NULL_TEST:
        push_one((row[read_u16(in + 2)].is_null != 0) == (in[1] != 0) ? SR_TRUE : SR_FALSE);
        pos += 4;
        break;
      case OP_BOOL_COL: {
        const sr_value& v = row[read_u16(in + 1)];
        push_one(v.is_null ? SR_NULL : (v.v.i != 0 ? SR_TRUE : SR_FALSE));
        pos += 3;
        break;
      }
      case OP_CONST:
        push_one(in[1]);
        pos += 2;
        break;
      case OP_LIKE_PREFIX: {
        const bool negate = in[1] != 0;
        push_each_or_null(in, [&](const uint8_t* c, const sr_value& v) { return like_prefix_truth(negate, c, v); });
        pos += 6;
        break;
      }
      case OP_NOT:
      case OP_TEST: {
        const int k = sp - 1;
        const bool is_not = in[0] == OP_NOT;
        const uint8_t test = is_not ? 0 : in[1];  // (NOT has no operand)
        auto apply = [&](uint8_t a) -> uint8_t {
          return is_not ? not3(a) : (truth_test(test, a) ? SR_TRUE : SR_FALSE);
        };
        if (uniform[k]) {
          value[k] = apply(value[k]);
        } else {
          uint8_t* d = members(k);
          for (size_t i = 0; i < n; i++) d[i] = apply(d[i]);
        }
        pos += is_not ? 1 : 2;
        break;
      }
      case OP_AND:
      case OP_OR: {
        const int a = sp - 2, b = sp - 1;
        const bool is_and = in[0] == OP_AND;
        sp--;
        const uint8_t decides = is_and ? SR_FALSE : SR_TRUE, neutral = is_and ? SR_TRUE : SR_FALSE;
        if (uniform[a] && uniform[b]) {
          value[a] = is_and ? and3(value[a], value[b]) : or3(value[a], value[b]);
        } else if ((uniform[a] && value[a] == decides) || (uniform[b] && value[b] == neutral)) {
          // a is the result already
        } else if (uniform[b] && value[b] == decides) {
          value[a] = value[b];
          uniform[a] = true;
        } else if (uniform[a] && value[a] == neutral) {
          std::memcpy(members(a), members(b), n);  // b is the result
          uniform[a] = false;
        } else {
          spread(a);
          spread(b);
          uint8_t* d = members(a);
          const uint8_t* e = members(b);
          if (is_and)
            for (size_t i = 0; i < n; i++) d[i] = and3(d[i], e[i]);
          else
            for (size_t i = 0; i < n; i++) d[i] = or3(d[i], e[i]);
        }
        pos += 1;
        break;
      }
      case OP_JUMP_IF_FALSE:
      case OP_JUMP_IF_TRUE: {
        // Taken only when it is every member's (see jumps_skip_group_terms).
        const uint8_t decided = in[0] == OP_JUMP_IF_FALSE ? SR_FALSE : SR_TRUE;
        const int k = sp - 1;
        bool all = uniform[k] ? value[k] == decided : true;
        if (!uniform[k]) {
          const uint8_t* d = members(k);
          for (size_t i = 0; i < n && all; i++) all = d[i] == decided;
        }
        pos += 3 + (all ? read_u16(in + 1) : 0);
        break;
      }
      default:
        return;  // unreachable: admits() checked every instruction
    }
  }
  if (uniform[0])
    std::memset(out, value[0], n);
  else
    std::memcpy(out, members(0), n);
}

}  // namespace shape_router

extern "C" int sr_program_runs_in_lane(const uint8_t* program, size_t len) noexcept {
  try {
    std::vector<shape_router::FormLane::Column> columns;
    return shape_router::FormLane::admits(program, len, columns) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}
