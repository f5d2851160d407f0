// The VM: runs a validated program on a row (sr_program_eval). It runs for
// every candidate shape of every change: its helpers and program_format.hpp's
// comparisons stay inline, in this translation unit.
#include "shape_router/program.h"

#include <cstring>

#include "program_ops.hpp"

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

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
      case OP_CMP_COLS:
        stack[sp++] = columns_truth(in[1], row[read_u16(in + 2)], row[read_u16(in + 4)]);
        pos += 6;
        break;
      case OP_ARRAY: {
        const sr_value& v = row[read_u16(in + 2)];
        stack[sp++] = v.is_null ? SR_NULL : array_truth(in[1], pool + read_u16(in + 4), v);
        pos += 6;
        break;
      }
      case OP_IN:
        stack[sp++] = in_truth(in[1], pool + read_u16(in + 4), row[read_u16(in + 2)]);
        pos += 6;
        break;
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
      case OP_LIKE_PREFIX:
        stack[sp++] = like_prefix_truth(in[1] != 0, pool + read_u16(in + 4), row[read_u16(in + 2)]);
        pos += 6;
        break;
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
