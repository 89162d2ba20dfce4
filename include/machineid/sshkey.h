// SSH public keys and signature verification at the crypto boundary.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "machineid/result.h"
#include "machineid/wire.h"

namespace machineid {

enum class KeyType { ed25519, ecdsa_p256, ecdsa_p384, ecdsa_p521, rsa };

// Smallest and largest RSA moduli accepted anywhere (OpenSSH's bounds).
inline constexpr unsigned kMinRsaBits = 1024;
inline constexpr unsigned kMaxRsaBits = 16384;
// Smallest RSA modulus a trusted CA may have.
inline constexpr unsigned kMinCaRsaBits = 2048;

// "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", ...
std::string_view key_type_name(KeyType type);
// "ED25519", "ECDSA", "RSA" as ssh-keygen prints them.
std::string_view key_type_label(KeyType type);

// A plain public key: its wire blob and the parts needed to use it.
struct PublicKey {
  KeyType type{};
  ByteVector blob;      // canonical plain blob (string type, key fields)
  ByteVector material;  // ed25519: 32-byte key; ecdsa: SEC1 point; rsa: modulus
  ByteVector exponent;  // rsa only
  unsigned bits = 0;

  std::string fingerprint() const;  // "SHA256:..."
  // "ssh-ed25519 AAAA..." (authorized_keys form, no comment)
  std::string to_text() const;
};

// Parses a plain public key blob; certificates are refused.
Result<PublicKey> parse_public_key(Bytes blob);
// Parses "type base64 [comment]" text of a plain public key.
Result<PublicKey> parse_public_key_text(std::string_view line);
// Reads the key fields that follow the type name (in a blob or inside a
// certificate) and builds the plain key.
Result<PublicKey> read_key_fields(KeyType type, WireReader& reader);
// Maps a plain key type name ("ssh-rsa") to its type.
Result<KeyType> key_type_from_name(std::string_view name);

// A public key prepared for repeated signature checks (the OpenSSL key is
// built once). Verifies SSH signature blobs: `string algorithm, string sig`.
class Verifier {
 public:
  static Result<Verifier> create(const PublicKey& key);

  // Succeeds only when `signature` is a well-formed signature blob of an
  // accepted algorithm for this key over `data`. SHA-1 "ssh-rsa" fails.
  Status verify(Bytes signature, Bytes data) const;
  const PublicKey& key() const { return key_; }

 private:
  struct Impl;
  PublicKey key_;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace machineid
