#include "shape_router/shape_spec.hpp"

#include <cstring>
#include <stdexcept>

#include "shape_router/leb128.hpp"
#include "shape_router/program.h"

namespace shape_router {

namespace {

size_t leb128_len(uint32_t value) noexcept {
  size_t len = 1;
  while (value >= 0x80) {
    value >>= 7;
    len++;
  }
  return len;
}

bool get_leb128(const uint8_t*& pos, const uint8_t* end, uint32_t* value) {
  *value = 0;
  for (int shift = 0; shift < 35 && pos < end; shift += 7) {
    const uint8_t byte = *pos++;
    *value |= static_cast<uint32_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

uint8_t* put_bytes(uint8_t* out, const void* bytes, size_t len) noexcept {
  if (len > 0) std::memcpy(out, bytes, len);
  return out + len;
}

}  // namespace

void encode_shape_spec(const sr_shape_spec& spec, std::vector<uint8_t>& out, size_t* own_offset, size_t* own_len) {
  const size_t fallback_len = spec.fallback_text != nullptr ? std::strlen(spec.fallback_text) + 1 : 0;
  if ((spec.program_len > 0 && spec.program == nullptr) || (spec.where_count > 0 && spec.where_attnums == nullptr) ||
      (spec.column_count > 0 && spec.column_attnums == nullptr) || spec.column_count < -1 ||
      fallback_len > UINT32_MAX / 2 || spec.program_len > UINT32_MAX / 2 || spec.where_count > INT16_MAX ||
      spec.column_count > INT16_MAX)
    throw std::invalid_argument("shape spec");
  // Sized once, then written through a pointer: a load encodes every shape.
  const uint32_t columns_plus_one = static_cast<uint32_t>(spec.column_count + 1);
  const size_t column_count = spec.column_count > 0 ? static_cast<size_t>(spec.column_count) : 0;
  const size_t header_len = leb128_len(spec.program_len) + leb128_len(static_cast<uint32_t>(fallback_len)) +
                            leb128_len(spec.where_count) + leb128_len(columns_plus_one);
  out.resize(header_len + spec.program_len + 2 * (size_t{spec.where_count} + column_count) + fallback_len);
  uint8_t* p = out.data();
  write_leb128(p, spec.program_len);
  write_leb128(p, static_cast<uint32_t>(fallback_len));
  write_leb128(p, spec.where_count);
  write_leb128(p, columns_plus_one);
  const size_t program_offset = header_len;
  p = put_bytes(p, spec.program, spec.program_len);
  p = put_bytes(p, spec.where_attnums, 2 * size_t{spec.where_count});
  p = put_bytes(p, spec.column_attnums, 2 * column_count);
  put_bytes(p, spec.fallback_text, fallback_len);

  *own_offset = SR_BLOB_UNSHARED;
  *own_len = 0;
  if (fallback_len > 0) return;
  size_t constants = 0, constants_len = 0;
  if (spec.program_len == 0)
    *own_offset = 0;  // no WHERE: the whole definition is shared
  else if (sr_program_constants(spec.program, spec.program_len, &constants, &constants_len) == SR_OK) {
    *own_offset = program_offset + constants;
    *own_len = constants_len;
  }
}

bool decode_shape_spec(const uint8_t* bytes, size_t len, sr_shape_spec* out, std::vector<int16_t>& where_attnums,
                       std::vector<int16_t>& column_attnums) {
  const uint8_t* pos = bytes;
  const uint8_t* end = bytes + len;
  uint32_t program_len, fallback_len, where_count, columns_plus_one;
  if (!get_leb128(pos, end, &program_len) || !get_leb128(pos, end, &fallback_len) ||
      !get_leb128(pos, end, &where_count) || !get_leb128(pos, end, &columns_plus_one))
    return false;
  const uint64_t column_count = columns_plus_one == 0 ? 0 : columns_plus_one - 1;
  const uint64_t need = uint64_t{program_len} + 2 * (uint64_t{where_count} + column_count) + fallback_len;
  if (need != static_cast<uint64_t>(end - pos)) return false;
  if (fallback_len > 0 && end[-1] != '\0') return false;
  out->program = program_len > 0 ? pos : nullptr;
  out->program_len = program_len;
  pos += program_len;
  where_attnums.resize(where_count);
  if (where_count > 0) std::memcpy(where_attnums.data(), pos, 2 * size_t{where_count});
  pos += 2 * size_t{where_count};
  column_attnums.resize(column_count);
  if (column_count > 0) std::memcpy(column_attnums.data(), pos, 2 * column_count);
  pos += 2 * column_count;
  out->where_attnums = where_attnums.data();
  out->where_count = where_count;
  out->column_attnums = column_attnums.data();
  out->column_count = static_cast<int32_t>(columns_plus_one) - 1;
  out->fallback_text = fallback_len > 0 ? reinterpret_cast<const char*>(pos) : nullptr;
  return true;
}

}  // namespace shape_router
