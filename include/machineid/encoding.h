// Base64 (RFC 4648), the digests and fingerprints OpenSSH prints, and the
// escaping of untrusted text for terminals and logs.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "machineid/result.h"
#include "machineid/wire.h"

namespace machineid {

using Sha256Digest = std::array<std::uint8_t, 32>;
using Sha1Digest = std::array<std::uint8_t, 20>;

// Decodes standard base64; padding optional, whitespace and junk refused.
Result<ByteVector> base64_decode(std::string_view text);
std::string base64_encode(Bytes data, bool pad = true);

Sha256Digest sha256(Bytes data);
Sha1Digest sha1(Bytes data);

// "SHA256:<base64 without padding>" of a key blob, as `ssh-keygen -l` prints.
std::string fingerprint_sha256(Bytes key_blob);

std::string hex(Bytes data);

// Text from a certificate or a policy file made safe for a terminal, a log
// line or a journald field, after OpenSSH's strnvis(VIS_SAFE | VIS_OCTAL |
// VIS_NOSLASH) as its log.c applies it to every line: printable ASCII and
// valid UTF-8 pass unchanged; every other byte becomes a three-digit octal
// escape ("\033"): control characters including ESC, newline, carriage
// return and tab, DEL, each byte of invalid UTF-8 (overlong, surrogate,
// truncated, beyond U+10FFFF), and each byte of the code points a terminal
// or viewer acts on rather than shows (C1 controls U+0080..U+009F, the line
// and paragraph separators U+2028/U+2029, and the bidirectional overrides
// and isolates U+202A..U+202E, U+2066..U+2069). A backslash stays as it is,
// so escaping is idempotent: text escaped where it was built and again where
// it is printed reads the same.
std::string escape_untrusted(std::string_view text);
// Appends the UTF-8 encoding of code point `cp` (at most U+10FFFF).
void append_utf8(std::string& out, std::uint32_t cp);

}  // namespace machineid
