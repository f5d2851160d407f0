// The plugin's `shard` option (include/shape_router/shard.h).
#include "shape_router/shard.h"

#include "shape_router/flat_map.hpp"

#include <cstdint>

namespace {

uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + shape_router::kGoldenGamma;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Reads blanks, one decimal number up to `limit`, blanks; false on anything else.
bool parse_number(const char*& pos, uint64_t limit, uint64_t* out) {
  while (*pos == ' ' || *pos == '\t') ++pos;
  uint64_t value = 0;
  bool digits = false;
  while (*pos >= '0' && *pos <= '9') {
    value = value * 10 + static_cast<uint64_t>(*pos - '0');
    if (value > limit) return false;
    digits = true;
    ++pos;
  }
  while (*pos == ' ' || *pos == '\t') ++pos;
  *out = value;
  return digits;
}

}  // namespace

extern "C" {

uint32_t sr_shard_of(uint64_t shape_id, uint32_t count) noexcept {
  return count <= 1 ? 0 : static_cast<uint32_t>(splitmix64(shape_id) % count);
}

sr_status sr_parse_shard(const char* text, uint32_t* index, uint32_t* count) noexcept {
  if (text == nullptr) return SR_INVALID_ARGUMENT;
  const char* pos = text;
  uint64_t i = 0;
  uint64_t n = 0;
  if (!parse_number(pos, SR_SHARD_MAX_COUNT, &i) || *pos != '/') return SR_INVALID_ARGUMENT;
  ++pos;
  if (!parse_number(pos, SR_SHARD_MAX_COUNT, &n) || *pos != '\0') return SR_INVALID_ARGUMENT;
  if (n < 1 || i >= n) return SR_INVALID_ARGUMENT;
  *index = static_cast<uint32_t>(i);
  *count = static_cast<uint32_t>(n);
  return SR_OK;
}

}  // extern "C"
