// Decimal encoding of numeric values (sr_encode_decimal), and its decoding back
// to text for listings.
#include "decimal.hpp"

#include <cstring>

#include "shape_router/program.h"

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace {

// A class byte, then for finite non-zero values a 4-byte big-endian biased
// exponent and the significant digits (a negative value's inverted, then
// kDecTerminator).
constexpr uint8_t kDecNegInf = 0x01, kDecNegative = 0x40, kDecZero = 0x80, kDecPositive = 0xC0,
                  kDecPosInf = 0xFE, kDecNaN = 0xFF;
constexpr uint32_t kExponentBias = 0x80000000u;
// Above every inverted digit (0xFF - '9' .. 0xFF - '0').
constexpr uint8_t kDecTerminator = 0xFF;

}  // namespace

namespace shape_router {

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
    if (negative && p[i] == kDecTerminator) break;
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

}  // namespace shape_router

extern "C" {

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
  if (negative) out[(*out_len)++] = kDecTerminator;
  return SR_OK;
}

}  // extern "C"
