// Detached signatures in the format of the minisign tool, checked with
// libsodium against a pinned public key.
//
// A public key is "Ed" || key id (8) || Ed25519 key (32), in base64 (the
// second line of minisign.pub, or minisign -G's printed key). A signature
// file is four lines: an untrusted comment, base64 of algorithm ("Ed": over
// the message, "ED": over its BLAKE2b-512) || key id || signature (64), the
// trusted comment, and base64 of the global signature over the signature
// and the trusted comment's text.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "machineid/result.h"

namespace machineid {

// A signature file is four short lines; anything longer is refused unread.
inline constexpr std::size_t kMaxMinisignBytes = 4096;

struct MinisignKey {
  std::array<std::uint8_t, 8> id{};
  std::array<std::uint8_t, 32> key{};

  // Accepts the bare base64 key or the whole minisign.pub text (its
  // "untrusted comment:" line, then the key). Errc::malformed on anything else.
  static Result<MinisignKey> parse(std::string_view text);
  // The key id as minisign prints it: upper-case hex, no leading zeros.
  std::string id_hex() const;
};

// Checks `signature` (a .minisig file's text) over `message` with `key`;
// returns the trusted comment. Errc::malformed for a signature file that
// does not parse, Errc::crypto for another key id or a signature that does
// not verify; errors name `source`.
Result<std::string> minisign_verify(const MinisignKey& key, std::string_view message, std::string_view signature,
                                    std::string_view source);

}  // namespace machineid
