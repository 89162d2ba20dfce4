#include "machineid/wire.h"

#include <cstring>

namespace machineid {

Error WireReader::short_read(std::string_view what, std::size_t need) const {
  return make_error(Errc::malformed, "at byte " + std::to_string(pos_) + ": " + std::string(what) +
                                         " needs " + std::to_string(need) + " bytes, " +
                                         std::to_string(remaining()) + " left");
}

Result<Bytes> WireReader::raw(std::size_t n) {
  if (n > remaining()) return short_read("field", n);
  Bytes out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Result<std::uint8_t> WireReader::u8() {
  if (remaining() < 1) return short_read("byte", 1);
  return data_[pos_++];
}

Result<std::uint32_t> WireReader::u32() {
  if (remaining() < 4) return short_read("uint32", 4);
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | data_[pos_++];
  return v;
}

Result<std::uint64_t> WireReader::u64() {
  if (remaining() < 8) return short_read("uint64", 8);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | data_[pos_++];
  return v;
}

Result<bool> WireReader::boolean() {
  MID_TRY(b, u8());
  if (b > 1) return make_error(Errc::malformed, "at byte " + std::to_string(pos_ - 1) + ": boolean is " + std::to_string(b));
  return b == 1;
}

Result<Bytes> WireReader::string() {
  std::size_t start = pos_;
  MID_TRY(len, u32());
  if (len > remaining()) {
    pos_ = start;
    return make_error(Errc::malformed, "at byte " + std::to_string(start) + ": string length " +
                                           std::to_string(len) + " exceeds the " +
                                           std::to_string(remaining() - 4) + " bytes left");
  }
  return raw(len);
}

Result<std::string_view> WireReader::cstring() {
  std::size_t start = pos_;
  MID_TRY(s, string());
  if (std::memchr(s.data(), 0, s.size()) != nullptr)
    return make_error(Errc::malformed, "at byte " + std::to_string(start) + ": string contains a NUL byte");
  return as_string_view(s);
}

Result<Bytes> WireReader::mpint() {
  std::size_t start = pos_;
  MID_TRY(s, string());
  if (!s.empty() && (s[0] & 0x80) != 0)
    return make_error(Errc::malformed, "at byte " + std::to_string(start) + ": negative mpint");
  if (s.size() > kMaxMpintBytes || (s.size() == kMaxMpintBytes && s[0] != 0))
    return make_error(Errc::limit, "at byte " + std::to_string(start) + ": mpint of " +
                                       std::to_string(s.size()) + " bytes exceeds the limit of 16384 bits");
  while (!s.empty() && s[0] == 0) s = s.subspan(1);
  return s;
}

Status WireReader::expect_end(std::string_view what) const {
  if (!empty())
    return make_error(Errc::malformed, std::to_string(remaining()) + " trailing bytes after " + std::string(what));
  return {};
}

WireWriter& WireWriter::u8(std::uint8_t v) {
  buf_.push_back(v);
  return *this;
}

WireWriter& WireWriter::u32(std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) buf_.push_back(static_cast<std::uint8_t>(v >> shift));
  return *this;
}

WireWriter& WireWriter::u64(std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) buf_.push_back(static_cast<std::uint8_t>(v >> shift));
  return *this;
}

WireWriter& WireWriter::string(Bytes v) {
  u32(static_cast<std::uint32_t>(v.size()));
  return raw(v);
}

WireWriter& WireWriter::mpint(Bytes magnitude) {
  while (!magnitude.empty() && magnitude[0] == 0) magnitude = magnitude.subspan(1);
  bool pad = !magnitude.empty() && (magnitude[0] & 0x80) != 0;
  u32(static_cast<std::uint32_t>(magnitude.size() + (pad ? 1 : 0)));
  if (pad) buf_.push_back(0);
  return raw(magnitude);
}

WireWriter& WireWriter::raw(Bytes v) {
  buf_.insert(buf_.end(), v.begin(), v.end());
  return *this;
}

}  // namespace machineid
