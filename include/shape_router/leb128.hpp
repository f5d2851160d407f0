// LEB128: an unsigned number in 7-bit groups, low group first, the high bit of
// each byte set when another follows. The shape store and the pending covers
// keep their small numbers so.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shape_router {

// Reads the number at p + pos and moves pos past it.
inline uint32_t read_leb128(const uint8_t* p, size_t& pos) noexcept {
  uint32_t value = 0;
  for (int shift = 0;; shift += 7) {
    const uint8_t byte = p[pos++];
    value |= static_cast<uint32_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
}

// Writes value at out (up to 5 bytes) and moves out past it.
inline void write_leb128(uint8_t*& out, uint32_t value) noexcept {
  while (value >= 0x80) {
    *out++ = static_cast<uint8_t>(value | 0x80);
    value >>= 7;
  }
  *out++ = static_cast<uint8_t>(value);
}

}  // namespace shape_router
