#include "machineid/minisign.h"

#include <sodium.h>

#include <cstring>

#include "machineid/encoding.h"

namespace machineid {
namespace {

constexpr std::string_view kUntrusted = "untrusted comment:";
constexpr std::string_view kTrusted = "trusted comment: ";
constexpr std::size_t kSignatureBytes = crypto_sign_BYTES;

// Splits off the next line ("\n" or "\r\n"); false when none is left.
bool next_line(std::string_view& text, std::string_view& line) {
  if (text.empty()) return false;
  std::size_t end = text.find('\n');
  line = text.substr(0, end);
  text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  return true;
}

Result<ByteVector> decode_exact(std::string_view b64, std::size_t size, std::string_view what) {
  auto bytes = base64_decode(b64);
  if (!bytes.ok() || bytes->size() != size)
    return make_error(Errc::malformed, std::string(what) + " is not " + std::to_string(size) + " bytes of base64");
  return bytes;
}

}  // namespace

Result<MinisignKey> MinisignKey::parse(std::string_view text) {
  std::string_view line;
  // The whole file: skip its comment line and take the key line.
  if (next_line(text, line) && line.starts_with(kUntrusted)) next_line(text, line);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  MID_TRY(bytes, decode_exact(line, 2 + 8 + 32, "a minisign public key"));
  if (bytes[0] != 'E' || bytes[1] != 'd')
    return make_error(Errc::malformed, "a minisign public key must be of algorithm Ed");
  MinisignKey k;
  std::memcpy(k.id.data(), bytes.data() + 2, k.id.size());
  std::memcpy(k.key.data(), bytes.data() + 10, k.key.size());
  return k;
}

std::string MinisignKey::id_hex() const {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  // minisign prints the id as a little-endian 64-bit number, in hex
  // without leading zeros.
  for (std::size_t i = id.size(); i-- > 0;) {
    out += kDigits[id[i] >> 4];
    out += kDigits[id[i] & 15];
  }
  std::size_t first = out.find_first_not_of('0');
  return first == std::string::npos ? "0" : out.substr(first);
}

Result<std::string> minisign_verify(const MinisignKey& key, std::string_view message, std::string_view signature,
                                    std::string_view source) {
  auto bad = [&](const std::string& why) { return make_error(Errc::malformed, std::string(source) + ": " + why); };
  if (signature.size() > kMaxMinisignBytes)
    return bad("larger than " + std::to_string(kMaxMinisignBytes) + " bytes");
  std::string_view untrusted, sig_line, trusted, global_line;
  if (!next_line(signature, untrusted) || !untrusted.starts_with(kUntrusted))
    return bad("line 1 is not an untrusted comment");
  if (!next_line(signature, sig_line)) return bad("line 2 (the signature) is missing");
  if (!next_line(signature, trusted) || !trusted.starts_with(kTrusted))
    return bad("line 3 is not a trusted comment");
  if (!next_line(signature, global_line)) return bad("line 4 (the global signature) is missing");
  std::string_view rest = signature;
  while (!rest.empty() && (rest.front() == '\n' || rest.front() == '\r')) rest.remove_prefix(1);
  if (!rest.empty()) return bad("text after line 4");

  auto sig = decode_exact(sig_line, 2 + 8 + kSignatureBytes, "line 2");
  if (!sig.ok()) return bad(sig.error().message);
  auto global = decode_exact(global_line, kSignatureBytes, "line 4");
  if (!global.ok()) return bad(global.error().message);
  bool prehashed = (*sig)[0] == 'E' && (*sig)[1] == 'D';
  if (!prehashed && !((*sig)[0] == 'E' && (*sig)[1] == 'd')) return bad("unknown signature algorithm");
  if (std::memcmp(sig->data() + 2, key.id.data(), key.id.size()) != 0) {
    MinisignKey signer;
    std::memcpy(signer.id.data(), sig->data() + 2, signer.id.size());
    return make_error(Errc::crypto, std::string(source) + ": signed by key " + signer.id_hex() +
                                        ", not by the trusted key " + key.id_hex());
  }
  if (sodium_init() < 0) return make_error(Errc::crypto, "libsodium failed to initialise");
  const std::uint8_t* raw = sig->data() + 10;
  int checked;
  if (prehashed) {
    std::uint8_t digest[crypto_generichash_BYTES_MAX];
    crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       nullptr, 0);
    checked = crypto_sign_verify_detached(raw, digest, sizeof digest, key.key.data());
  } else {
    checked = crypto_sign_verify_detached(raw, reinterpret_cast<const unsigned char*>(message.data()),
                                          message.size(), key.key.data());
  }
  if (checked != 0) return make_error(Errc::crypto, std::string(source) + ": the signature does not verify");
  // The trusted comment is signed with the signature it follows.
  std::string_view comment = trusted.substr(kTrusted.size());
  std::string signed_text(reinterpret_cast<const char*>(raw), kSignatureBytes);
  signed_text.append(comment);
  if (crypto_sign_verify_detached(global->data(), reinterpret_cast<const unsigned char*>(signed_text.data()),
                                  signed_text.size(), key.key.data()) != 0)
    return make_error(Errc::crypto, std::string(source) + ": the trusted comment's signature does not verify");
  return std::string(comment);
}

}  // namespace machineid
