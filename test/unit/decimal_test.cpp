// Unit tests of the decimal encoding (sr_encode_decimal): memcmp order is
// numeric order, equal values encode alike whatever their scale, and text that
// is not a number is refused.
#include "shape_router/program.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

std::vector<uint8_t> EncodeDecimal(const std::string& text) {
  std::vector<uint8_t> out(text.size() + 8);
  size_t n = 0;
  EXPECT_EQ(sr_encode_decimal(text.data(), text.size(), out.data(), &n), SR_OK) << text;
  out.resize(n);
  return out;
}

int CompareEncoded(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  const size_t common = std::min(a.size(), b.size());
  int c = common == 0 ? 0 : std::memcmp(a.data(), b.data(), common);
  if (c != 0) return c < 0 ? -1 : 1;
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

// m / 10^scale as PostgreSQL's numeric_out writes it, with extra trailing zeros.
std::string DecimalText(int64_t m, int scale, int extra_zeros) {
  std::string digits = std::to_string(m < 0 ? -m : m);
  if (static_cast<int>(digits.size()) <= scale) digits = std::string(scale - digits.size() + 1, '0') + digits;
  std::string text = m < 0 ? "-" : "";
  text += digits.substr(0, digits.size() - scale);
  if (scale > 0 || extra_zeros > 0) text += "." + digits.substr(digits.size() - scale) + std::string(extra_zeros, '0');
  return text;
}

TEST(Decimal, OrderAndEqualityMatchExactArithmetic) {
  std::mt19937_64 rng(20261120);
  struct D { __int128 m; int scale; std::string text; };
  std::vector<D> values;
  for (int i = 0; i < 4000; i++) {
    int64_t m = static_cast<int64_t>(rng() % 2000001) - 1000000;
    if (i % 7 == 0) m = static_cast<int64_t>(rng() % 21) - 10;
    int scale = static_cast<int>(rng() % 7);
    int extra = static_cast<int>(rng() % 3);
    values.push_back({m, scale, DecimalText(m, scale, extra)});
  }
  std::vector<std::vector<uint8_t>> encoded;
  for (const D& d : values) encoded.push_back(EncodeDecimal(d.text));
  auto pow10 = [](int e) { __int128 r = 1; while (e-- > 0) r *= 10; return r; };
  for (size_t i = 0; i < values.size(); i++) {
    for (size_t j = i; j < values.size() && j < i + 40; j++) {
      __int128 a = values[i].m * pow10(6 - values[i].scale), b = values[j].m * pow10(6 - values[j].scale);
      int expected = a < b ? -1 : (a > b ? 1 : 0);
      ASSERT_EQ(CompareEncoded(encoded[i], encoded[j]), expected) << values[i].text << " vs " << values[j].text;
    }
  }
}

TEST(Decimal, SpecialValuesAndScale) {
  const std::vector<std::string> ascending = {"-Infinity", "-12345678901234567890.5", "-3.5", "-1", "-0.123",
                                              "-0.12", "-0.000001", "0", "0.000001", "0.12", "0.123", "1",
                                              "2", "3.5", "12345678901234567890.5", "Infinity", "NaN"};
  for (size_t i = 0; i + 1 < ascending.size(); i++)
    EXPECT_LT(CompareEncoded(EncodeDecimal(ascending[i]), EncodeDecimal(ascending[i + 1])), 0)
        << ascending[i] << " < " << ascending[i + 1];
  EXPECT_EQ(EncodeDecimal("1"), EncodeDecimal("1.000"));
  EXPECT_EQ(EncodeDecimal("-0"), EncodeDecimal("0.00"));
  EXPECT_EQ(EncodeDecimal("NaN"), EncodeDecimal("NaN"));
  EXPECT_EQ(EncodeDecimal("100"), EncodeDecimal("100.0"));
  EXPECT_NE(EncodeDecimal("100"), EncodeDecimal("10"));
  uint8_t out[32];
  size_t n;
  for (const char* bad : {"", "-", ".", "1.2.3", "1e5", "abc", "--1", " 1"})
    EXPECT_EQ(sr_encode_decimal(bad, std::strlen(bad), out, &n), SR_INVALID_ARGUMENT) << bad;
}

}  // namespace
