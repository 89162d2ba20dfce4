// OpenSSH certificates (PROTOCOL.certkeys): parsing, no trust decisions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "machineid/result.h"
#include "machineid/sshkey.h"
#include "machineid/wire.h"

namespace machineid {

// Hard limits on certificates, checked while parsing.
inline constexpr std::size_t kMaxCertificateBytes = 64 * 1024;
inline constexpr std::size_t kMaxPrincipals = 256;
inline constexpr std::size_t kMaxCertOptions = 64;  // each of critical options, extensions

inline constexpr std::uint32_t kUserCert = 1;
inline constexpr std::uint32_t kHostCert = 2;
inline constexpr std::uint64_t kValidForever = ~std::uint64_t{0};

struct CertOption {
  std::string name;
  std::string value;  // empty for flag options
};

struct Certificate {
  std::string type_name;  // e.g. "ssh-ed25519-cert-v01@openssh.com"
  PublicKey key;          // the certified key, as a plain key
  ByteVector nonce;
  std::uint64_t serial = 0;
  std::uint32_t type = 0;  // kUserCert or kHostCert
  std::string key_id;
  std::vector<std::string> principals;
  std::uint64_t valid_after = 0;
  std::uint64_t valid_before = 0;
  std::vector<CertOption> critical_options;
  std::vector<CertOption> extensions;
  ByteVector signature_key;  // the CA's key blob
  ByteVector signature;      // signature blob over blob[0, signed_length)
  ByteVector blob;           // the whole certificate
  std::size_t signed_length = 0;

  Bytes signed_region() const { return Bytes(blob).first(signed_length); }
  const std::string* extension(std::string_view name) const;
  const std::string* critical_option(std::string_view name) const;
  bool has_extension(std::string_view name) const { return extension(name) != nullptr; }
};

// Parses a certificate blob of a supported type. Fails, naming the field
// and offset, on any malformed, oversized or trailing data.
Result<Certificate> parse_certificate(Bytes blob);

// Finds certificate text — a `key-cert.pub` line ("type base64 [comment]")
// or an SSH_AUTH_INFO_0 line ("publickey type base64"), the first such line
// when there are several — and returns the decoded blob, unparsed.
Result<ByteVector> certificate_blob_from_text(std::string_view text);

// Parses certificate text: a `key-cert.pub` line ("type base64 [comment]") or
// an SSH_AUTH_INFO_0 line ("publickey type base64"); with several lines,
// the first line holding a certificate is used.
Result<Certificate> parse_certificate_text(std::string_view text);

}  // namespace machineid
