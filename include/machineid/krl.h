// OpenSSH key revocation lists (PROTOCOL.krl): parsing and checking.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "machineid/cert.h"
#include "machineid/encoding.h"
#include "machineid/result.h"

namespace machineid {

inline constexpr std::size_t kMaxKrlBytes = 64 * 1024 * 1024;

class Krl {
 public:
  // Parses a binary KRL. Fails, naming the section and offset, on anything
  // malformed, including unknown critical extensions.
  static Result<Krl> parse(Bytes data);
  // Reads and parses a KRL file (at most kMaxKrlBytes).
  static Result<Krl> load(const std::string& path);

  // Why `cert` is revoked ("serial 5 revoked by CA SHA256:...", "key id ...",
  // "key SHA256:... revoked", "CA key ... revoked"), or nullopt when it is not.
  // Checks, as sshd does: the certified key (explicit, SHA-1, SHA-256), the
  // certificate's serial (when not 0) and key id under its CA or any CA,
  // and the CA key itself.
  std::optional<std::string> revoked(const Certificate& cert) const;
  // Why a plain key is revoked, or nullopt.
  std::optional<std::string> key_revoked(const PublicKey& key) const;

  std::uint64_t version() const { return version_; }

 private:
  struct CertSection;  // revocations under one CA key; defined in krl.cc
  struct Parser;       // defined in krl.cc

  // How a plain key blob is revoked ("as an explicit key", "by SHA-1
  // fingerprint", ...), or nullptr when it is not.
  const char* how_revoked(Bytes key_blob) const;
  // Why `cert` is revoked by the certificates section for `ca` (empty: the
  // section for any CA), or nullopt.
  std::optional<std::string> revoked_under(Bytes ca, const Certificate& cert) const;

  // Every list is sorted and held flat, sized exactly as the file asks: a
  // KRL of a million serials costs about 8 MB, and loading a new one beside
  // the one in force holds no more than the file and the two lists.
  std::uint64_t version_ = 0;
  std::vector<CertSection> cert_sections_;  // one per CA key, sorted by it
  std::vector<ByteVector> explicit_keys_;
  std::vector<Sha1Digest> sha1_hashes_;
  std::vector<Sha256Digest> sha256_hashes_;

 public:
  Krl();
  ~Krl();
  Krl(Krl&&) noexcept;
  Krl& operator=(Krl&&) noexcept;
};

}  // namespace machineid
