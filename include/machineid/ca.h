// The trusted user CA keys (user_ca_file).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "machineid/result.h"
#include "machineid/sshkey.h"

namespace machineid {

inline constexpr std::size_t kMaxCaFileBytes = 1024 * 1024;
inline constexpr std::size_t kMaxCaKeys = 64;

struct TrustedCa {
  Verifier verifier;
  std::string fingerprint;  // "SHA256:..."
  unsigned line = 0;        // where in the CA file
};

class CaSet {
 public:
  // Parses CA file text: bare public keys or `cert-authority` export lines,
  // blank lines and '#' comments. Export lines must name `type=user` and,
  // when `cluster` is not empty, that cluster. Errors name source and line.
  static Result<CaSet> parse(std::string_view text, std::string_view source, std::string_view cluster);
  static Result<CaSet> load(const std::string& path, std::string_view cluster);

  // The trusted CA whose key blob equals `key_blob`, or null.
  const TrustedCa* find(Bytes key_blob) const;
  const std::vector<TrustedCa>& keys() const { return keys_; }
  // The keys as sshd's TrustedUserCAKeys wants them: one bare key a line.
  std::string sshd_form() const;

 private:
  std::vector<TrustedCa> keys_;
};

}  // namespace machineid
