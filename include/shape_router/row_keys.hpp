// A change's index keys, made by the core from the rows' converted values
// (sr_row_view): equality, prefix, array element and substring gram keys, and
// the range and NULL probes, as the relation's index columns ask for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shape_router/gram_filter.hpp"
#include "shape_router/program.h"
#include "shape_router/value_sieve.hpp"

namespace shape_router {

// The index key of a value of column attnum of relation relid: a 64-bit hash of
// the value normalised as the VM compares it (so values equal under the type's =
// hash alike: int2/int4/int8 as int64, -0 as 0, every NaN alike, char(n) without
// trailing blanks, numeric without scale).
uint64_t index_key(uint32_t relid, uint16_t attnum, uint8_t tag, const sr_value& value);
// The window word (the gram's len bytes, the first in the lowest byte) whose
// sr_substring_key of (relid, attnum, lower) is key: what the gram filter's
// sieve is addressed by, from a substring atom's key.
uint64_t gram_word_of_key(uint32_t relid, uint16_t attnum, bool lower, size_t len, uint64_t key) noexcept;
// Whether index_key is one-to-one on the values of tag (sr_key_exact).
bool tag_key_exact(uint8_t tag) noexcept;
// Whether index_key hashes a value of tag as its 8-byte integer v.i (integers
// of every width, bool, date, timestamps).
bool tag_keyed_as_int(uint8_t tag) noexcept;
// The v.i whose index_key of (relid, attnum, tag) is key, for a tag keyed as
// an integer: that hash undone.
uint64_t int_value_of_key(uint32_t relid, uint16_t attnum, uint8_t tag, uint64_t key) noexcept;

// What add_row makes of each of a relation's index columns, decided once per
// set of columns instead of on every row: the steps of the columns a row has
// keys or probes from, in column order, each with its key seed.
struct RowPlan {
  enum : uint8_t {
    kKey = 1,        // an equality or complement key of the value
    kPrefix = 2,     // a key per registered prefix length
    kRange = 4,      // a range probe of the value's order key
    kNull = 8,       // a NULL probe when the value is NULL
    kGrams = 16,     // substring gram keys
    kElements = 32,  // an array: its elements' keys
  };
  struct Step {
    uint64_t seed;            // index_key's seed of (relation, column, tag)
    uint64_t flip;            // what an 8-byte value's key takes from the seed alone
    uint64_t prefix_lengths;  // as sr_index_column's
    uint16_t attnum;
    uint16_t substring_grams;  // as sr_index_column's
    uint8_t tag;
    uint8_t make;            // k* bits
    uint32_t range_place = 0;  // sr_range_probe.place of its range probes
  };
  // The commonest steps, apart, each kind in a loop of its own without the
  // general step's tests: an 8-byte integer-like value's key (kKey of INT,
  // BOOL, DATE, TIMESTAMP, TIMESTAMPTZ), and a range probe (kRange); either
  // with a NULL probe for a NULL value (kNull) or not.
  struct IntKeyStep {
    uint64_t flip;
    uint64_t sieve_salt;  // ValueSieve::salt(attnum)
    uint16_t attnum;
    bool null_probe;
  };
  struct RangeStep {
    uint16_t attnum;
    uint8_t tag;
    bool null_probe;
    uint32_t place = 0;  // sr_range_probe.place
  };
  uint32_t relid = 0;
  size_t step_count = 0;  // of every kind: a row's room for keys and probes
  std::vector<IntKeyStep> int_key_steps;
  std::vector<RangeStep> range_steps;
  // The other steps with keys of each KeyPart (kAll: all of them; kPlain: a
  // value key, prefixes, range and NULL probes; kVariable: elements or grams),
  // in steps' order: a pass for one part reads only its own.
  std::vector<Step> general_steps, plain_steps, variable_steps;
  std::vector<sr_index_column> virtual_columns;  // keyed from a row's expressions
  std::vector<Step> virtual_steps;  // each one's step for a result of the column's own tag

  RowPlan() = default;
  RowPlan(uint32_t relid, const sr_index_column* columns, size_t column_count) { build(relid, columns, column_count); }
  void build(uint32_t relid, const sr_index_column* columns, size_t column_count);
  // Gives the range probes of attnum's steps place (sr_range_probe.place).
  void set_range_place(uint16_t attnum, uint32_t place) noexcept;
};

// The keys and probes of a change's rows, the new row's first: keys[0,
// key_count) and probes[0, probe_count). The vectors are storage kept across
// changes (sized up, never down), written through raw pointers.
// Which of a row's keys add_row makes: all; the plain columns' alone (a
// value's key, prefixes, range and NULL probes: what a prefetch can make from
// the values by themselves); or the rest (array elements, grams, expressions).
enum class KeyPart : uint8_t { kAll, kPlain, kVariable };


struct ChangeKeys {
  std::vector<uint64_t> keys;
  std::vector<uint16_t> key_attnums;
  std::vector<sr_range_probe> probes;
  size_t key_count = 0, probe_count = 0;
  size_t old_keys_from = 0, old_probes_from = 0;
  // Gram keys left out because the gram filter of add_row said no shape has them.
  size_t filtered_grams = 0;
  // Integer values add_row's sieve said no shape is keyed on (no key made).
  size_t sieved = 0;

  void clear() noexcept { key_count = probe_count = old_keys_from = old_probes_from = filtered_grams = sieved = 0; }
  // What follows is the old row's.
  void start_old_row() noexcept {
    old_keys_from = key_count;
    old_probes_from = probe_count;
  }
  // Appends the keys of one row version for columns (the relation's index
  // columns). keyed: the change's other row, already keyed: its identical
  // array and text values add no element or gram keys again. part: which
  // keys (KeyPart). False when the row has more gram keys than
  // SR_GRAM_KEYS_MAX or lacks the lowered bytes a column asks for: its keys
  // cannot be trusted.
  // grams: when given, only the gram keys it may have are kept (the rest
  // counted in filtered_grams): most of a text's windows are no shape's.
  // sieve: when given, no key of an integer value it has no bit for (no
  // shape's key: counted in sieved).
  bool add_row(const RowPlan& plan, const sr_row_view& row, const sr_row_view* keyed, KeyPart part,
               const GramFilter* grams = nullptr, const ValueSieve::View* sieve = nullptr);
  // The same with a plan made for this call.
  bool add_row(uint32_t relid, const sr_index_column* columns, size_t column_count, const sr_row_view& row,
               const sr_row_view* keyed, KeyPart part) {
    return add_row(RowPlan(relid, columns, column_count), row, keyed, part);
  }
  // Appends other's keys [key_from, key_to) and probes [probe_from, probe_to).
  void append(const ChangeKeys& other, size_t key_from, size_t key_to, size_t probe_from, size_t probe_to);
  // Room for this many more keys and probes (inline: every row asks).
  void make_room(size_t more_keys, size_t more_probes) {
    if (keys.size() < key_count + more_keys || probes.size() < probe_count + more_probes) grow(more_keys, more_probes);
  }

 private:
  void grow(size_t more_keys, size_t more_probes);
};

// Whether two values of tag (an array's: tag with SR_TAG_ELEMENT_FLAG) are the
// same, byte for byte.
bool values_identical(uint8_t tag, const sr_value& a, const sr_value& b) noexcept;

}  // namespace shape_router
