// How the router stores a shape's definition (sr_shape_spec) as bytes, and
// reads it back: a header of four LEB128 numbers (program length, fallback
// text length with its NUL, WHERE attnum count, projected column count + 1),
// then the program, the attnums (int16 each) and the fallback text. The
// program's constants are the shape's own bytes: shapes whose definitions
// differ only there share the rest (Router::add_shape).
#ifndef SHAPE_ROUTER_SHAPE_SPEC_HPP
#define SHAPE_ROUTER_SHAPE_SPEC_HPP

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shape_router/router.h"

namespace shape_router {

// Encodes spec into out (replacing it); sets where the shape's own bytes are
// (own_offset SR_BLOB_UNSHARED: all of them, as for a shape with executor-
// evaluated parts, whose text is as particular to it as its constants).
// Throws std::invalid_argument for a spec that cannot be stored.
void encode_shape_spec(const sr_shape_spec& spec, std::vector<uint8_t>& out, size_t* own_offset, size_t* own_len);

// Reads bytes written by encode_shape_spec. The attnums are copied into the
// two vectors (the bytes are not aligned for int16); the program and the
// fallback text point into bytes. Returns false for bytes that are not such
// an encoding.
bool decode_shape_spec(const uint8_t* bytes, size_t len, sr_shape_spec* out, std::vector<int16_t>& where_attnums,
                       std::vector<int16_t>& column_attnums);

}  // namespace shape_router

#endif
