// sr_decide_update over all sixteen (old, new) pairs, against the table in router.h.
#include "shape_router/router.h"

#include <gtest/gtest.h>

namespace {

TEST(UpdateDecision, EveryPairOfMatches) {
  const sr_row_match matches[] = {SR_ROW_NO, SR_ROW_YES, SR_ROW_ERROR, SR_ROW_DISABLED};
  // expected[old][new]
  const sr_update_outcome expected[4][4] = {
      {SR_UPDATE_NONE, SR_UPDATE_MOVE_IN, SR_UPDATE_ERROR, SR_UPDATE_DISABLED},
      {SR_UPDATE_MOVE_OUT, SR_UPDATE_UPDATE, SR_UPDATE_ERROR, SR_UPDATE_DISABLED},
      {SR_UPDATE_ERROR, SR_UPDATE_ERROR, SR_UPDATE_ERROR, SR_UPDATE_DISABLED},
      {SR_UPDATE_DISABLED, SR_UPDATE_DISABLED, SR_UPDATE_DISABLED, SR_UPDATE_DISABLED},
  };
  for (int o = 0; o < 4; o++)
    for (int n = 0; n < 4; n++)
      EXPECT_EQ(sr_decide_update(matches[o], matches[n]), expected[o][n]) << "old " << o << " new " << n;
}

}  // namespace
