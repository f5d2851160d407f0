// The keys the core makes from a change's row views (ChangeKeys, sr_router_route):
// the same as the single-key functions make, for every kind of index column.
#include "shape_router/row_keys.hpp"
#include "shape_router/router.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {

using shape_router::ChangeKeys;
using shape_router::KeyPart;

sr_index_column column(uint16_t attnum, uint8_t tag) {
  sr_index_column c{};
  c.attnum = attnum;
  c.tag = tag;
  return c;
}

sr_value int_value(int64_t i) {
  sr_value v{};
  v.v.i = i;
  return v;
}

sr_value text_value(const std::string& s) {
  sr_value v{};
  v.v.bytes = reinterpret_cast<const uint8_t*>(s.data());
  v.len = static_cast<uint32_t>(s.size());
  return v;
}

sr_value null_value() {
  sr_value v{};
  v.is_null = 1;
  return v;
}

std::vector<uint64_t> keys_of(const ChangeKeys& k) { return {k.keys.begin(), k.keys.begin() + k.key_count}; }

// A text's gram windows for the lengths asked, in sr_substring_keys' order (by
// length, then position): each window's key, its word (its bytes, the first in
// the lowest byte), which the gram filter's sieve is addressed by, and length.
struct GramWindow {
  uint64_t key, word;
  size_t len;
};
std::vector<GramWindow> gram_windows(uint32_t relid, uint16_t attnum, bool lower, unsigned lengths,
                                     const std::string& text) {
  std::vector<GramWindow> out;
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  for (size_t q = 1; q <= SR_SUBSTRING_GRAM && q <= text.size(); q++) {
    if (((lengths >> (q - 1)) & 1) == 0) continue;
    for (size_t at = 0; at + q <= text.size(); at++) {
      uint64_t word = 0;
      for (size_t j = 0; j < q; j++) word |= uint64_t{bytes[at + j]} << (8 * j);
      out.push_back({sr_substring_key(relid, attnum, lower ? 1 : 0, bytes + at, q), word, q});
    }
  }
  return out;
}

std::vector<uint64_t> sorted(std::vector<uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Plain columns: the keys (with their columns) and probes the single-value
// functions make, in any order (the commonest steps run in loops of their own).
TEST(ChangeKeys, PlainColumnsAsSingleKeys) {
  std::mt19937_64 rng(3);
  std::vector<std::string> texts = {"", "a", "ab", "abcdef", "zzzzzzzzzzzz"};
  for (int round = 0; round < 2000; round++) {
    std::vector<sr_index_column> columns = {column(1, SR_TAG_INT), column(3, SR_TAG_TEXT), column(4, SR_TAG_FLOAT)};
    for (auto& c : columns) {
      c.shapes = rng() % 2;
      c.range_shapes = rng() % 2;
      c.null_shapes = rng() % 2;
      c.complement_shapes = rng() % 2;
    }
    columns[1].prefix_lengths = rng() % 64;
    std::vector<sr_value> by_attnum(5);
    by_attnum[1] = rng() % 5 == 0 ? null_value() : int_value(static_cast<int64_t>(rng() % 100) - 50);
    by_attnum[3] = rng() % 5 == 0 ? null_value() : text_value(texts[rng() % texts.size()]);
    by_attnum[4] = rng() % 5 == 0 ? null_value() : sr_value{};
    if (!by_attnum[4].is_null) by_attnum[4].v.f = static_cast<double>(rng() % 7) / 3;

    sr_row_view view{by_attnum.data(), nullptr, nullptr, 0};
    ChangeKeys made;
    ASSERT_TRUE(made.add_row(42, columns.data(), columns.size(), view, nullptr, KeyPart::kAll));

    using Probe = std::tuple<uint16_t, uint8_t, uint64_t>;  // attnum, is_null, key
    std::vector<std::pair<uint64_t, uint16_t>> keys;
    std::vector<Probe> probes;
    for (const auto& c : columns) {
      const sr_value& v = by_attnum[c.attnum];
      if (v.is_null) {
        if (c.null_shapes > 0) probes.emplace_back(c.attnum, 1, 0);
        continue;
      }
      if (c.shapes > 0 || c.complement_shapes > 0) keys.emplace_back(sr_index_key(42, c.attnum, c.tag, &v), c.attnum);
      for (size_t len = 1; len <= 6 && c.tag == SR_TAG_TEXT; len++)
        if (((c.prefix_lengths >> (len - 1)) & 1) && len <= v.len)
          keys.emplace_back(sr_prefix_key(42, c.attnum, v.v.bytes, len),
                            static_cast<uint16_t>(c.attnum | SR_PREFIX_KEY_FLAG));
      if (c.range_shapes > 0) probes.emplace_back(c.attnum, 0, sr_order_key(c.tag, &v));
    }
    std::vector<std::pair<uint64_t, uint16_t>> made_keys;
    for (size_t i = 0; i < made.key_count; i++) made_keys.emplace_back(made.keys[i], made.key_attnums[i]);
    std::vector<Probe> made_probes;
    for (size_t i = 0; i < made.probe_count; i++)
      made_probes.emplace_back(made.probes[i].attnum, made.probes[i].is_null, made.probes[i].key);
    std::sort(keys.begin(), keys.end());
    std::sort(made_keys.begin(), made_keys.end());
    std::sort(probes.begin(), probes.end());
    std::sort(made_probes.begin(), made_probes.end());
    EXPECT_EQ(made_keys, keys);
    EXPECT_EQ(made_probes, probes);
  }
}

// A row's 8-byte values are keyed with the seed's part made once a column:
// the keys are index_key's (what the compiler files), for any value, relation
// and column of every 8-byte tag.
TEST(ChangeKeys, EightByteKeysAreIndexKeys) {
  std::mt19937_64 rng(11);
  const uint8_t tags[] = {SR_TAG_INT, SR_TAG_BOOL, SR_TAG_DATE, SR_TAG_TIMESTAMP, SR_TAG_TIMESTAMPTZ, SR_TAG_FLOAT};
  const double specials[] = {0.0, -0.0, std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(), 1e-310};
  for (int round = 0; round < 20000; round++) {
    const uint32_t relid = static_cast<uint32_t>(rng());
    const uint8_t tag = tags[rng() % (sizeof(tags) / sizeof(tags[0]))];
    std::vector<sr_index_column> columns = {column(static_cast<uint16_t>(1 + rng() % 1600), tag)};
    columns[0].shapes = 1;
    std::vector<sr_value> by_attnum(columns[0].attnum + 1);
    sr_value& v = by_attnum[columns[0].attnum];
    v = int_value(static_cast<int64_t>(rng()));
    if (tag == SR_TAG_FLOAT) {
      const uint64_t bits = rng();
      std::memcpy(&v.v.f, &bits, 8);  // any bit pattern, NaNs included
      if (round % 3 == 0) v.v.f = specials[rng() % (sizeof(specials) / sizeof(specials[0]))];
    }
    sr_row_view view{by_attnum.data(), nullptr, nullptr, 0};
    ChangeKeys made;
    ASSERT_TRUE(made.add_row(relid, columns.data(), columns.size(), view, nullptr, KeyPart::kAll));
    ASSERT_EQ(made.key_count, 1u);
    ASSERT_EQ(made.keys[0], sr_index_key(relid, columns[0].attnum, tag, &v)) << "tag " << int(tag) << " round " << round;
  }
}

// An array column: one key per non-NULL element, with the element's tag; the old
// row's identical array adds none again, a different one its own.
TEST(ChangeKeys, ArrayElementsOnceAcrossRows) {
  sr_index_column tags = column(2, SR_TAG_INT | SR_TAG_ELEMENT_FLAG);
  tags.shapes = 1;
  std::vector<sr_value> elements = {int_value(7), int_value(9)};
  std::vector<sr_value> new_values(3), old_values(3);
  new_values[2].v.bytes = reinterpret_cast<const uint8_t*>(elements.data());
  new_values[2].len = 2;
  old_values[2] = new_values[2];
  sr_row_view new_row{new_values.data(), nullptr, nullptr, 0}, old_row{old_values.data(), nullptr, nullptr, 0};

  ChangeKeys k;
  ASSERT_TRUE(k.add_row(5, &tags, 1, new_row, nullptr, KeyPart::kAll));
  EXPECT_EQ(sorted(keys_of(k)), sorted({sr_index_key(5, 2, SR_TAG_INT, &elements[0]),
                                    sr_index_key(5, 2, SR_TAG_INT, &elements[1])}));
  k.start_old_row();
  ASSERT_TRUE(k.add_row(5, &tags, 1, old_row, &new_row, KeyPart::kAll));
  EXPECT_EQ(k.key_count, 2u);  // identical: nothing again

  std::vector<sr_value> other = {int_value(7), int_value(8)};
  old_values[2].v.bytes = reinterpret_cast<const uint8_t*>(other.data());
  ASSERT_TRUE(k.add_row(5, &tags, 1, old_row, &new_row, KeyPart::kAll));
  EXPECT_EQ(k.key_count, 4u);
  EXPECT_EQ(k.keys[3], sr_index_key(5, 2, SR_TAG_INT, &other[1]));

  ChangeKeys plain;  // prefetching reads no array
  ASSERT_TRUE(plain.add_row(5, &tags, 1, new_row, nullptr, KeyPart::kPlain));
  EXPECT_EQ(plain.key_count, 0u);
}

// Many element and gram keys ahead of plain columns: each column's keys land
// whole, whatever the storage held before (ASan checks the writes).
TEST(ChangeKeys, PlainColumnsAfterManyVariableKeys) {
  std::vector<sr_index_column> columns = {column(1, SR_TAG_INT | SR_TAG_ELEMENT_FLAG), column(2, SR_TAG_TEXT),
                                          column(3, SR_TAG_INT), column(4, SR_TAG_TEXT)};
  columns[0].shapes = columns[2].shapes = columns[3].shapes = 1;
  columns[1].substring_grams = 1u << 2;
  columns[3].prefix_lengths = 0xff;
  std::vector<sr_value> elements;
  for (int i = 0; i < 1000; i++) elements.push_back(int_value(i));
  const std::string long_text(5000, 'x'), prefixed = "abcdefghij";
  std::vector<sr_value> values(5);
  values[1].v.bytes = reinterpret_cast<const uint8_t*>(elements.data());
  values[1].len = 1000;
  values[2] = text_value(long_text);
  values[3] = int_value(5);
  values[4] = text_value(prefixed);
  sr_row_view row{values.data(), nullptr, nullptr, 0};
  ChangeKeys k;
  ASSERT_TRUE(k.add_row(1, columns.data(), columns.size(), row, nullptr, KeyPart::kAll));
  EXPECT_EQ(k.key_count, 1000u + 4998u + 1u + 1u + 8u);  // 5000 - 3 + 1 grams
  EXPECT_EQ(k.keys[k.key_count - 1], sr_prefix_key(1, 4, reinterpret_cast<const uint8_t*>(prefixed.data()), 8));
  k.start_old_row();
  ASSERT_TRUE(k.add_row(1, columns.data(), columns.size(), row, nullptr, KeyPart::kAll));
  EXPECT_EQ(k.key_count, 2 * k.old_keys_from);
}

// Substring grams of the raw and of the lowered bytes, as sr_substring_keys
// makes them; a column that asks for lowered grams without them is untrusted.
TEST(ChangeKeys, GramsRawAndLowered) {
  sr_index_column text = column(3, SR_TAG_TEXT);
  text.prefix_shapes = 1;
  text.substring_grams = static_cast<uint16_t>((1u << 2) | (1u << (8 + 2)));
  const std::string raw = "HeLLo", low = "hello";
  std::vector<sr_value> values(4), lowered(4);
  values[3] = text_value(raw);
  lowered[3] = text_value(low);
  sr_row_view row{values.data(), lowered.data(), nullptr, 0};
  ChangeKeys k;
  ASSERT_TRUE(k.add_row(9, &text, 1, row, nullptr, KeyPart::kAll));
  std::vector<uint64_t> want(8);
  size_t n = sr_substring_keys(9, 3, 0, 1u << 2, reinterpret_cast<const uint8_t*>(raw.data()), raw.size(),
                               want.data(), nullptr, 8);
  n += sr_substring_keys(9, 3, 1, 1u << 2, reinterpret_cast<const uint8_t*>(low.data()), low.size(),
                         want.data() + n, nullptr, 8 - n);
  want.resize(n);
  EXPECT_EQ(keys_of(k), want);
  for (size_t i = 0; i < k.key_count; i++) EXPECT_EQ(k.key_attnums[i], 3 | SR_SUBSTRING_KEY_FLAG);

  ChangeKeys untrusted;
  sr_row_view without{values.data(), nullptr, nullptr, 0};
  EXPECT_FALSE(untrusted.add_row(9, &text, 1, without, nullptr, KeyPart::kAll));
}

// A lowered value marked ascii_fold holds the value's own (ASCII) bytes, which
// the core lowers as it reads them: its gram keys are those of the bytes
// lowered beforehand, with the gram filter and without, for every length; and
// a raw value's are those of its bytes. Texts of up to 800 bytes: windows past
// the window loop's first chunk.
TEST(ChangeKeys, AsciiFoldedGramsAreLoweredGrams) {
  std::mt19937_64 rng(20261206);
  const unsigned lengths = 0xffu;
  for (unsigned lower = 0; lower < 2; lower++) {
    sr_index_column text = column(4, SR_TAG_TEXT);
    text.substring_grams = static_cast<uint16_t>(lower ? lengths << 8 : lengths);
    const shape_router::RowPlan plan(77, &text, 1);
    for (int round = 0; round < 200; round++) {
      // Some texts longer than the window loop's chunk of 256 windows.
      std::string raw(round % 10 == 0 ? 200 + rng() % 600 : 1 + rng() % 40, ' ');
      // Every byte but 0: ASCII in both cases, and bytes above it (kept as they are).
      for (char& c : raw) c = static_cast<char>(1 + rng() % 255);
      std::string low = raw;
      if (lower)
        for (char& c : low) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
      std::vector<uint64_t> want(8 * low.size());
      want.resize(sr_substring_keys(77, 4, lower, lengths, reinterpret_cast<const uint8_t*>(low.data()), low.size(),
                                    want.data(), nullptr, want.size()));
      const std::vector<GramWindow> windows = gram_windows(77, 4, lower, lengths, low);
      ASSERT_EQ(windows.size(), want.size());
      shape_router::GramFilter filter;  // a third of the windows registered
      for (size_t i = 0; i < want.size(); i += 3) filter.add(want[i], windows[i].word, windows[i].len);
      std::vector<sr_value> values(5), lowered(5);
      values[4] = text_value(raw);
      lowered[4] = text_value(raw);
      lowered[4].ascii_fold = 1;
      sr_row_view row{values.data(), lowered.data(), nullptr, 0};
      ChangeKeys all;
      ASSERT_TRUE(all.add_row(plan, row, nullptr, KeyPart::kAll, nullptr));
      EXPECT_EQ(keys_of(all), want) << raw;
      ChangeKeys filtered;
      ASSERT_TRUE(filtered.add_row(plan, row, nullptr, KeyPart::kAll, &filter));
      const std::vector<uint64_t> kept = sorted(keys_of(filtered));
      for (size_t i = 0; i < want.size(); i += 3)
        ASSERT_TRUE(std::binary_search(kept.begin(), kept.end(), want[i])) << raw << " window " << i;
      for (uint64_t key : kept) ASSERT_NE(std::find(want.begin(), want.end(), key), want.end()) << raw;
      EXPECT_EQ(filtered.key_count + filtered.filtered_grams, want.size()) << raw;
    }
  }
}

// The gram filter keeps every window key some shape has (never a miss), with
// shapes added and dropped (most of them at the end, past a rebuild), for every
// gram length, raw and lowered; and drops most of the windows no shape has.
TEST(ChangeKeys, GramFilterKeepsEveryRegisteredWindow) {
  std::mt19937_64 rng(20261206);
  for (unsigned lower = 0; lower < 2; lower++) {
    sr_index_column text = column(4, SR_TAG_TEXT);
    const unsigned lengths = 0xffu;  // every gram length, 1..8
    text.substring_grams = static_cast<uint16_t>(lower ? lengths << 8 : lengths);
    const shape_router::RowPlan plan(77, &text, 1);
    shape_router::GramFilter filter;
    std::vector<uint64_t> registered;
    std::map<uint64_t, uint64_t> word_of_key;
    size_t unregistered_windows = 0, unregistered_kept = 0;
    auto window_keys = [&](const std::string& t) {
      std::vector<uint64_t> keys(512);  // 40 bytes: at most 8 * 40 windows
      keys.resize(sr_substring_keys(77, 4, lower, lengths, reinterpret_cast<const uint8_t*>(t.data()), t.size(),
                                    keys.data(), nullptr, keys.size()));
      return keys;
    };
    // Each window's word, as the router finds it from an atom's key and length.
    auto word_of = [&](const std::string& t, size_t window) {
      const std::vector<GramWindow> windows = gram_windows(77, 4, lower, lengths, t);
      size_t q = 1, first = 0;  // the window's length: windows go by length
      while (window - first >= t.size() - q + 1) first += t.size() - q++ + 1;
      const uint64_t word = shape_router::gram_word_of_key(77, 4, lower != 0, q, windows[window].key);
      EXPECT_EQ(word, windows[window].word) << "window " << window << " of length " << q;
      return word;
    };
    auto random_text = [&](size_t n) {
      std::string t(n, ' ');
      for (char& c : t) c = static_cast<char>(1 + rng() % 255);  // text holds no NUL
      return t;
    };
    for (int round = 0; round < 300; round++) {
      const std::string t = random_text(1 + rng() % 40);
      const std::vector<uint64_t> all = window_keys(t);
      // Shapes come for a few of this text's windows and for unrelated grams; some go.
      for (int i = 0; i < 3; i++) {
        const size_t window = rng() % all.size();
        const uint64_t key = all[window];
        word_of_key[key] = word_of(t, window);
        filter.add(key, word_of_key[key], gram_windows(77, 4, lower, lengths, t)[window].len);
        registered.push_back(key);
        const std::string other = random_text(1 + rng() % 8);
        const uint64_t unrelated = sr_substring_key(77, 4, lower, reinterpret_cast<const uint8_t*>(other.data()),
                                                    other.size());
        word_of_key[unrelated] = word_of(other, other.size() * (other.size() + 1) / 2 - 1);  // its whole text
        filter.add(unrelated, word_of_key[unrelated], other.size());
        registered.push_back(unrelated);
      }
      if (round % 3 == 0 && !registered.empty()) {
        const size_t at = rng() % registered.size();
        ASSERT_TRUE(filter.remove(registered[at]));
        registered.erase(registered.begin() + static_cast<std::ptrdiff_t>(at));
      }
      std::vector<sr_value> values(5), lowered(5);
      values[4] = text_value(t);
      lowered[4] = text_value(t);
      sr_row_view row{values.data(), lowered.data(), nullptr, 0};
      ChangeKeys k;
      ASSERT_TRUE(k.add_row(plan, row, nullptr, KeyPart::kAll, &filter));
      const std::vector<uint64_t> kept = sorted(keys_of(k));
      for (uint64_t key : all) {
        const bool has = std::find(registered.begin(), registered.end(), key) != registered.end();
        if (has) {
          ASSERT_TRUE(std::binary_search(kept.begin(), kept.end(), key)) << "round " << round;
        } else {
          unregistered_windows++;
          unregistered_kept += std::binary_search(kept.begin(), kept.end(), key);
        }
      }
      for (uint64_t key : kept) ASSERT_NE(std::find(all.begin(), all.end(), key), all.end());
      EXPECT_EQ(k.key_count + k.filtered_grams, all.size());
    }
    // and it drops most windows no shape has
    EXPECT_LT(unregistered_kept, unregistered_windows / 10) << unregistered_kept << " of " << unregistered_windows;
    // Most shapes go (the filter rebuilds after so many): the rest still pass.
    std::shuffle(registered.begin(), registered.end(), rng);
    while (registered.size() > 20) {
      ASSERT_TRUE(filter.remove(registered.back()));
      registered.pop_back();
    }
    const shape_router::GramFilter::View may = filter.view();
    for (uint64_t key : registered) {
      ASSERT_TRUE(may.may_have(key));
      ASSERT_TRUE(may.sieve_has(word_of_key[key]));
    }
  }
}

// The gram filter's sieve of words passes every registered gram's word, through
// its rebuilds and after drops, and drops most other words before their key is
// made; a key registered with a second word (a 64-bit key collision of two
// grams) makes it pass every word.
TEST(GramFilter, SieveOfWords) {
  std::mt19937_64 rng(20261207);
  shape_router::GramFilter filter;
  std::vector<std::pair<uint64_t, uint64_t>> registered;  // (key, word)
  for (int i = 0; i < 2000; i++) {
    const uint64_t word = rng() & 0xffffffffffffffULL;  // 7-byte grams
    const uint64_t key = rng();
    filter.add(key, word, 7);
    registered.emplace_back(key, word);
  }
  for (int i = 0; i < 1500; i++) {  // most go: past the filter's rebuild
    ASSERT_TRUE(filter.remove(registered.back().first));
    registered.pop_back();
  }
  const shape_router::GramFilter::View may = filter.view();
  for (const auto& [key, word] : registered) {
    ASSERT_TRUE(may.sieve_has(word));
    ASSERT_TRUE(may.has(key));
    // and the short sieve its first and last 6 bytes (a 7-byte gram is read at every other offset)
    ASSERT_TRUE(may.short_sieve_has(word & 0xffffffffffffULL));
    ASSERT_TRUE(may.short_sieve_has(word >> 8));
  }
  size_t passed = 0, short_passed = 0;
  for (int i = 0; i < 10000; i++) {
    passed += may.sieve_has(rng() & 0xffffffffffffffULL);
    short_passed += may.short_sieve_has(rng() & 0xffffffffffffULL);
  }
  EXPECT_LT(passed, 10000u / 10) << "the sieve passes " << passed << " of 10,000 other words";
  EXPECT_LT(short_passed, 10000u / 5) << "the short sieve passes " << short_passed << " of 10,000 other words";
  // A gram shorter than 6 bytes is read at every offset: nothing in the short sieve.
  shape_router::GramFilter short_grams;
  for (int i = 0; i < 100; i++) short_grams.add(rng(), rng() & 0xffffffffffULL, 5);
  size_t none = 0;
  for (int i = 0; i < 1000; i++) none += short_grams.view().short_sieve_has(rng() & 0xffffffffULL);
  EXPECT_EQ(none, 0u);

  const uint64_t other_word = registered[0].second ^ 0x5a5a5a;
  filter.add(registered[0].first, other_word, 7);
  EXPECT_TRUE(filter.view().sieve_has(other_word));
  EXPECT_TRUE(filter.view().short_sieve_has(other_word >> 8));  // every word passes, short ones too
  for (int i = 0; i < 20000; i++) filter.add(rng(), rng(), 8);  // rebuilds keep it so
  EXPECT_TRUE(filter.view().sieve_has(other_word));
  EXPECT_TRUE(filter.view().sieve_has(registered[0].second));
}

// Expression results are keyed with their own tag; a NULL result probes NULL atoms.
TEST(ChangeKeys, ExpressionsWithTheirOwnTag) {
  sr_index_column virt = column(SR_VIRTUAL_ATTNUM_BASE + 5, SR_TAG_TEXT);
  virt.shapes = 1;
  virt.range_shapes = 1;
  virt.null_shapes = 1;
  sr_expression_value results[2] = {{int_value(12), static_cast<uint16_t>(SR_VIRTUAL_ATTNUM_BASE + 5), SR_TAG_INT},
                                    {null_value(), static_cast<uint16_t>(SR_VIRTUAL_ATTNUM_BASE + 5), SR_TAG_INT}};
  sr_row_view row{nullptr, nullptr, results, 2};
  ChangeKeys k;
  ASSERT_TRUE(k.add_row(9, &virt, 1, row, nullptr, KeyPart::kAll));
  ASSERT_EQ(k.key_count, 1u);
  EXPECT_EQ(k.keys[0], sr_index_key(9, virt.attnum, SR_TAG_INT, &results[0].value));
  ASSERT_EQ(k.probe_count, 2u);
  EXPECT_EQ(k.probes[0].key, sr_order_key(SR_TAG_INT, &results[0].value));
  EXPECT_EQ(k.probes[1].is_null, 1);
}

TEST(ChangeKeys, ValuesIdentical) {
  const std::string a = "abc", b = "abd";
  EXPECT_TRUE(shape_router::values_identical(SR_TAG_TEXT, text_value(a), text_value(a)));
  EXPECT_FALSE(shape_router::values_identical(SR_TAG_TEXT, text_value(a), text_value(b)));
  EXPECT_FALSE(shape_router::values_identical(SR_TAG_INT, int_value(1), null_value()));
  EXPECT_TRUE(shape_router::values_identical(SR_TAG_INT, null_value(), null_value()));
}

// sr_router_route: the candidates of the keys it makes, new row's then old row's;
// untrusted rows get every shape of the relation.
TEST(RouterRoute, RoutesByViewsAsByKeys) {
  sr_router* router = nullptr;
  ASSERT_EQ(sr_router_create(&router), SR_OK);
  for (uint64_t id = 1; id <= 50; id++) {
    sr_value v = int_value(static_cast<int64_t>(id % 10));
    const uint64_t key = sr_index_key(77, 1, SR_TAG_INT, &v);
    void* previous = nullptr;
    ASSERT_EQ(sr_router_add_shape(router, id, 77, nullptr, 1, SR_TAG_INT, &key, 1, &previous), SR_OK);
  }
  std::vector<sr_value> new_values(2), old_values(2);
  new_values[1] = int_value(3);
  old_values[1] = int_value(4);
  sr_row_view new_row{new_values.data(), nullptr, nullptr, 0}, old_row{old_values.data(), nullptr, nullptr, 0};
  const sr_shape_ref* shapes = nullptr;
  size_t count = 0;
  ASSERT_EQ(sr_router_route(router, 77, &new_row, &old_row, 1, 0, &shapes, &count), SR_OK);
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < count; i++) ids.push_back(shapes[i].shape_id);
  std::vector<uint64_t> want;
  for (uint64_t id = 1; id <= 50; id++)
    if (id % 10 == 3 || id % 10 == 4) want.push_back(id);
  EXPECT_EQ(ids, want);
  ASSERT_EQ(sr_router_route(router, 77, &new_row, nullptr, 0, 0, &shapes, &count), SR_OK);
  EXPECT_EQ(count, 50u);
  ASSERT_EQ(sr_router_route(router, 78, &new_row, nullptr, 1, 0, &shapes, &count), SR_OK);
  EXPECT_EQ(count, 0u);
  sr_router_destroy(router);
}

// The columns a route keys follow the shapes added and dropped between routes.
TEST(RouterRoute, KeysFollowColumnsAddedAndDroppedBetweenRoutes) {
  sr_router* router = nullptr;
  ASSERT_EQ(sr_router_create(&router), SR_OK);
  auto add = [&](uint64_t id, uint16_t attnum, int64_t value) {
    sr_value v = int_value(value);
    const uint64_t key = sr_index_key(77, attnum, SR_TAG_INT, &v);
    void* previous = nullptr;
    ASSERT_EQ(sr_router_add_shape(router, id, 77, nullptr, attnum, SR_TAG_INT, &key, 1, &previous), SR_OK);
  };
  std::vector<sr_value> values(3);
  values[1] = int_value(5);
  values[2] = int_value(6);
  sr_row_view row{values.data(), nullptr, nullptr, 0};
  auto route = [&] {
    const sr_shape_ref* shapes = nullptr;
    size_t count = 0;
    EXPECT_EQ(sr_router_route(router, 77, &row, nullptr, 1, 0, &shapes, &count), SR_OK);
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < count; i++) ids.push_back(shapes[i].shape_id);
    return ids;
  };
  add(1, 1, 5);
  EXPECT_EQ(route(), (std::vector<uint64_t>{1}));
  add(2, 2, 6);  // a column the last route did not key
  EXPECT_EQ(route(), (std::vector<uint64_t>{1, 2}));
  void* payload = nullptr;
  ASSERT_EQ(sr_router_drop_shape(router, 1, &payload), SR_OK);
  EXPECT_EQ(route(), (std::vector<uint64_t>{2}));
  add(3, 1, 5);
  EXPECT_EQ(route(), (std::vector<uint64_t>{2, 3}));
  sr_router_destroy(router);
}

// Keys made by a prefetch are reused by the route of the same token (the view
// passed then is not read again), once, and only for the last two prefetches.
TEST(RouterRoute, PrefetchedKeysReusedByToken) {
  sr_router* router = nullptr;
  ASSERT_EQ(sr_router_create(&router), SR_OK);
  for (uint64_t id = 1; id <= 10; id++) {
    sr_value v = int_value(static_cast<int64_t>(id));
    const uint64_t key = sr_index_key(77, 1, SR_TAG_INT, &v);
    void* previous = nullptr;
    ASSERT_EQ(sr_router_add_shape(router, id, 77, nullptr, 1, SR_TAG_INT, &key, 1, &previous), SR_OK);
  }
  auto route = [&](int64_t value, uint64_t token) {
    std::vector<sr_value> values(2);
    values[1] = int_value(value);
    sr_row_view row{values.data(), nullptr, nullptr, 0};
    const sr_shape_ref* shapes = nullptr;
    size_t count = 0;
    EXPECT_EQ(sr_router_route(router, 77, &row, nullptr, 1, token, &shapes, &count), SR_OK);
    return count == 1 ? shapes[0].shape_id : 0;
  };
  auto prefetch = [&](int64_t value, uint64_t token) {
    std::vector<sr_value> values(2);
    values[1] = int_value(value);
    sr_row_view row{values.data(), nullptr, nullptr, 0};
    sr_router_prefetch_rows(router, 77, &row, nullptr, token, 0);
  };
  prefetch(3, 101);
  prefetch(4, 102);
  EXPECT_EQ(route(9, 101), 3u);  // the prefetched keys, not the view's
  EXPECT_EQ(route(9, 101), 9u);  // once
  EXPECT_EQ(route(9, 102), 4u);
  prefetch(5, 103);
  prefetch(6, 104);
  prefetch(7, 105);
  EXPECT_EQ(route(9, 103), 9u);  // overwritten since
  EXPECT_EQ(route(9, 105), 7u);
  prefetch(2, 0);                // no token: nothing kept
  EXPECT_EQ(route(9, 0), 9u);
  sr_router_destroy(router);
}

// A prefetch keeps its rows' plain columns' keys under its token, whatever else
// the relation's rows have keys for: a route of that token takes them, and makes
// only the rest (here an array's elements) from the view it is given, for the
// new and the old row alike. Kept keys made before the relation's index columns
// changed are not used. Another relation's shapes change nothing (the router's
// last-relation lookup follows the relation asked for).
TEST(RouterRoute, PrefetchKeepsPlainKeysRouteMakesTheRest) {
  shape_router::Router r;
  auto equal_atom = [](uint32_t relid, int64_t value) {
    sr_value v = int_value(value);
    return sr_index_atom{sr_index_key(relid, 1, SR_TAG_INT, &v), 0, 1, SR_TAG_INT, SR_ATOM_EQUAL, 0, 0, 0};
  };
  auto element_atom = [](int64_t value) {
    sr_value v = int_value(value);
    return sr_index_atom{sr_index_key(77, 2, SR_TAG_INT, &v), 0, 2,
                         static_cast<uint8_t>(SR_TAG_INT | SR_TAG_ELEMENT_FLAG), SR_ATOM_ELEMENT, 0, 0, 0};
  };
  const uint32_t one = 1;
  const sr_index_atom three = equal_atom(77, 3), seven = equal_atom(77, 7), other = equal_atom(78, 3);
  const sr_index_atom element_three = element_atom(3), element_five = element_atom(5);
  r.add_shape(1, 77, nullptr, sr_cover{&three, &one, 1, 0});
  // A row: column 1's value, column 2 an array of one element.
  struct Row {
    std::vector<sr_value> elements, values;
    sr_row_view view;
    Row(int64_t plain, int64_t element) : elements{int_value(element)}, values(3) {
      values[1] = int_value(plain);
      values[2].v.bytes = reinterpret_cast<const uint8_t*>(elements.data());
      values[2].len = 1;
      view = sr_row_view{values.data(), nullptr, nullptr, 0};
    }
  };
  const Row a(3, 5), b(9, 3), old_a(7, 8), old_b(9, 5);
  auto routed = [&](uint32_t relid, const Row& row, const Row* old_row, uint64_t token) {
    std::vector<uint64_t> ids;
    for (const sr_shape_ref& s : r.route(relid, &row.view, old_row != nullptr ? &old_row->view : nullptr, true, token))
      ids.push_back(s.shape_id);
    return ids;
  };
  EXPECT_TRUE(r.prefetch_rows(77, &a.view, nullptr, 11));
  EXPECT_FALSE(r.prefetch_rows(77, &a.view, nullptr, 0));  // no token: nothing to keep under
  EXPECT_FALSE(r.prefetch_rows(79, &a.view, nullptr, 12));  // no such relation
  EXPECT_EQ(routed(77, b, nullptr, 11), std::vector<uint64_t>{1});  // a's key 3, not b's 9
  r.add_shape(2, 78, nullptr, sr_cover{&other, &one, 1, 0});
  EXPECT_EQ(routed(78, a, nullptr, 0), std::vector<uint64_t>{2});
  EXPECT_EQ(routed(77, a, nullptr, 0), std::vector<uint64_t>{1});
  r.add_shape(3, 77, nullptr, sr_cover{&element_three, &one, 1, 0});
  r.add_shape(4, 77, nullptr, sr_cover{&seven, &one, 1, 0});
  r.add_shape(5, 77, nullptr, sr_cover{&element_five, &one, 1, 0});
  EXPECT_TRUE(r.prefetch_rows(77, &a.view, nullptr, 13));
  // the plain key from the prefetch (a: 3), the element from the view (b: 3)
  EXPECT_EQ(routed(77, b, nullptr, 13), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(routed(77, b, nullptr, 13), std::vector<uint64_t>{3});  // once: then b's own keys
  // Both rows: the old row's plain key from the prefetch (old_a: 7), its element from the view (old_b: 5).
  EXPECT_TRUE(r.prefetch_rows(77, &a.view, &old_a.view, 14));
  EXPECT_EQ(routed(77, b, &old_b, 14), (std::vector<uint64_t>{1, 3, 4, 5}));
  EXPECT_TRUE(r.prefetch_rows(78, &a.view, nullptr, 15));
  EXPECT_EQ(routed(78, a, nullptr, 15), std::vector<uint64_t>{2});
  // Kept before the relation's index columns changed: not used.
  EXPECT_TRUE(r.prefetch_rows(77, &a.view, nullptr, 16));
  r.drop_shape(5);
  r.drop_shape(3);
  EXPECT_EQ(routed(77, b, nullptr, 16), std::vector<uint64_t>{});
}

// A row of the read-ahead tests: column 1 an int, column 2 an int array of one
// element, column 3 a text, with its lowered bytes.
struct TextRow {
  std::string text, low;
  std::vector<sr_value> elements, values, lowered_values;
  sr_row_view view;
  TextRow(int64_t plain, int64_t element, std::string t)
      : text(std::move(t)), low(text), elements{int_value(element)}, values(4), lowered_values(4) {
    for (char& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    values[1] = int_value(plain);
    values[2].v.bytes = reinterpret_cast<const uint8_t*>(elements.data());
    values[2].len = 1;
    values[3] = text_value(text);
    lowered_values[3] = text_value(low);
    view = sr_row_view{values.data(), lowered_values.data(), nullptr, 0};
  }
  TextRow(const TextRow&) = delete;  // view points into it
};

// The same with a text column's substring grams as the rest: a route of the
// prefetch's token takes its plain key and makes the grams of the view it is
// given (raw and lowered), for the new and the old row; without the token, only
// the view's keys.
TEST(RouterRoute, PrefetchKeepsPlainKeysRouteMakesTheGrams) {
  shape_router::Router r;
  const uint32_t one = 1;
  auto equal_atom = [](int64_t value) {
    sr_value v = int_value(value);
    return sr_index_atom{sr_index_key(80, 1, SR_TAG_INT, &v), 0, 1, SR_TAG_INT, SR_ATOM_EQUAL, 0, 0, 0};
  };
  auto gram_atom = [](const std::string& gram, bool lower) {
    return sr_index_atom{sr_substring_key(80, 3, lower ? 1 : 0, reinterpret_cast<const uint8_t*>(gram.data()),
                                          gram.size()),
                         gram.size(), 3, SR_TAG_TEXT, SR_ATOM_SUBSTRING, 0, 0, lower ? 1u : 0u};
  };
  const sr_index_atom three = equal_atom(3), seven = equal_atom(7);
  const sr_index_atom raw = gram_atom("abc", false), lowered = gram_atom("xyz", true);
  r.add_shape(1, 80, nullptr, sr_cover{&three, &one, 1, 0});
  r.add_shape(2, 80, nullptr, sr_cover{&raw, &one, 1, 0});
  r.add_shape(3, 80, nullptr, sr_cover{&lowered, &one, 1, 0});
  r.add_shape(4, 80, nullptr, sr_cover{&seven, &one, 1, 0});
  using Row = TextRow;
  auto routed = [&](const Row& row, const Row* old_row, uint64_t token) {
    std::vector<uint64_t> ids;
    for (const sr_shape_ref& s : r.route(80, &row.view, old_row != nullptr ? &old_row->view : nullptr, true, token))
      ids.push_back(s.shape_id);
    return ids;
  };
  const Row a(3, 0, "nothing here"), b(9, 0, "..abc.."), old_a(7, 0, "none"), old_b(9, 0, "..XYZ..");
  EXPECT_TRUE(r.prefetch_rows(80, &a.view, nullptr, 21));
  EXPECT_EQ(routed(b, nullptr, 21), (std::vector<uint64_t>{1, 2}));  // a's key 3, b's gram abc
  EXPECT_EQ(routed(b, nullptr, 0), std::vector<uint64_t>{2});
  EXPECT_TRUE(r.prefetch_rows(80, &a.view, &old_a.view, 22));
  // old_a's key 7 from the prefetch, old_b's lowered gram xyz from the view
  EXPECT_EQ(routed(b, &old_b, 22), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(routed(a, &old_a, 0), (std::vector<uint64_t>{1, 4}));
}

// Two grams of one shape whose keys are stored as one (keys 0 and 1 are; so
// would be a 64-bit collision): a row with either gram finds the shape, though
// the gram filter keeps one word a key.
TEST(RouterRoute, TwoGramsOfOneShapeStoredAsOneKey) {
  shape_router::Router r;
  const uint64_t words[2] = {shape_router::gram_word_of_key(81, 3, false, 8, 0),
                             shape_router::gram_word_of_key(81, 3, false, 8, 1)};
  sr_index_atom atoms[2];
  for (int g = 0; g < 2; g++) atoms[g] = sr_index_atom{uint64_t(g), 8, 3, SR_TAG_TEXT, SR_ATOM_SUBSTRING, 0, 0, 0};
  const uint32_t both = 2;
  r.add_shape(1, 81, nullptr, sr_cover{atoms, &both, 1, 0});  // col LIKE '%g0%' OR col LIKE '%g1%'
  for (int g = 0; g < 2; g++) {
    std::string text(8, ' ');
    for (int j = 0; j < 8; j++) text[j] = static_cast<char>(words[g] >> (8 * j));
    ASSERT_EQ(sr_substring_key(81, 3, 0, reinterpret_cast<const uint8_t*>(text.data()), 8), uint64_t(g));
    const TextRow row(0, 0, "<" + text + ">");
    std::vector<uint64_t> ids;
    for (const sr_shape_ref& s : r.route(81, &row.view, nullptr, true, 0)) ids.push_back(s.shape_id);
    EXPECT_EQ(ids, std::vector<uint64_t>{1}) << "the gram of key " << g;
  }
}

// A complete prefetch makes every key of its rows (the plain columns', an
// array's elements, grams of the text and of its lowered bytes): a route of its
// token takes them all and makes none from the views it is given; a row whose
// grams the route would not trust keeps nothing.
TEST(RouterRoute, CompletePrefetchMakesEveryKey) {
  shape_router::Router r;
  const uint32_t one = 1;
  auto equal_atom = [](int64_t value) {
    sr_value v = int_value(value);
    return sr_index_atom{sr_index_key(81, 1, SR_TAG_INT, &v), 0, 1, SR_TAG_INT, SR_ATOM_EQUAL, 0, 0, 0};
  };
  auto element_atom = [](int64_t value) {
    sr_value v = int_value(value);
    return sr_index_atom{sr_index_key(81, 2, SR_TAG_INT, &v), 0, 2,
                         static_cast<uint8_t>(SR_TAG_INT | SR_TAG_ELEMENT_FLAG), SR_ATOM_ELEMENT, 0, 0, 0};
  };
  auto gram_atom = [](const std::string& gram, bool lower) {
    return sr_index_atom{sr_substring_key(81, 3, lower ? 1 : 0, reinterpret_cast<const uint8_t*>(gram.data()),
                                          gram.size()),
                         gram.size(), 3, SR_TAG_TEXT, SR_ATOM_SUBSTRING, 0, 0, lower ? 1u : 0u};
  };
  const sr_index_atom atoms[] = {equal_atom(3), element_atom(5), gram_atom("abc", false), gram_atom("xyz", true),
                                 equal_atom(7), element_atom(8)};
  for (uint64_t id = 1; id <= 6; id++) r.add_shape(id, 81, nullptr, sr_cover{&atoms[id - 1], &one, 1, 0});
  using Row = TextRow;
  auto routed = [&](const Row& row, const Row* old_row, uint64_t token) {
    std::vector<uint64_t> ids;
    for (const sr_shape_ref& s : r.route(81, &row.view, old_row != nullptr ? &old_row->view : nullptr, true, token))
      ids.push_back(s.shape_id);
    return ids;
  };
  const Row a(3, 5, "..abc.."), old_a(7, 8, "..XYZ.."), other(9, 9, "nothing");
  EXPECT_TRUE(r.prefetch_rows(81, &a.view, &old_a.view, 31, true));
  // every key from the prefetch: other's view adds none
  EXPECT_EQ(routed(other, &other, 31), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(routed(other, &other, 31), std::vector<uint64_t>{});  // once
  EXPECT_EQ(r.counters().prefetched_keys_reused, 1u);
  // Not complete: the plain keys only, the rest from the view.
  EXPECT_TRUE(r.prefetch_rows(81, &a.view, nullptr, 32, false));
  EXPECT_EQ(routed(other, nullptr, 32), std::vector<uint64_t>{1});
  // A row without the lowered bytes its grams need: nothing kept, the route decides.
  Row unlowered(3, 5, "..abc..");
  unlowered.view.lowered = nullptr;
  EXPECT_FALSE(r.prefetch_rows(81, &unlowered.view, nullptr, 33, true));
  EXPECT_EQ(routed(other, nullptr, 33), std::vector<uint64_t>{});
}

// With the index large enough for its front filter, a route takes the filter
// words and bits its read-ahead made for the keys, with only the plain keys
// read ahead (an array column) or all of them, and of the new and the old row
// alike; after a rebuild replaced the filter in between, it makes them again
// (the old ones name another filter's words: most keys would be missed).
TEST(RouterRoute, ReadAheadFrontProbesFollowTheFilter) {
  shape_router::Router r;
  const uint32_t one = 1;
  auto add_equal = [&](uint64_t id, uint32_t relid, int64_t value) {
    sr_value v = int_value(value);
    const sr_index_atom atom{sr_index_key(relid, 1, SR_TAG_INT, &v), 0, 1, SR_TAG_INT, SR_ATOM_EQUAL, 0, 0, 0};
    r.add_shape(id, relid, nullptr, sr_cover{&atom, &one, 1, 0});
  };
  auto add_element = [&](uint64_t id, int64_t value) {
    sr_value v = int_value(value);
    const sr_index_atom atom{sr_index_key(78, 2, SR_TAG_INT, &v), 0, 2,
                             static_cast<uint8_t>(SR_TAG_INT | SR_TAG_ELEMENT_FLAG), SR_ATOM_ELEMENT, 0, 0, 0};
    r.add_shape(id, 78, nullptr, sr_cover{&atom, &one, 1, 0});
  };
  // 77: a plain column; 78: a plain column and an array column.
  uint64_t next_id = 1;
  for (int64_t v = 0; v < 10000; v++) add_equal(next_id++, 77, v);
  for (int64_t v = 0; v < 300; v++) add_equal(next_id++, 78, v);
  for (int64_t v = 0; v < 300; v++) add_element(next_id++, v);
  r.maintain(true);
  ASSERT_GT(r.index_stats().filter_bytes, 0u);
  struct Row {
    std::vector<sr_value> elements, values;
    sr_row_view view;
    Row(int64_t plain, std::vector<int64_t> array) : values(3) {
      for (int64_t e : array) elements.push_back(int_value(e));
      values[1] = int_value(plain);
      values[2].v.bytes = reinterpret_cast<const uint8_t*>(elements.data());
      values[2].len = static_cast<uint32_t>(elements.size());
      view = sr_row_view{values.data(), nullptr, nullptr, 0};
    }
    Row(int64_t plain, int64_t element) : Row(plain, std::vector<int64_t>{element}) {}
  };
  auto routed = [&](uint32_t relid, const Row& row, const Row& old_row, uint64_t token) {
    std::vector<uint64_t> ids;
    for (const sr_shape_ref& s : r.route(relid, &row.view, &old_row.view, true, token)) ids.push_back(s.shape_id);
    return ids;
  };
  uint64_t token = 0;
  const uint64_t reused = r.counters().prefetched_keys_reused;
  for (int round = 0; round < 6; round++) {
    const bool rebuild = round % 2 == 1;
    const int64_t v = 10 * round + 1;
    // 77: shapes v (new row) and v + 2 (old row), ids v + 1 and v + 3.
    const Row new_77(v, 0), old_77(v + 2, 0);
    ASSERT_TRUE(r.prefetch_rows(77, &new_77.view, &old_77.view, ++token));
    const uint64_t token_77 = token;
    // 78: its plain shapes are ids 10001.., its element shapes 10301..
    const Row new_78(v, v + 5), old_78(v + 7, v + 9);
    ASSERT_TRUE(r.prefetch_rows(78, &new_78.view, &old_78.view, ++token));
    if (rebuild) {
      // More keys: the new filter is larger, every key's word elsewhere.
      for (int64_t w = 0; w < 4000; w++) add_equal(next_id++, 77, 100000 + 4000 * round + w);
      r.maintain(true);
      ASSERT_EQ(r.index_stats().overlay_keys, 0u);
    }
    EXPECT_EQ(routed(77, new_77, old_77, token_77), (std::vector<uint64_t>{uint64_t(v + 1), uint64_t(v + 3)}))
        << "round " << round;
    EXPECT_EQ(routed(78, new_78, old_78, token),
              (std::vector<uint64_t>{uint64_t(10001 + v), uint64_t(10001 + v + 7), uint64_t(10301 + v + 5),
                                     uint64_t(10301 + v + 9)}))
        << "round " << round;
  }
  EXPECT_EQ(r.counters().prefetched_keys_reused, reused + 12);
  // Rows with keys no shape has but, every other change, the old row's plain
  // one, each after an INSERT with more elements: each key's probe is its own,
  // wherever the read-ahead and the route put the keys (another key's probe
  // would miss the present one).
  for (int64_t i = 0; i < 200; i++) {
    const bool present = i % 2 == 0;
    const Row insert(5000000 + i, std::vector<int64_t>{6000000 + i, 7000000 + i, 8000000 + i});
    ASSERT_TRUE(r.prefetch_rows(78, &insert.view, nullptr, ++token));
    EXPECT_TRUE(r.route(78, &insert.view, nullptr, true, token).empty());
    const Row new_78(1000000 + i, 2000000 + i), old_78(present ? i : 3000000 + i, 4000000 + i);
    ASSERT_TRUE(r.prefetch_rows(78, &new_78.view, &old_78.view, ++token));
    EXPECT_EQ(routed(78, new_78, old_78, token),
              present ? std::vector<uint64_t>{uint64_t(10001 + i)} : std::vector<uint64_t>{})
        << i;
  }
}

// The columns epoch changes with every change of some relation's index
// columns or of which of their counts are zero (the shell keeps what it
// derived from them while it stays), and never repeats, not even in a router
// made after another was destroyed.
TEST(RouterRoute, ColumnsEpochFollowsIndexColumns) {
  sr_router* router = nullptr;
  ASSERT_EQ(sr_router_create(&router), SR_OK);
  std::vector<uint64_t> seen = {sr_router_columns_epoch(router)};
  sr_value three = int_value(3);
  const uint64_t key = sr_index_key(77, 1, SR_TAG_INT, &three);
  void* previous = nullptr;
  ASSERT_EQ(sr_router_add_shape(router, 1, 77, nullptr, 1, SR_TAG_INT, &key, 1, &previous), SR_OK);
  seen.push_back(sr_router_columns_epoch(router));
  EXPECT_NE(seen[1], seen[0]);
  std::vector<sr_value> values(2);
  values[1] = three;
  const sr_row_view row{values.data(), nullptr, nullptr, 0};
  const sr_shape_ref* shapes = nullptr;
  size_t count = 0;
  ASSERT_EQ(sr_router_route(router, 77, &row, nullptr, 1, 0, &shapes, &count), SR_OK);
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(sr_router_columns_epoch(router), seen[1]);  // routing changes no column
  // Another shape keyed on the same column, and its drop, change only a count:
  // no row plan changes, so the epoch stays.
  sr_value four = int_value(4);
  const uint64_t key4 = sr_index_key(77, 1, SR_TAG_INT, &four);
  ASSERT_EQ(sr_router_add_shape(router, 2, 77, nullptr, 1, SR_TAG_INT, &key4, 1, &previous), SR_OK);
  EXPECT_EQ(sr_router_columns_epoch(router), seen[1]);
  ASSERT_EQ(sr_router_drop_shape(router, 2, &previous), SR_OK);
  EXPECT_EQ(sr_router_columns_epoch(router), seen[1]);
  ASSERT_EQ(sr_router_drop_shape(router, 1, &previous), SR_OK);
  seen.push_back(sr_router_columns_epoch(router));
  EXPECT_NE(seen[2], seen[1]);
  sr_router_destroy(router);
  ASSERT_EQ(sr_router_create(&router), SR_OK);
  const uint64_t fresh = sr_router_columns_epoch(router);
  EXPECT_EQ(std::find(seen.begin(), seen.end(), fresh), seen.end());
  sr_router_destroy(router);
}

// An integer key undone gives back the value it was made of, for every tag
// keyed as an integer, any relation and column: what the value sieve is filled
// with from keys alone.
TEST(RowKeys, IntegerKeysGiveBackTheirValues) {
  std::mt19937_64 rng(3);
  for (const uint8_t tag : {SR_TAG_INT, SR_TAG_BOOL, SR_TAG_DATE, SR_TAG_TIMESTAMP, SR_TAG_TIMESTAMPTZ}) {
    ASSERT_TRUE(shape_router::tag_keyed_as_int(tag)) << int{tag};
    for (int i = 0; i < 20000; i++) {
      const uint32_t relid = static_cast<uint32_t>(rng());
      const uint16_t attnum = static_cast<uint16_t>(1 + rng() % 1600);
      sr_value v{};
      v.v.i = i < 100 ? i - 50 : static_cast<int64_t>(rng());
      const uint64_t key = sr_index_key(relid, attnum, tag, &v);
      ASSERT_EQ(shape_router::int_value_of_key(relid, attnum, tag, key), static_cast<uint64_t>(v.v.i))
          << int{tag} << " " << v.v.i;
    }
  }
  for (const uint8_t tag : {SR_TAG_TEXT, SR_TAG_FLOAT, SR_TAG_NUMERIC, SR_TAG_UUID})
    EXPECT_FALSE(shape_router::tag_keyed_as_int(tag)) << int{tag};
}

// The sieve has every value added; it grows past its capacity while it keeps
// the values' hashes, and passes every value once it cannot.
TEST(RowKeys, ValueSieveHoldsEveryValueAndGrows) {
  using shape_router::ValueSieve;
  auto holds = [](const ValueSieve& s, uint64_t v, uint16_t attnum) {
    const ValueSieve::View* view = s.view();
    return view == nullptr || view->may_have(ValueSieve::hash(v, attnum));
  };
  ValueSieve sieve;
  EXPECT_FALSE(sieve.usable());  // never sized: nothing to answer with
  sieve.reset(100);
  ASSERT_TRUE(sieve.usable());
  const size_t first_bytes = sieve.bytes();
  for (uint64_t v = 0; v < 20000; v++) sieve.add(ValueSieve::hash(v * 7, 3));
  EXPECT_TRUE(sieve.usable());
  EXPECT_GT(sieve.bytes(), first_bytes);
  size_t passed = 0;
  for (uint64_t v = 0; v < 20000; v++) {
    ASSERT_TRUE(holds(sieve, v * 7, 3)) << v;
    passed += holds(sieve, v * 7 + 1, 3);  // no value of the sieve
  }
  EXPECT_LT(passed, 20000u / 8);  // about 1 in 16 pass
  // The same values on another column mostly do not pass.
  size_t other = 0;
  for (uint64_t v = 0; v < 20000; v++) other += holds(sieve, v * 7, 4);
  EXPECT_LT(other, 20000u / 8);
  // Past kMaxValues it gives up, and passes every value; so does one sized for more.
  ValueSieve big;
  big.reset(ValueSieve::kMaxValues / 2);
  for (uint64_t v = 0; v < ValueSieve::kMaxValues; v++) big.add(ValueSieve::hash(v, 1));
  EXPECT_TRUE(big.usable());
  big.add(ValueSieve::hash(ValueSieve::kMaxValues, 1));
  EXPECT_FALSE(big.usable());
  EXPECT_TRUE(holds(big, 12345678901, 1));
  big.reset(ValueSieve::kMaxValues + 1);
  EXPECT_FALSE(big.usable());
  big.reset(ValueSieve::kMaxValues);
  EXPECT_TRUE(big.usable());
  // A copy and a move answer from bits of their own.
  ValueSieve copy = sieve;
  ValueSieve moved = std::move(sieve);
  EXPECT_FALSE(sieve.usable());
  for (uint64_t v = 0; v < 20000; v++) {
    ASSERT_TRUE(holds(copy, v * 7, 3)) << v;
    ASSERT_TRUE(holds(moved, v * 7, 3)) << v;
  }
  EXPECT_NE(copy.view()->words, moved.view()->words);
  copy = big;
  EXPECT_EQ(copy.view()->shift, big.view()->shift);
  EXPECT_NE(copy.view()->words, big.view()->words);
}

}  // namespace
