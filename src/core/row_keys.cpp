// A change's index keys from its rows' values (include/shape_router/row_keys.hpp),
// and the C API that makes single keys for the shell's compiler.
#include "shape_router/row_keys.hpp"
#include "shape_router/flat_map.hpp"
#include "shape_router/guarded.hpp"
#include "shape_router/range_index.hpp"

// Inlined: a key is hashed on every decoded change, and the library call costs
// more than the hash of 8 bytes. The values are the library's own.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {
namespace {

// index_key's seed: (relation, column, tag) select it.
inline uint64_t seed_of(uint32_t relid, uint16_t attnum, uint8_t tag) noexcept {
  return mix64((static_cast<uint64_t>(relid) << 24) ^ (static_cast<uint64_t>(attnum) << 8) ^ tag);
}

// A float's bits as keys hash them: equal values, equal bits.
inline uint64_t normalised_float_bits(double f) noexcept {
  if (f == 0) f = 0;                                                  // -0 = 0
  if (std::isnan(f)) f = std::numeric_limits<double>::quiet_NaN();    // NaN = NaN
  uint64_t bits;
  std::memcpy(&bits, &f, 8);
  return bits;
}

// index_key with its seed, inline: a row makes several. The normalised value is hashed.
inline uint64_t key_with_seed(uint8_t tag, const sr_value& value, uint64_t seed) noexcept {
  switch (tag) {
    case SR_TAG_FLOAT: {
      const uint64_t bits = normalised_float_bits(value.v.f);
      return XXH3_64bits_withSeed(&bits, 8, seed);
    }
    case SR_TAG_TEXT:
    case SR_TAG_BPCHAR:
    case SR_TAG_UUID:
    case SR_TAG_NUMERIC:
      return XXH3_64bits_withSeed(value.len > 0 ? value.v.bytes : reinterpret_cast<const uint8_t*>(""), value.len,
                                  seed);
    default: {  // integers of every width, bool, date, timestamps: int64
      const int64_t i = value.v.i;
      return XXH3_64bits_withSeed(&i, 8, seed);
    }
  }
}

// XXH3_64bits_withSeed of 8 bytes (XXH3_len_4to8_64b) in two parts: what
// depends on the seed alone, made once a column, and the rest, made a value
// (a row keys each of its columns on every change).
inline uint64_t xxh3_8_flip(uint64_t seed) noexcept {
  seed ^= static_cast<uint64_t>(XXH_swap32(static_cast<uint32_t>(seed))) << 32;
  return (XXH_readLE64(XXH3_kSecret + 8) ^ XXH_readLE64(XXH3_kSecret + 16)) - seed;
}
inline uint64_t xxh3_8(uint64_t bits, uint64_t flip) noexcept {
  if (!XXH_CPU_LITTLE_ENDIAN) bits = XXH_swap64(bits);  // the value's bytes, as the library reads them
  uint64_t h = ((bits << 32) | (bits >> 32)) ^ flip;  // the two 4-byte halves swapped
  h ^= XXH_rotl64(h, 49) ^ XXH_rotl64(h, 24);
  h *= 0x9FB21C651E98DF25ULL;
  h ^= (h >> 35) + 8;
  h *= 0x9FB21C651E98DF25ULL;
  return h ^ (h >> 28);
}

// The inverse of an odd number modulo 2^64 (Newton's iteration: each step
// doubles the bits that are right; an odd a is its own inverse to 3 bits).
constexpr uint64_t odd_inverse(uint64_t a) {
  uint64_t x = a;
  for (int i = 0; i < 5; i++) x *= 2 - a * x;
  return x;
}
static_assert(odd_inverse(0xff51afd7ed558ccdULL) * 0xff51afd7ed558ccdULL == 1);
// xxh3_8 undone, step by step: its xor-shifts and products undo as mix64's
// do. Its h ^ rotl(h, 49) ^ rotl(h, 24) is L = 1 + R^49 + R^24 in the
// rotation R, over GF(2); L^64 = 1 (squaring a sum squares each term, and
// R^64 = 1), so L^-1 = L^63 = L L^2 L^4 L^8 L^16 L^32, each L^(2^k) being
// 1 + R^(49 2^k) + R^(24 2^k).
constexpr uint64_t rotl64(uint64_t x, unsigned r) { return r == 0 ? x : (x << r) | (x >> (64 - r)); }
inline uint64_t xxh3_8_inverse(uint64_t key, uint64_t flip) noexcept {
  constexpr uint64_t kInverse = odd_inverse(0x9FB21C651E98DF25ULL);
  uint64_t h = key ^ (key >> 28) ^ (key >> 56);
  h *= kInverse;
  h ^= (h >> 35) + 8;  // (the top 34 bits, which it reads, are as before it)
  h *= kInverse;
  for (unsigned k = 0; k < 6; k++) h ^= rotl64(h, (49u << k) % 64) ^ rotl64(h, (24u << k) % 64);
  h ^= flip;
  uint64_t value = (h << 32) | (h >> 32);
  if (!XXH_CPU_LITTLE_ENDIAN) value = XXH_swap64(value);
  return value;
}

// Whether a plain value of tag is keyed as the 8-byte integer v.i (key_with_seed's default case).
inline bool step_key_is_int(uint8_t tag) noexcept {
  switch (tag) {
    case SR_TAG_TEXT:
    case SR_TAG_BPCHAR:
    case SR_TAG_UUID:
    case SR_TAG_NUMERIC:
    case SR_TAG_FLOAT:
      return false;
    default:
      return (tag & SR_TAG_ELEMENT_FLAG) == 0;
  }
}

// key_with_seed of a row's value, with the step's flip for 8-byte values.
inline uint64_t step_key(const RowPlan::Step& step, const sr_value& value) noexcept {
  if (step_key_is_int(step.tag)) return xxh3_8(static_cast<uint64_t>(value.v.i), step.flip);
  if (step.tag == SR_TAG_FLOAT) return xxh3_8(normalised_float_bits(value.v.f), step.flip);
  return key_with_seed(step.tag, value, step.seed);
}

inline uint64_t key_of(uint32_t relid, uint16_t attnum, uint8_t tag, const sr_value& value) noexcept {
  return key_with_seed(tag, value, seed_of(relid, attnum, tag));
}

// A prefix's key: the bytes hashed with a seed no value key of the column uses.
inline uint64_t prefix_key(uint32_t relid, uint16_t attnum, const uint8_t* bytes, size_t len) noexcept {
  const uint64_t seed =
      mix64((static_cast<uint64_t>(relid) << 24) ^ (static_cast<uint64_t>(attnum) << 8) ^ SR_TAG_TEXT) ^
      0x5052454649584b59ULL;  // "PREFIXKY"
  return XXH3_64bits_withSeed(len > 0 ? bytes : reinterpret_cast<const uint8_t*>(""), len, seed);
}

// A substring gram's key: its bytes (at most 8, the first in the lowest byte)
// and length, mixed with a seed of the column and whether the bytes were
// lowered; cheap, as a row has a key per window. Grams of up to 4 bytes keep
// the form catalogs written before longer grams hold.
inline uint64_t substring_seed(uint32_t relid, uint16_t attnum, bool lower) noexcept {
  return mix64((static_cast<uint64_t>(relid) << 24) ^ (static_cast<uint64_t>(attnum) << 8) ^ (lower ? 0xa5 : 0x5a)) ^
         0x535542535452474bULL;  // "SUBSTRGK"
}
// The key's parts fixed by seed and length, made once for a run of windows:
// key = mix64(base ^ word) + add. (A word of up to 4 bytes is below 2^32, so
// the length sits above it; longer grams add it after the mix.)
struct GramKeyForm {
  uint64_t base, add;
  GramKeyForm(uint64_t seed, size_t len) noexcept
      : base(len <= 4 ? seed ^ uint64_t{len} << 32 : seed ^ 0x4c4f4e474752414dULL),  // "LONGGRAM"
        add(len <= 4 ? 0 : len) {}
  uint64_t key(uint64_t word) const noexcept { return mix64(base ^ word) + add; }
};
inline uint64_t substring_word_key(uint64_t seed, uint64_t word, size_t len) noexcept {
  return GramKeyForm(seed, len).key(word);
}
// mix64 undone: its xor-shifts by 33 undo themselves, its products multiply back.
inline uint64_t unmix64(uint64_t key) noexcept {
  key ^= key >> 33;
  key *= odd_inverse(0xc4ceb9fe1a85ec53ULL);
  key ^= key >> 33;
  key *= odd_inverse(0xff51afd7ed558ccdULL);
  key ^= key >> 33;
  return key;
}
// pg_ascii_tolower as a table: 'A'..'Z' to 'a'..'z', every other byte kept.
struct AsciiLower {
  uint8_t of[256];
};
constexpr AsciiLower make_ascii_lower() {
  AsciiLower t{};
  for (int b = 0; b < 256; b++) t.of[b] = static_cast<uint8_t>(b >= 'A' && b <= 'Z' ? b + ('a' - 'A') : b);
  return t;
}
inline constexpr AsciiLower kAsciiLower = make_ascii_lower();

// The first len bytes of gram as a word (the first in the lowest byte).
inline uint64_t gram_word(const uint8_t* gram, size_t len) noexcept {
  uint64_t word = 0;
  for (size_t j = 0; j < len; j++) word |= uint64_t{gram[j]} << (8 * j);
  return word;
}

// pg_ascii_tolower of the 8 bytes of a word at once: 0x20 added to each byte
// in 'A'..'Z' (bytes with the high bit set are never in it).
inline uint64_t ascii_lower_word(uint64_t w) noexcept {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const uint64_t low7 = w & ~kHigh;
  const uint64_t above_at = low7 + (0x80 - 'A') * kOnes;      // high bit: byte >= 'A' (of its low 7 bits)
  const uint64_t above_z = low7 + (0x80 - 'Z' - 1) * kOnes;   // high bit: byte > 'Z'
  const uint64_t upper = above_at & ~above_z & ~w & kHigh;     // 'A'..'Z', high bit clear
  return w | (upper >> 2);
}
inline uint64_t substring_key(uint64_t seed, const uint8_t* gram, size_t len) noexcept {
  return substring_word_key(seed, gram_word(gram, len), len);
}

}  // namespace

uint64_t index_key(uint32_t relid, uint16_t attnum, uint8_t tag, const sr_value& value) {
  return key_of(relid, attnum, tag, value);
}

uint64_t gram_word_of_key(uint32_t relid, uint16_t attnum, bool lower, size_t len, uint64_t key) noexcept {
  const GramKeyForm form(substring_seed(relid, attnum, lower), len);
  return unmix64(key - form.add) ^ form.base;
}

bool tag_keyed_as_int(uint8_t tag) noexcept { return step_key_is_int(tag); }

uint64_t int_value_of_key(uint32_t relid, uint16_t attnum, uint8_t tag, uint64_t key) noexcept {
  return xxh3_8_inverse(key, xxh3_8_flip(seed_of(relid, attnum, tag)));
}

bool tag_key_exact(uint8_t tag) noexcept {
  switch (tag) {
    case SR_TAG_INT:
    case SR_TAG_BOOL:
    case SR_TAG_DATE:
    case SR_TAG_TIMESTAMP:
    case SR_TAG_TIMESTAMPTZ:
    case SR_TAG_FLOAT:
      return true;  // 8 bytes: XXH3's 4-to-8-byte path is a bijection for a given seed
    default:
      return false;
  }
}

namespace {

// One column's keys and probe from a plain (not array, not virtual) value.
template <typename PutKey, typename PutProbe>
__attribute__((always_inline)) inline void plain_keys(uint32_t relid, const RowPlan::Step& step, const sr_value& value,
                                                     PutKey&& put_key, PutProbe&& put_probe) {
  if (value.is_null) {
    // No equality, range or complement atom holds for a NULL: only NULL atoms.
    if (step.make & RowPlan::kNull) put_probe(sr_range_probe{0, step.attnum, 1, 0});
    return;
  }
  if (step.make & RowPlan::kKey) put_key(step_key(step, value), step.attnum);
  if (step.make & RowPlan::kPrefix) {
    // One key per registered prefix length the value is long enough for.
    for (uint64_t lengths = step.prefix_lengths; lengths != 0; lengths &= lengths - 1) {
      const size_t len = static_cast<size_t>(__builtin_ctzll(lengths)) + 1;
      if (len > value.len) break;
      put_key(prefix_key(relid, step.attnum, value.v.bytes, len),
              static_cast<uint16_t>(step.attnum | SR_PREFIX_KEY_FLAG));
    }
  }
  if (step.make & RowPlan::kRange) {
    put_probe(sr_range_probe{order_key(step.tag, value), step.attnum, 0, step.range_place});
  }
}

// sr_substring_keys' windows of bytes (lowered with Fold), each kept only when
// the filter passes it, a chunk of windows at a time: the chunk's bytes are
// copied (and lowered) once into a buffer with room for an 8-byte read at every
// window, whose word is then one load and a mask; room for the chunk's keys
// first, then the loop stores through local pointers (a store to out would make
// it reload its members). Grams of kSampledGramMin bytes or more are read at
// every other offset (gram_filter.hpp): a window of q - 1 bytes at an even
// offset that the short sieve passes has the q-byte windows there and one byte
// before checked, each window once (the one before a chunk's first offset
// belongs to the chunk before). Returns the windows kept.
template <bool Fold>
size_t filtered_grams(const GramFilter::View may, uint64_t seed, uint16_t flagged, unsigned lengths,
                      const uint8_t* bytes, size_t len, ChangeKeys& out) {
  constexpr size_t kChunk = 256;
  uint8_t buffer[kChunk + SR_SUBSTRING_GRAM - 1 + 8];
  size_t kept = 0;
  for (unsigned rest = lengths & ((1u << SR_SUBSTRING_GRAM) - 1); rest != 0; rest &= rest - 1) {
    const size_t q = static_cast<size_t>(__builtin_ctz(rest)) + 1;
    if (q > len) break;
    const size_t windows = len - q + 1;
    const uint64_t mask = q == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * q)) - 1;
    const GramKeyForm form(seed, q);
    for (size_t from = 0; from < windows; from += kChunk) {
      const size_t count = std::min(windows - from, kChunk);
      const size_t span = count + q - 1;  // the bytes of the chunk's windows
      if constexpr (Fold) {
        // Eight bytes a step: the last step's spare bytes are overwritten below.
        size_t j = 0;
        for (; j + 8 <= span; j += 8) {
          uint64_t w;
          std::memcpy(&w, bytes + from + j, 8);
          w = ascii_lower_word(w);
          std::memcpy(buffer + j, &w, 8);
        }
        for (; j < span; j++) buffer[j] = kAsciiLower.of[bytes[from + j]];
      } else {
        std::memcpy(buffer, bytes + from, span);
      }
      std::memset(buffer + span, 0, 8);
      out.make_room(count, 0);
      uint64_t* keys = out.keys.data() + out.key_count;
      uint16_t* attnums = out.key_attnums.data() + out.key_count;
      size_t held = 0;
      auto check = [&](size_t i) {
        const uint64_t word = XXH_readLE64(buffer + i) & mask;
        if (!may.sieve_has(word)) return;
        const uint64_t key = form.key(word);
        if (may.has(key)) {
          keys[held] = key;
          attnums[held++] = flagged;
        }
      };
      if (q >= kSampledGramMin) {
        const uint64_t short_mask = mask >> 8;
        for (size_t i = 0; i <= count; i += 2) {  // (span has the q - 1 bytes at count)
          if (!may.short_sieve_has(XXH_readLE64(buffer + i) & short_mask)) continue;
          if (i > 0) check(i - 1);
          if (i < count) check(i);
        }
      } else {
        for (size_t i = 0; i < count; i++) check(i);
      }
      out.key_count += held;
      kept += held;
    }
  }
  return kept;
}

// Appends the gram keys of text for the lengths asked (with a filter: those
// it may have); false past SR_GRAM_KEYS_MAX windows. A lowered value with
// ascii_fold holds the value's own bytes, lowered here as they are read.
bool append_grams(uint32_t relid, uint16_t attnum, bool lower, unsigned lengths, const sr_value& text,
                  const GramFilter* filter, ChangeKeys& out) {
  const uint8_t* bytes = text.v.bytes;
  const size_t len = text.len;
  const bool fold = lower && text.ascii_fold;
  size_t n = 0;  // windows: sr_substring_keys' count
  for (unsigned rest = lengths & ((1u << SR_SUBSTRING_GRAM) - 1); rest != 0; rest &= rest - 1) {
    const size_t q = static_cast<size_t>(__builtin_ctz(rest)) + 1;
    if (q > len) break;
    n += len - q + 1;
  }
  if (n > SR_GRAM_KEYS_MAX) return false;
  if (filter == nullptr) {
    std::vector<uint8_t> folded;
    if (fold) {
      folded.resize(len);
      for (size_t j = 0; j < len; j++) folded[j] = kAsciiLower.of[bytes[j]];
      bytes = folded.data();
    }
    out.make_room(n, 0);
    sr_substring_keys(relid, attnum, lower ? 1 : 0, lengths, bytes, len, out.keys.data() + out.key_count,
                      out.key_attnums.data() + out.key_count, n);
    out.key_count += n;
    return true;
  }
  const GramFilter::View may = filter->view();
  if (may.words == nullptr) {
    out.filtered_grams += n;  // no shape has a gram key
    return true;
  }
  const uint64_t seed = substring_seed(relid, attnum, lower);
  const uint16_t flagged = static_cast<uint16_t>(attnum | SR_SUBSTRING_KEY_FLAG);
  const size_t kept = fold ? filtered_grams<true>(may, seed, flagged, lengths, bytes, len, out)
                           : filtered_grams<false>(may, seed, flagged, lengths, bytes, len, out);
  out.filtered_grams += n - kept;
  return true;
}

// The step of an expression's result of tag in virtual column column.
RowPlan::Step expression_step(uint32_t relid, const sr_index_column& column, uint8_t tag) noexcept {
  const uint64_t seed = seed_of(relid, column.attnum, tag);
  RowPlan::Step step{seed, xxh3_8_flip(seed), 0, column.attnum, 0, tag, 0};
  if (column.shapes > 0 || column.complement_shapes > 0) step.make |= RowPlan::kKey;
  if (column.range_shapes > 0) step.make |= RowPlan::kRange;
  if (column.null_shapes > 0) step.make |= RowPlan::kNull;
  return step;
}

}  // namespace

bool values_identical(uint8_t tag, const sr_value& a, const sr_value& b) noexcept {
  if (a.is_null || b.is_null) return a.is_null == b.is_null;
  if (tag & SR_TAG_ELEMENT_FLAG) {
    if (a.len != b.len || a.has_null_element != b.has_null_element) return false;
    const auto* x = reinterpret_cast<const sr_value*>(a.v.bytes);
    const auto* y = reinterpret_cast<const sr_value*>(b.v.bytes);
    for (uint32_t i = 0; i < a.len; i++)
      if (!values_identical(static_cast<uint8_t>(tag & ~SR_TAG_ELEMENT_FLAG), x[i], y[i])) return false;
    return true;
  }
  switch (tag) {
    case SR_TAG_TEXT:
    case SR_TAG_BPCHAR:
    case SR_TAG_UUID:
    case SR_TAG_NUMERIC:
      return a.len == b.len && (a.len == 0 || std::memcmp(a.v.bytes, b.v.bytes, a.len) == 0);
    default:  // the same 8 bytes (a double's bits, too)
      return std::memcmp(&a.v, &b.v, sizeof(a.v)) == 0;
  }
}

void ChangeKeys::grow(size_t more_keys, size_t more_probes) {
  if (keys.size() < key_count + more_keys) {
    const size_t size = std::max(key_count + more_keys, 2 * keys.size());
    keys.resize(size);
    key_attnums.resize(size);
  }
  if (probes.size() < probe_count + more_probes) probes.resize(std::max(probe_count + more_probes, 2 * probes.size()));
}

void RowPlan::set_range_place(uint16_t attnum, uint32_t place) noexcept {
  for (RangeStep& step : range_steps)
    if (step.attnum == attnum) step.place = place;
  for (std::vector<Step>* steps : {&general_steps, &plain_steps, &variable_steps})
    for (Step& step : *steps)
      if (step.attnum == attnum) step.range_place = place;
}

void RowPlan::build(uint32_t relation, const sr_index_column* columns, size_t column_count) {
  relid = relation;
  step_count = 0;
  int_key_steps.clear();
  range_steps.clear();
  general_steps.clear();
  plain_steps.clear();
  variable_steps.clear();
  virtual_columns.clear();
  virtual_steps.clear();
  for (size_t c = 0; c < column_count; c++) {
    const sr_index_column& column = columns[c];
    if (column.attnum >= SR_VIRTUAL_ATTNUM_BASE) {
      virtual_columns.push_back(column);
      virtual_steps.push_back(expression_step(relid, column, column.tag));
      continue;
    }
    uint8_t make = 0;
    if (column.tag & SR_TAG_ELEMENT_FLAG) {
      // (a column only form lanes read: its value, no key)
      if (!(column.shapes == 0 && column.lane_shapes > 0)) make = kElements;
    } else {
      if (column.shapes > 0 || column.complement_shapes > 0) make |= kKey;
      if (column.prefix_lengths != 0 && column.tag == SR_TAG_TEXT) make |= kPrefix;
      if (column.range_shapes > 0) make |= kRange;
      if (column.null_shapes > 0) make |= kNull;
      if (column.substring_grams != 0 && column.tag == SR_TAG_TEXT) make |= kGrams;
    }
    if (make == 0) continue;  // nothing of a row's value is looked up
    const uint64_t seed = seed_of(relid, column.attnum, column.tag);
    const Step step{seed, xxh3_8_flip(seed), column.prefix_lengths, column.attnum, column.substring_grams,
                    column.tag, make};
    step_count++;
    if ((make & ~kNull) == kKey && step_key_is_int(column.tag)) {
      int_key_steps.push_back(IntKeyStep{step.flip, ValueSieve::salt(column.attnum), column.attnum, (make & kNull) != 0});
      continue;
    }
    if ((make & ~kNull) == kRange) {
      range_steps.push_back(RangeStep{column.attnum, column.tag, (make & kNull) != 0});
      continue;
    }
    general_steps.push_back(step);
    if (make & (kKey | kPrefix | kRange | kNull)) plain_steps.push_back(step);
    if (make & (kElements | kGrams)) variable_steps.push_back(step);
  }
}

void ChangeKeys::append(const ChangeKeys& other, size_t key_from, size_t key_to, size_t probe_from, size_t probe_to) {
  make_room(key_to - key_from, probe_to - probe_from);
  std::copy(other.keys.begin() + key_from, other.keys.begin() + key_to, keys.begin() + key_count);
  std::copy(other.key_attnums.begin() + key_from, other.key_attnums.begin() + key_to, key_attnums.begin() + key_count);
  std::copy(other.probes.begin() + probe_from, other.probes.begin() + probe_to, probes.begin() + probe_count);
  key_count += key_to - key_from;
  probe_count += probe_to - probe_from;
}

bool ChangeKeys::add_row(const RowPlan& plan, const sr_row_view& row, const sr_row_view* keyed, KeyPart part,
                         const GramFilter* grams, const ValueSieve::View* sieving) {
  const bool plain_only = part == KeyPart::kPlain;
  const bool variable_only = part == KeyPart::kVariable;
  const uint32_t relid = plan.relid;
  const size_t step_count = plan.step_count;
  // Room for every plain column's keys first (at most a value key and one per
  // prefix length a column): the loop writes through pointers and counts in
  // locals (through members, every store would reload them).
  const size_t bound = step_count * (1 + SR_PREFIX_MAX) + row.expression_count;
  make_room(bound, step_count + row.expression_count);
  uint64_t* k = keys.data();
  uint16_t* a = key_attnums.data();
  sr_range_probe* p = probes.data();
  size_t nk = key_count, np = probe_count;
  auto put_key = [&](uint64_t key, uint16_t attnum) {
    a[nk] = attnum;
    k[nk++] = key;
  };
  auto put_probe = [&](const sr_range_probe& probe) { p[np++] = probe; };
  // Element and gram keys, as many as the value has: through the members.
  auto variable = [&](auto&& append) {
    key_count = nk;
    const bool ok = append();
    make_room(bound, 0);  // the plain columns' room again, after them
    nk = key_count;
    k = keys.data();
    a = key_attnums.data();
    return ok;
  };
  size_t sieved_values = 0;
  // The integer keys and range probes, in a loop each; with Sieve, but for the
  // integer values the sieve has no bit for, no shape's keys (an instance of
  // its own: the test costs every row).
  auto int_keys_and_ranges = [&](auto with_sieve) {
    constexpr bool Sieve = decltype(with_sieve)::value;
    const ValueSieve::View sieve = Sieve ? *sieving : ValueSieve::View{};  // in registers: the loop stores
    size_t sieved_here = 0;
    // (a NULL has no key and no range: at most a NULL probe)
    for (const RowPlan::IntKeyStep& step : plan.int_key_steps) {
      const sr_value& value = row.values[step.attnum];
      if (value.is_null) {
        if (step.null_probe) put_probe(sr_range_probe{0, step.attnum, 1, 0});
        continue;
      }
      if (Sieve && !sieve.may_have(ValueSieve::salted_hash(static_cast<uint64_t>(value.v.i), step.sieve_salt))) {
        sieved_here++;
        continue;
      }
      a[nk] = step.attnum;
      k[nk++] = xxh3_8(static_cast<uint64_t>(value.v.i), step.flip);
    }
    sieved_values = sieved_here;
    for (const RowPlan::RangeStep& step : plan.range_steps) {
      const sr_value& value = row.values[step.attnum];
      if (value.is_null) {
        if (step.null_probe) put_probe(sr_range_probe{0, step.attnum, 1, 0});
        continue;
      }
      put_probe(sr_range_probe{order_key(step.tag, value), step.attnum, 0, step.place});
    }
  };
  if (!variable_only) {
    if (sieving == nullptr)
      int_keys_and_ranges(std::false_type{});
    else
      int_keys_and_ranges(std::true_type{});
  }
  const std::vector<RowPlan::Step>& part_steps =
      plain_only ? plan.plain_steps : variable_only ? plan.variable_steps : plan.general_steps;
  for (const RowPlan::Step& step : part_steps) {
    const sr_value& value = row.values[step.attnum];
    if (step.make & RowPlan::kElements) {
      // An array: its elements' keys (no atom holds for a NULL array).
      if (plain_only || value.is_null) continue;
      if (keyed != nullptr && values_identical(step.tag, value, keyed->values[step.attnum])) continue;
      variable([&] {
        make_room(value.len, 0);
        const auto* elements = reinterpret_cast<const sr_value*>(value.v.bytes);
        const uint8_t tag = static_cast<uint8_t>(step.tag & ~SR_TAG_ELEMENT_FLAG);
        for (uint32_t i = 0; i < value.len; i++) {
          key_attnums[key_count] = step.attnum;
          keys[key_count++] = key_of(relid, step.attnum, tag, elements[i]);
        }
        return true;
      });
      continue;
    }
    if (!variable_only) plain_keys(relid, step, value, put_key, put_probe);
    if (plain_only || !(step.make & RowPlan::kGrams) || value.is_null) continue;
    // Grams: never exact, so an old row's identical text adds nothing.
    if (keyed != nullptr && values_identical(step.tag, value, keyed->values[step.attnum])) continue;
    const bool ok = variable([&] {
      if ((step.substring_grams & 0xff) != 0 &&
          !append_grams(relid, step.attnum, false, step.substring_grams & 0xff, value, grams, *this))
        return false;
      return (step.substring_grams >> 8) == 0 ||
             (row.lowered != nullptr &&
              append_grams(relid, step.attnum, true, step.substring_grams >> 8, row.lowered[step.attnum], grams,
                           *this));
    });
    if (!ok) return false;
  }
  if (!plain_only) {
    for (size_t e = 0; e < row.expression_count; e++) {
      const sr_expression_value& result = row.expressions[e];
      size_t c = 0;
      while (c < plan.virtual_columns.size() && plan.virtual_columns[c].attnum != result.attnum) c++;
      if (c == plan.virtual_columns.size()) continue;
      // Keyed with the expression's own tag (the column's is some expression's).
      const RowPlan::Step* step = &plan.virtual_steps[c];
      RowPlan::Step typed;
      if (result.tag != step->tag) {
        typed = expression_step(relid, plan.virtual_columns[c], result.tag);
        step = &typed;
      }
      plain_keys(relid, *step, result.value, put_key, put_probe);
    }
  }
  key_count = nk;
  probe_count = np;
  if (sieving != nullptr) sieved += sieved_values;
  return true;
}

}  // namespace shape_router

extern "C" {

uint64_t sr_index_key(uint32_t relid, uint16_t attnum, uint8_t tag, const sr_value* value) noexcept {
  return shape_router::index_key(relid, attnum, tag, *value);
}

uint64_t sr_prefix_key(uint32_t relid, uint16_t attnum, const uint8_t* bytes, size_t len) noexcept {
  return shape_router::prefix_key(relid, attnum, bytes, len);
}

uint64_t sr_substring_key(uint32_t relid, uint16_t attnum, int lower, const uint8_t* gram, size_t len) noexcept {
  return shape_router::substring_key(shape_router::substring_seed(relid, attnum, lower != 0), gram,
                                     std::min<size_t>(len, SR_SUBSTRING_GRAM));
}

size_t sr_substring_keys(uint32_t relid, uint16_t attnum, int lower, unsigned lengths, const uint8_t* bytes,
                         size_t len, uint64_t* keys, uint16_t* key_attnums, size_t room) noexcept {
  const uint64_t seed = shape_router::substring_seed(relid, attnum, lower != 0);
  const uint16_t flagged = static_cast<uint16_t>(attnum | SR_SUBSTRING_KEY_FLAG);
  size_t n = 0;
  for (size_t q = 1; q <= SR_SUBSTRING_GRAM; q++) {
    if (((lengths >> (q - 1)) & 1) == 0 || q > len) continue;
    const size_t windows = len - q + 1;
    const size_t fit = n >= room ? 0 : std::min(windows, room - n);  // the rest only counted
    // The window slides a byte at a time in a register: no reload of the bytes
    // just stored (a store-forwarding stall per window).
    const unsigned top = static_cast<unsigned>(8 * (q - 1));
    const shape_router::GramKeyForm form(seed, q);
    uint64_t word = fit > 0 ? shape_router::gram_word(bytes, q) : 0;
    for (size_t i = 0; i < fit; i++) {
      keys[n + i] = form.key(word);
      if (i + 1 < fit) word = word >> 8 | uint64_t{bytes[i + q]} << top;
    }
    if (key_attnums != nullptr)
      for (size_t i = 0; i < fit; i++) key_attnums[n + i] = flagged;
    n += windows;
  }
  return n;
}

int sr_key_exact(uint8_t tag) noexcept { return shape_router::tag_key_exact(tag) ? 1 : 0; }

int sr_tag_order(uint8_t tag) noexcept { return shape_router::tag_order(tag); }

uint64_t sr_order_key(uint8_t tag, const sr_value* value) noexcept { return shape_router::order_key(tag, *value); }

}  // extern "C"
