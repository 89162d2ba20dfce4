// Base64 (RFC 4648) and the digests and fingerprints OpenSSH prints.
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

}  // namespace machineid
