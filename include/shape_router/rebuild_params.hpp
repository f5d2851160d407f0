// When an index kept as a static part plus the changes since its build (an
// overlay of additions, tombstones of drops) folds those changes into a new
// static part, and where that build runs. ShapeIndex and RangeColumn use it.
#pragma once

#include <cstddef>

namespace shape_router {

struct RebuildParams {
  // A rebuild is due once the changes since the last one reach 1/change_divisor
  // of the entries indexed: a rebuild, linear in the entries, then costs a
  // constant amount a change, and the overlay and tombstones, slower a lookup
  // than the static part, stay a small share of the index.
  size_t change_divisor;
  // ... and at least min_changes: a small index is not rebuilt every few changes.
  size_t min_changes;
  // Builds of this many entries or more run on a background thread: the caller
  // then pauses only for the snapshot and the install. Smaller builds run in
  // the caller, which waits for them (tens of milliseconds at most).
  size_t background_min_entries;
};

}  // namespace shape_router
