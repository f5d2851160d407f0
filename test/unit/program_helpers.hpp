// Helpers of the program unit tests: programs and builders that free
// themselves, row values in exactly-sized buffers (so that the .asan build
// catches any overread), and a program built, validated and run in one call.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shape_router/program.h"

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();
const double kDenorm = std::numeric_limits<double>::denorm_min();

inline std::string Bytes(const char* p, size_t n) { return std::string(p, n); }

// A finished program in the malloc'ed, exactly-sized buffer sr_builder_finish returns.
class Program {
 public:
  Program() = default;
  Program(uint8_t* bytes, size_t len) : bytes_(bytes), len_(len) {}
  Program(Program&& o) noexcept : bytes_(o.bytes_), len_(o.len_) {
    o.bytes_ = nullptr;
    o.len_ = 0;
  }
  Program& operator=(Program&& o) noexcept {
    std::swap(bytes_, o.bytes_);
    std::swap(len_, o.len_);
    return *this;
  }
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  ~Program() { std::free(bytes_); }
  const uint8_t* data() const { return bytes_; }
  size_t size() const { return len_; }
  std::vector<uint8_t> vec() const { return std::vector<uint8_t>(bytes_, bytes_ + len_); }
  explicit operator bool() const { return bytes_ != nullptr; }

 private:
  uint8_t* bytes_ = nullptr;
  size_t len_ = 0;
};

class Builder {
 public:
  Builder() { EXPECT_EQ(sr_builder_create(&b_), SR_OK); }
  ~Builder() { sr_builder_destroy(b_); }
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;
  operator sr_program_builder*() const { return b_; }
  // An empty Program when finish fails.
  Program finish(uint8_t fallback_count = 0, sr_status* status = nullptr) {
    uint8_t* bytes = reinterpret_cast<uint8_t*>(this);  // must be overwritten
    size_t len = 12345;
    sr_status st = sr_builder_finish(b_, fallback_count, &bytes, &len);
    if (status != nullptr) *status = st;
    if (st != SR_OK) {
      EXPECT_EQ(bytes, nullptr);
      EXPECT_EQ(len, 0u);
      return Program();
    }
    EXPECT_NE(bytes, nullptr);
    return Program(bytes, len);
  }

 private:
  sr_program_builder* b_ = nullptr;
};

inline sr_value IntV(int64_t i) {
  sr_value v{};
  v.v.i = i;
  return v;
}
inline sr_value FloatV(double f) {
  sr_value v{};
  v.v.f = f;
  return v;
}
inline sr_value NullV() {
  sr_value v{};
  v.is_null = 1;
  return v;
}
// Constants only: the builder copies them. The bytes stay owned by s.
inline sr_value ConstBytes(const std::string& s) {
  sr_value v{};
  v.v.bytes = reinterpret_cast<const uint8_t*>(s.data());
  v.len = static_cast<uint32_t>(s.size());
  return v;
}

// Owns exactly-sized heap copies of row strings, so any overread is caught.
class Store {
 public:
  sr_value bytes(const std::string& s) {
    bufs_.emplace_back(new uint8_t[s.size()]);
    if (!s.empty()) std::memcpy(bufs_.back().get(), s.data(), s.size());
    sr_value v{};
    v.v.bytes = bufs_.back().get();
    v.len = static_cast<uint32_t>(s.size());
    return v;
  }

 private:
  std::vector<std::unique_ptr<uint8_t[]>> bufs_;
};

// Records the fallback calls and answers them from results[index].
struct Fallbacks {
  std::vector<int> results;
  std::vector<uint16_t> calls;
  static int fn(void* arg, uint16_t index) {
    Fallbacks* self = static_cast<Fallbacks*>(arg);
    self->calls.push_back(index);
    return index < self->results.size() ? self->results[index] : SR_STOP;
  }
};

using Tags = std::vector<uint8_t>;  // Tags[attnum]; [0] unused
using Calls = std::vector<uint16_t>;

inline std::string Disassemble(const uint8_t* program) {
  size_t need = sr_program_disassemble(program, nullptr, 0);
  std::string out(need, '\0');
  EXPECT_EQ(sr_program_disassemble(program, &out[0], need), need);
  out.resize(need - 1);
  return out;
}

// Builds with build(b), validates against tags (natts = tags.size() - 1) and
// evaluates on row (row[0] unused). -1 when any step fails.
template <typename Build>
int RunProgram(Build build, const Tags& tags, const std::vector<sr_value>& row, Fallbacks* fb = nullptr,
        uint8_t fallback_count = 0) {
  Builder b;
  build(static_cast<sr_program_builder*>(b));
  Program p = b.finish(fallback_count);
  if (!p) {
    ADD_FAILURE() << "finish failed";
    return -1;
  }
  char err[160] = "";
  sr_status st = sr_program_validate(p.data(), p.size(), tags.data(), static_cast<uint16_t>(tags.size() - 1),
                                     fallback_count, err, sizeof err);
  if (st != SR_OK) {
    ADD_FAILURE() << "validate: " << err;
    return -1;
  }
  EXPECT_EQ(row.size(), tags.size());
  return sr_program_eval(p.data(), row.data(), fb != nullptr ? &Fallbacks::fn : nullptr, fb);
}

// The truth of "a op b" given a three-way comparison c of two non-NULL values.
inline int OpTruth(int op, int c) {
  bool r = false;
  switch (op) {
    case SR_OP_EQ:
      r = c == 0;
      break;
    case SR_OP_NE:
    case SR_OP_DISTINCT:
      r = c != 0;
      break;
    case SR_OP_LT:
      r = c < 0;
      break;
    case SR_OP_LE:
      r = c <= 0;
      break;
    case SR_OP_GT:
      r = c > 0;
      break;
    case SR_OP_GE:
      r = c >= 0;
      break;
  }
  return r ? SR_TRUE : SR_FALSE;
}

struct Validation {
  sr_status status;
  std::string message;
};

inline Validation Validate(const std::vector<uint8_t>& bytes, const Tags& tags, uint16_t natts,
                           uint8_t fallback_count) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size()]);  // exact size: overreads are caught
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  char err[200];
  std::memset(err, 'X', sizeof err);
  err[sizeof err - 1] = '\0';
  sr_status st = sr_program_validate(copy.get(), bytes.size(), tags.data(), natts, fallback_count, err, sizeof err);
  return {st, st == SR_OK ? std::string() : std::string(err)};
}

inline void ExpectRejected(const Validation& v, const char* what) {
  EXPECT_EQ(v.status, SR_INVALID_ARGUMENT) << what;
  EXPECT_FALSE(v.message.empty()) << what;
  EXPECT_EQ(v.message.find('X'), std::string::npos) << what << ": " << v.message;
}

}  // namespace
