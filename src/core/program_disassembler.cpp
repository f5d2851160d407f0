// Readable listings of validated programs (sr_program_disassemble).
#include "shape_router/program.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "decimal.hpp"
#include "program_format.hpp"

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace {

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
      if (tag == SR_TAG_NUMERIC) return shape_router::decode_decimal(c + 2, read_u16(c));
      return quote_bytes(c + 2, read_u16(c), tag);
  }
  return "?";
}

}  // namespace

extern "C" {

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
