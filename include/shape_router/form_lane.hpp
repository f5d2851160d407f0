// Scan shapes of one form, evaluated together. Shapes whose programs differ
// only in their constants (user_id = k OR priority < assignee_id, for many k)
// share the program's code; a lane keeps that code once and each shape's
// constants in a row of a table, and runs the code once per row version over
// the whole table: an instruction that reads no constant (a column against a
// column, a NULL test, AND/OR of such) runs once, one that reads constants
// runs as a tight loop down the column of constants. A shape's program with
// executor-evaluated parts cannot run here (the executor's part is as
// particular to it as its constants): FormLane::admits says which can.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shape_router/flat_map.hpp"
#include "shape_router/program.h"

namespace shape_router {

class FormLane {
 public:
  // A column a lane's programs read, with the tag its values are read with.
  struct Column {
    uint16_t attnum;
    uint8_t tag;  // an array column's: its element tag | SR_TAG_ELEMENT_FLAG
  };

  // Whether program (len bytes, from the catalog: not trusted) can run in a
  // lane: well formed (sr_program_check, against the column tags its own
  // instructions state), without FALLBACK, every column it reads read with one
  // tag (a column only NULL-tested states none: no). Fills columns then.
  // Programs of more than kMaxCode bytes of code run alone (admission looks at
  // every jump's skipped code).
  static constexpr size_t kMaxCode = 4096;
  static bool admits(const uint8_t* program, size_t len, std::vector<Column>& columns);

  // A lane for programs of program's form (admitted, reading columns); no member yet.
  FormLane(const uint8_t* program, size_t len, std::vector<Column> columns);

  const std::vector<Column>& columns() const noexcept { return columns_; }

  // Whether program (admitted) is of this lane's form: the same code and
  // constants' length.
  bool same_form(const uint8_t* program, size_t len) const noexcept;

  // Adds slot with program's constants (program: admitted, of this form).
  // Throws std::bad_alloc; adds nothing then.
  void add(uint32_t slot, const uint8_t* program);
  // Removes slot; false when it is not a member.
  bool remove(uint32_t slot) noexcept;

  size_t size() const noexcept { return slots_.size(); }
  uint32_t slot(size_t member) const noexcept { return slots_[member]; }

  // Runs the code on row (row[attnum] for each of the form's columns) for
  // every member: out[member] = SR_TRUE, SR_FALSE or SR_NULL, as
  // sr_program_eval would return for that member's program. out: size() bytes.
  void evaluate(const sr_value* row, uint8_t* out) const;

  size_t bytes() const noexcept {
    return code_.capacity() + constants_.capacity() + slots_.capacity() * sizeof(uint32_t);
  }

 private:
  std::vector<uint8_t> code_;       // the program's header and code, no constants
  std::vector<Column> columns_;
  size_t const_len_ = 0;            // each member's constants
  std::vector<uint32_t> slots_;     // members
  FlatMap member_of_;               // slot + 1 → its index in slots_
  std::vector<uint8_t> constants_;  // member i's at i * const_len_
  // One stack entry a program's depth, each a truth value for all members
  // (uniform: one value for all of them); scratch of evaluate().
  mutable std::vector<uint8_t> stack_;
};

}  // namespace shape_router
