// See include/shape_router/shape_store.hpp.
#include "shape_router/shape_store.hpp"

#include "shape_router/router.h"
#include "shape_router/huge_pages.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {

uint32_t ShapeStore::add(uint16_t column, uint32_t relid, const uint8_t* blob, size_t blob_len, size_t own_offset,
                         size_t own_len) {
  if (blob_len > UINT32_MAX / 2 - 16 || bytes_.size() + blob_len + 16 > UINT32_MAX)
    throw std::invalid_argument("shape too large");
  if (own_offset != SR_BLOB_UNSHARED && (own_offset > blob_len || own_len > blob_len - own_offset))
    throw std::invalid_argument("own bytes outside the blob");
  const size_t offset = bytes_.size();
  int64_t form = -1;
  try {
    if (own_offset != SR_BLOB_UNSHARED && blob_len > 0) form = acquire_form(blob, blob_len, own_offset, own_len, column, relid);
    uint8_t header[5 + 5 + 4];
    uint8_t* h = header;
    const uint8_t* kept = blob;
    size_t kept_len = blob_len;
    if (form >= 0) {
      kept = blob + own_offset;
      kept_len = own_len;
      while (kept_len > 0 && kept[kept_len - 1] == 0) kept_len--;
      write_leb128(h, static_cast<uint32_t>(form) << 1 | 1);  // form < 2^30
      write_leb128(h, static_cast<uint32_t>(kept_len));
    } else {
      write_leb128(h, static_cast<uint32_t>(blob_len << 1));  // blob_len < 2^31 (checked above)
      *h++ = static_cast<uint8_t>(column & 0xff);
      *h++ = static_cast<uint8_t>(column >> 8);
      std::memcpy(h, &relid, 4);
      h += 4;
    }
    const size_t header_len = static_cast<size_t>(h - header);
    if (bulk_ && bytes_.size() + header_len + kept_len > bytes_.capacity() && bulk_added_ > 0 &&
        bulk_added_ < bulk_expected_) {
      // Loading: grow to the projected total at the average entry size so far.
      // The estimate comes from catalog statistics: if it cannot be had, grow as usual.
      const size_t average = (bytes_.size() - bulk_start_bytes_) / bulk_added_ + 1;
      try {
        reserve_on_huge_pages(bytes_, bytes_.size() + header_len + kept_len + (bulk_expected_ - bulk_added_) * average);
      } catch (const std::bad_alloc&) {
      } catch (const std::length_error&) {
      }
    }
    bytes_.insert(bytes_.end(), header, header + header_len);
    if (kept_len > 0) bytes_.insert(bytes_.end(), kept, kept + kept_len);
  } catch (...) {
    bytes_.resize(offset);
    release_form(form);
    throw;
  }
  if (bulk_) bulk_added_++;
  return static_cast<uint32_t>(offset);
}

void ShapeStore::undo_add(uint32_t offset) noexcept {
  const int64_t form = entry(offset).form;
  bytes_.resize(offset);
  release_form(form);
  if (bulk_ && bulk_added_ > 0) bulk_added_--;
}

void ShapeStore::release(uint32_t offset) noexcept {
  const Entry e = entry(offset);
  dead_bytes_ += e.size;
  release_form(e.form);
}

void ShapeStore::begin_bulk(size_t expected_entries) noexcept {
  bulk_ = true;
  bulk_expected_ = expected_entries;
  bulk_added_ = 0;
  bulk_start_bytes_ = bytes_.size();
}

void ShapeStore::end_bulk() {
  bulk_ = false;
  shrink_if_slack(bytes_);
}

namespace {
// Hash of a form: the index column, where the own bytes go, the relation and the rest of the blob.
uint64_t form_hash(const uint8_t* blob, size_t blob_len, size_t own_offset, size_t own_len, uint16_t column,
                   uint32_t relid) {
  uint64_t h = mix64((uint64_t{column} << 48) ^ (uint64_t{own_len} << 24) ^ own_offset ^ (blob_len << 32));
  h = mix64(h ^ relid) + kGoldenGamma;
  auto mix_range = [&h](const uint8_t* p, size_t n) {
    for (; n >= 8; p += 8, n -= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      h = mix64(h ^ word) + kGoldenGamma;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p, n);
    h = mix64(h ^ tail ^ (uint64_t{n} << 56));
  };
  mix_range(blob, own_offset);
  mix_range(blob + own_offset + own_len, blob_len - own_offset - own_len);
  return h == 0 ? 1 : h;
}
}  // namespace

int64_t ShapeStore::acquire_form(const uint8_t* blob, size_t blob_len, size_t own_offset, size_t own_len,
                                 uint16_t column, uint32_t relid) {
  const size_t shared_len = blob_len - own_len;
  auto same = [&](const Form& t) {
    return t.column == column && t.relid == relid && t.own_offset == own_offset && t.own_len == own_len && t.bytes.size() == shared_len &&
           std::memcmp(t.bytes.data(), blob, own_offset) == 0 &&
           std::memcmp(t.bytes.data() + own_offset, blob + own_offset + own_len, shared_len - own_offset) == 0;
  };
  // The same bytes hash alike, and one hash has one form: the last form, when
  // it matches, is the one the hash would find.
  if (last_form_ >= 0 && forms_[static_cast<size_t>(last_form_)].uses > 0 &&
      same(forms_[static_cast<size_t>(last_form_)])) {
    forms_[static_cast<size_t>(last_form_)].uses++;
    return last_form_;
  }
  const uint64_t hash = form_hash(blob, blob_len, own_offset, own_len, column, relid);
  if (const uint32_t* found = form_by_hash_.find(hash)) {
    Form& t = forms_[*found];
    if (!same(t)) return -1;  // another form with the same hash: this shape keeps its blob inline
    t.uses++;
    last_form_ = *found;
    return *found;
  }
  if (forms_.size() >= (size_t{1} << 30) && free_forms_.empty()) return -1;
  Form t;
  t.bytes.reserve(shared_len);
  t.bytes.insert(t.bytes.end(), blob, blob + own_offset);
  t.bytes.insert(t.bytes.end(), blob + own_offset + own_len, blob + blob_len);
  t.hash = hash;
  t.own_offset = static_cast<uint32_t>(own_offset);
  t.own_len = static_cast<uint32_t>(own_len);
  t.uses = 1;
  t.relid = relid;
  t.column = column;
  // Every allocation before any change: a bad_alloc leaves nothing behind.
  if (free_forms_.empty()) reserve_one_more(forms_);
  free_forms_.reserve(forms_.capacity());  // so that release_form never allocates
  form_by_hash_.reserve(form_by_hash_.size() + 1);
  uint32_t index;
  if (!free_forms_.empty()) {
    index = free_forms_.back();
    free_forms_.pop_back();
    forms_[index] = std::move(t);
  } else {
    index = static_cast<uint32_t>(forms_.size());
    forms_.push_back(std::move(t));
  }
  form_by_hash_.put(hash, index);
  last_form_ = index;
  return index;
}

void ShapeStore::release_form(int64_t form) noexcept {
  if (form < 0) return;
  Form& t = forms_[static_cast<size_t>(form)];
  if (--t.uses > 0) return;
  form_by_hash_.erase(t.hash);
  std::vector<uint8_t>().swap(t.bytes);
  free_forms_.push_back(static_cast<uint32_t>(form));  // within its capacity (acquire_form)
}

std::pair<const uint8_t*, uint32_t> ShapeStore::blob(uint32_t offset) const {
  const Entry e = entry(offset);
  if (e.blob_len == 0) return {nullptr, 0};
  if (e.form < 0) return {e.bytes, e.blob_len};
  const Form& f = forms_[static_cast<size_t>(e.form)];
  scratch_.assign(e.blob_len, 0);
  std::memcpy(scratch_.data(), f.bytes.data(), f.own_offset);
  std::memcpy(scratch_.data() + f.own_offset, e.bytes, e.stored_len);
  std::memcpy(scratch_.data() + f.own_offset + f.own_len, f.bytes.data() + f.own_offset,
              f.bytes.size() - f.own_offset);
  return {scratch_.data(), e.blob_len};
}

}  // namespace shape_router
