// Bounded reader and writer of the SSH wire encoding (RFC 4251 §5).
// Every untrusted byte in machineid-host is read through WireReader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "machineid/result.h"

namespace machineid {

using Bytes = std::span<const std::uint8_t>;
using ByteVector = std::vector<std::uint8_t>;

// Largest positive mpint accepted: a 16384-bit value plus a sign byte,
// as OpenSSH's SSHBUF_MAX_BIGNUM.
inline constexpr std::size_t kMaxMpintBytes = 16384 / 8 + 1;

inline Bytes as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_string_view(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Reads big-endian integers and length-prefixed strings from a byte span.
// Each getter returns the value and advances, or an error naming the offset
// and leaves the position unspecified. Nothing reads past the end.
// "string" returns a view into the buffer, "cstring" additionally refuses
// embedded NUL bytes.
class WireReader {
 public:
  explicit WireReader(Bytes data) : data_(data) {}

  Result<std::uint8_t> u8();
  Result<std::uint32_t> u32();
  Result<std::uint64_t> u64();
  Result<bool> boolean();
  Result<Bytes> string();
  Result<std::string_view> cstring();
  // A non-negative mpint, returned without leading zero bytes.
  Result<Bytes> mpint();
  Result<Bytes> raw(std::size_t n);

  std::size_t offset() const { return pos_; }
  std::size_t remaining() const { return data_.size() - pos_; }
  bool empty() const { return pos_ == data_.size(); }
  Bytes rest() const { return data_.subspan(pos_); }
  // Fails unless every byte has been consumed; `what` names the structure.
  Status expect_end(std::string_view what) const;

 private:
  Error short_read(std::string_view what, std::size_t need) const;

  Bytes data_;
  std::size_t pos_ = 0;
};

// Appends SSH wire values to a growing buffer.
class WireWriter {
 public:
  WireWriter& u8(std::uint8_t v);
  WireWriter& u32(std::uint32_t v);
  WireWriter& u64(std::uint64_t v);
  WireWriter& string(Bytes v);
  WireWriter& string(std::string_view v) { return string(as_bytes(v)); }
  // A non-negative integer given as big-endian magnitude bytes.
  WireWriter& mpint(Bytes magnitude);
  WireWriter& raw(Bytes v);

  const ByteVector& bytes() const { return buf_; }
  ByteVector take() { return std::move(buf_); }

 private:
  ByteVector buf_;
};

}  // namespace machineid
