#include "machineid/cert.h"

#include <algorithm>
#include <array>
#include <utility>

#include "machineid/encoding.h"

namespace machineid {
namespace {

constexpr std::string_view kCertSuffix = "-cert-v01@openssh.com";

struct CertTypeName {
  std::string_view name;
  KeyType key;
};
constexpr std::array<CertTypeName, 5> kCertTypes{{
    {"ssh-ed25519-cert-v01@openssh.com", KeyType::ed25519},
    {"ecdsa-sha2-nistp256-cert-v01@openssh.com", KeyType::ecdsa_p256},
    {"ecdsa-sha2-nistp384-cert-v01@openssh.com", KeyType::ecdsa_p384},
    {"ecdsa-sha2-nistp521-cert-v01@openssh.com", KeyType::ecdsa_p521},
    {"ssh-rsa-cert-v01@openssh.com", KeyType::rsa},
}};

// Largest base64 text of a certificate we decode.
constexpr std::size_t kMaxCertificateText = (kMaxCertificateBytes + 2) / 3 * 4;

Error field_error(std::string_view field, const Error& e) {
  return make_error(e.code, "certificate " + std::string(field) + ": " + e.message);
}

// Critical options and extensions: a sequence of (string name, string data)
// where non-empty data is itself one string holding the value.
Result<std::vector<CertOption>> parse_options(Bytes section, std::string_view what) {
  std::vector<CertOption> options;
  WireReader r(section);
  while (!r.empty()) {
    if (options.size() == kMaxCertOptions)
      return make_error(Errc::limit, "more than " + std::to_string(kMaxCertOptions) + " " + std::string(what) + "s");
    MID_TRY(name, r.cstring());
    MID_TRY(data, r.string());
    CertOption option{std::string(name), {}};
    if (!data.empty()) {
      WireReader inner(data);
      MID_TRY(value, inner.string());
      if (!inner.empty()) return inner.expect_end(std::string(what) + " '" + option.name + "'").error();
      option.value.assign(as_string_view(value));
    }
    for (const auto& seen : options)
      if (seen.name == option.name)
        return make_error(Errc::malformed, std::string(what) + " '" + option.name + "' appears twice");
    options.push_back(std::move(option));
  }
  return options;
}

Result<std::vector<std::string>> parse_principals(Bytes section) {
  std::vector<std::string> principals;
  WireReader r(section);
  while (!r.empty()) {
    if (principals.size() == kMaxPrincipals)
      return make_error(Errc::limit, "more than " + std::to_string(kMaxPrincipals) + " principals");
    MID_TRY(p, r.cstring());
    principals.emplace_back(p);
  }
  return principals;
}

const std::string* find_option(const std::vector<CertOption>& options, std::string_view name) {
  for (const auto& o : options)
    if (o.name == name) return &o.value;
  return nullptr;
}

}  // namespace

const std::string* Certificate::extension(std::string_view name) const { return find_option(extensions, name); }
const std::string* Certificate::critical_option(std::string_view name) const {
  return find_option(critical_options, name);
}

Result<Certificate> parse_certificate(Bytes blob) {
  if (blob.size() > kMaxCertificateBytes)
    return make_error(Errc::limit, "certificate of " + std::to_string(blob.size()) + " bytes exceeds the limit of " +
                                       std::to_string(kMaxCertificateBytes));
  Certificate c;
  WireReader r(blob);
  // Each step names the field it reads, so errors say where parsing stopped.
#define MID_FIELD(var, field, expr)                                  \
  auto var##_r_ = (expr);                                            \
  if (!var##_r_.ok()) return field_error(field, var##_r_.error());   \
  auto var = std::move(var##_r_).value()

  MID_FIELD(type_name, "type", r.cstring());
  auto known = std::find_if(kCertTypes.begin(), kCertTypes.end(), [&](const auto& t) { return t.name == type_name; });
  if (known == kCertTypes.end()) {
    bool is_cert = type_name.size() > kCertSuffix.size() && type_name.ends_with(kCertSuffix);
    return make_error(Errc::unsupported, "unsupported " + std::string(is_cert ? "certificate" : "key") + " type '" +
                                             std::string(type_name) + "'");
  }
  c.type_name = type_name;
  MID_FIELD(nonce, "nonce", r.string());
  c.nonce.assign(nonce.begin(), nonce.end());
  MID_FIELD(key, "public key", read_key_fields(known->key, r));
  c.key = std::move(key);
  MID_FIELD(serial, "serial", r.u64());
  c.serial = serial;
  MID_FIELD(type, "type", r.u32());
  if (type != kUserCert && type != kHostCert)
    return make_error(Errc::malformed, "certificate type " + std::to_string(type) + " is neither user (1) nor host (2)");
  c.type = type;
  MID_FIELD(key_id, "key id", r.cstring());
  c.key_id = key_id;
  MID_FIELD(principals_raw, "principals", r.string());
  MID_FIELD(principals, "principals", parse_principals(principals_raw));
  c.principals = std::move(principals);
  MID_FIELD(valid_after, "valid after", r.u64());
  MID_FIELD(valid_before, "valid before", r.u64());
  c.valid_after = valid_after;
  c.valid_before = valid_before;
  MID_FIELD(critical_raw, "critical options", r.string());
  MID_FIELD(critical, "critical options", parse_options(critical_raw, "critical option"));
  c.critical_options = std::move(critical);
  MID_FIELD(extensions_raw, "extensions", r.string());
  MID_FIELD(extensions, "extensions", parse_options(extensions_raw, "extension"));
  c.extensions = std::move(extensions);
  MID_FIELD(reserved, "reserved", r.string());
  (void)reserved;  // "currently unused" in PROTOCOL.certkeys; contents ignored
  MID_FIELD(signature_key, "signature key", r.string());
  if (signature_key.empty()) return make_error(Errc::malformed, "certificate signature key is empty");
  c.signature_key.assign(signature_key.begin(), signature_key.end());
  c.signed_length = r.offset();
  MID_FIELD(signature, "signature", r.string());
  c.signature.assign(signature.begin(), signature.end());
#undef MID_FIELD
  auto end = r.expect_end("certificate");
  if (!end.ok()) return end.error();
  c.blob.assign(blob.begin(), blob.end());
  return c;
}

namespace {

// The type word and base64 word of the first certificate line in `text`.
Result<std::pair<std::string_view, std::string_view>> find_certificate_words(std::string_view text) {
  std::size_t line_start = 0;
  while (line_start < text.size()) {
    std::size_t line_end = std::min(text.find('\n', line_start), text.size());
    std::string_view line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;

    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size() && words.size() < 3) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      std::size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
      if (j > i) words.push_back(line.substr(i, j - i));
      i = j;
    }
    // SSH_AUTH_INFO_0 lines are "publickey <type> <base64>".
    if (!words.empty() && words[0] == "publickey") words.erase(words.begin());
    if (words.size() < 2 || !words[0].ends_with(kCertSuffix)) continue;
    if (words[1].size() > kMaxCertificateText)
      return make_error(Errc::limit, "certificate text exceeds " + std::to_string(kMaxCertificateText) + " characters");
    return std::pair{words[0], words[1]};
  }
  return make_error(Errc::malformed, "no OpenSSH certificate found (expected 'TYPE-cert-v01@openssh.com BASE64')");
}

}  // namespace

Result<ByteVector> certificate_blob_from_text(std::string_view text) {
  MID_TRY(words, find_certificate_words(text));
  return base64_decode(words.second);
}

Result<Certificate> parse_certificate_text(std::string_view text) {
  MID_TRY(words, find_certificate_words(text));
  MID_TRY(blob, base64_decode(words.second));
  MID_TRY(cert, parse_certificate(blob));
  if (cert.type_name != words.first)
    return make_error(Errc::malformed, "certificate text says '" + std::string(words.first) +
                                           "' but the blob holds '" + cert.type_name + "'");
  return cert;
}

}  // namespace machineid
