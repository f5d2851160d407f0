// Decoding of sr_encode_decimal's bytes (internal to the core).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace shape_router {

// The decimal text of an encoded numeric value, for listings; "?" when the bytes
// are not such an encoding.
std::string decode_decimal(const uint8_t* p, size_t len);

}  // namespace shape_router
