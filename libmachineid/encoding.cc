#include "machineid/encoding.h"

#include <cstdlib>

#include <sodium.h>

#include "evp.h"

namespace machineid {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int decode_char(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

template <std::size_t N>
std::array<std::uint8_t, N> digest(const EVP_MD* md, Bytes data) {
  std::array<std::uint8_t, N> out{};
  unsigned int len = 0;
  // EVP_Digest cannot fail for these built-in digests short of memory exhaustion.
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1) std::abort();
  return out;
}

}  // namespace

Result<ByteVector> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1)
    return make_error(Errc::malformed, "base64 text has an impossible length");
  ByteVector out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    int v = decode_char(text[i]);
    if (v < 0)
      return make_error(Errc::malformed, "base64 text has an invalid character at offset " + std::to_string(i));
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
    }
  }
  // Leftover bits must be zero, otherwise two texts would decode alike.
  if ((acc & ((1u << bits) - 1)) != 0)
    return make_error(Errc::malformed, "base64 text has non-zero padding bits");
  return out;
}

std::string base64_encode(Bytes data, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  std::size_t left = data.size() - i;
  if (left > 0) {
    std::uint32_t v = data[i] << 16;
    if (left == 2) v |= data[i + 1] << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (left == 2) out.push_back(kAlphabet[(v >> 6) & 63]);
    if (pad) out.append(left == 1 ? "==" : "=");
  }
  return out;
}

namespace {

const EVP_MD* fetch(const char* name) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) std::abort();  // a default OpenSSL always has these
  return md;
}

}  // namespace

// Function-local statics: fetched once, thread-safely, and kept for the
// process's life.
const EVP_MD* md_sha1() {
  static const EVP_MD* md = fetch("SHA1");
  return md;
}
const EVP_MD* md_sha256() {
  static const EVP_MD* md = fetch("SHA256");
  return md;
}
const EVP_MD* md_sha384() {
  static const EVP_MD* md = fetch("SHA384");
  return md;
}
const EVP_MD* md_sha512() {
  static const EVP_MD* md = fetch("SHA512");
  return md;
}

// libsodium's SHA-256 needs no context allocation: several key blobs are
// hashed on every decision.
Sha256Digest sha256(Bytes data) {
  Sha256Digest out{};
  crypto_hash_sha256(out.data(), data.data(), data.size());
  return out;
}
Sha1Digest sha1(Bytes data) { return digest<20>(md_sha1(), data); }

std::string fingerprint_sha256(Bytes key_blob) {
  Sha256Digest d = sha256(key_blob);
  return "SHA256:" + base64_encode(d, false);
}

std::string hex(Bytes data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (std::uint8_t b : data) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

namespace {

// The length of the valid UTF-8 sequence at the start of `s` (2 to 4), or 0.
std::size_t utf8_sequence(std::string_view s, char32_t& code_point) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char lead = byte(0);
  std::size_t length;
  char32_t min;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, min = 0x80, code_point = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, min = 0x800, code_point = lead & 0x0f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, min = 0x10000, code_point = lead & 0x07;
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i) & 0x3f);
  }
  bool surrogate = code_point >= 0xd800 && code_point <= 0xdfff;
  if (code_point < min || code_point > 0x10ffff || surrogate) return 0;
  return length;
}

// Code points that act on a terminal or a viewer instead of showing.
bool acts_on_display(char32_t c) {
  return (c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029 || (c >= 0x202a && c <= 0x202e) ||
         (c >= 0x2066 && c <= 0x2069);
}

void append_octal(std::string& out, unsigned char b) {
  out += '\\';
  out += static_cast<char>('0' + (b >> 6));
  out += static_cast<char>('0' + ((b >> 3) & 7));
  out += static_cast<char>('0' + (b & 7));
}

}  // namespace

std::string escape_untrusted(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    auto b = static_cast<unsigned char>(text[i]);
    if (b >= 0x20 && b < 0x7f) {
      out += static_cast<char>(b);
      ++i;
      continue;
    }
    char32_t code_point = 0;
    std::size_t length = b >= 0x80 ? utf8_sequence(text.substr(i), code_point) : 0;
    if (length == 0) {
      append_octal(out, b);
      ++i;
      continue;
    }
    for (std::size_t k = 0; k < length; ++k) {
      auto byte = static_cast<unsigned char>(text[i + k]);
      if (acts_on_display(code_point)) {
        append_octal(out, byte);
      } else {
        out += static_cast<char>(byte);
      }
    }
    i += length;
  }
  return out;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}


}  // namespace machineid
