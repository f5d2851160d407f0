// Tests' shortcut to the keys sr_router_route makes of one row: values given
// per index column (as the columns array orders them), put in a view by attnum.
#pragma once

#include <algorithm>
#include <vector>

#include "shape_router/row_keys.hpp"

inline shape_router::ChangeKeys row_view_keys(uint32_t relid, const sr_index_column* columns, size_t column_count,
                                              const sr_value* values) {
  uint16_t last = 0;
  for (size_t c = 0; c < column_count; c++)
    if (columns[c].attnum < SR_VIRTUAL_ATTNUM_BASE) last = std::max(last, columns[c].attnum);
  std::vector<sr_value> by_attnum(size_t{last} + 1);
  for (size_t c = 0; c < column_count; c++)
    if (columns[c].attnum < SR_VIRTUAL_ATTNUM_BASE) by_attnum[columns[c].attnum] = values[c];
  const sr_row_view row{by_attnum.data(), nullptr, nullptr, 0};
  shape_router::ChangeKeys keys;
  keys.add_row(relid, columns, column_count, row, nullptr, shape_router::KeyPart::kAll);
  return keys;
}
