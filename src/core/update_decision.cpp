// What an UPDATE's record is for one shape, from its old and new row's matches
// (the table in router.h).
#include "shape_router/router.h"

sr_update_outcome sr_decide_update(sr_row_match old_row, sr_row_match new_row) noexcept {
  if (old_row == SR_ROW_DISABLED || new_row == SR_ROW_DISABLED) return SR_UPDATE_DISABLED;
  if (old_row == SR_ROW_ERROR || new_row == SR_ROW_ERROR) return SR_UPDATE_ERROR;
  if (old_row == SR_ROW_YES) return new_row == SR_ROW_YES ? SR_UPDATE_UPDATE : SR_UPDATE_MOVE_OUT;
  return new_row == SR_ROW_YES ? SR_UPDATE_MOVE_IN : SR_UPDATE_NONE;
}
