#include "machineid/ca.h"

#include <algorithm>
#include <vector>

#include "machineid/encoding.h"
#include "machineid/io.h"

namespace machineid {
namespace {

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) words.push_back(line.substr(i, j - i));
    i = j;
  }
  return words;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes a URL query value ("%2E", "+"); malformed escapes stay as they are.
std::string url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Checks the "clustername=X&type=user" comment of a Teleport export line.
Status check_export_comment(std::string_view comment, std::string_view cluster) {
  std::string type, clustername;
  while (!comment.empty()) {
    std::size_t amp = comment.find('&');
    std::string_view pair = comment.substr(0, amp);
    comment = amp == std::string_view::npos ? std::string_view{} : comment.substr(amp + 1);
    std::size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string value = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    if (key == "type") type = value;
    if (key == "clustername") clustername = value;
  }
  if (type != "user")
    return make_error(Errc::config, "export line is for CA type '" + type + "', not 'user' (use tctl auth export --type=user)");
  if (!cluster.empty() && clustername != cluster)
    return make_error(Errc::config, "export line is for cluster '" + clustername + "', not '" + std::string(cluster) + "'");
  return {};
}

}  // namespace

Result<CaSet> CaSet::parse(std::string_view text, std::string_view source, std::string_view cluster) {
  if (text.size() > kMaxCaFileBytes)
    return make_error(Errc::limit, std::string(source) + ": larger than " + std::to_string(kMaxCaFileBytes) + " bytes");
  CaSet set;
  unsigned line_no = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    const std::string where = std::string(source) + ":" + std::to_string(line_no);

    std::vector<std::string_view> words = split_words(line);
    if (words.empty() || words[0].front() == '#') continue;
    if (words[0] == "@cert-authority")
      return make_error(Errc::config, where + ": a known_hosts @cert-authority line is a host CA, not a user CA");
    bool exported = words[0] == "cert-authority";
    if (exported) words.erase(words.begin());
    if (words.size() < 2) return make_error(Errc::config, where + ": expected '[cert-authority] TYPE BASE64 [COMMENT]'");
    if (words[0].ends_with("-cert-v01@openssh.com"))
      return make_error(Errc::config, where + ": a certificate cannot be a CA key");
    if (exported) {
      auto ok = check_export_comment(words.size() > 2 ? words[2] : std::string_view{}, cluster);
      if (!ok.ok()) return with_context(ok.error(), where);
    }
    auto blob = base64_decode(words[1]);
    if (!blob.ok()) return with_context(blob.error(), where);
    auto key = parse_public_key(*blob);
    if (!key.ok()) return with_context(key.error(), where);
    if (key_type_name(key->type) != words[0])
      return make_error(Errc::config, where + ": key text says '" + std::string(words[0]) + "' but the blob holds " +
                                          std::string(key_type_name(key->type)));
    if (set.find(key->blob) != nullptr) continue;  // the same key twice trusts nothing more
    if (set.keys_.size() == kMaxCaKeys)
      return make_error(Errc::limit, where + ": more than " + std::to_string(kMaxCaKeys) + " CA keys");
    auto verifier = Verifier::create(*key);
    if (!verifier.ok()) return with_context(verifier.error(), where);
    set.keys_.push_back(TrustedCa{std::move(*verifier), key->fingerprint(), line_no});
  }
  if (set.keys_.empty()) return make_error(Errc::config, std::string(source) + ": holds no CA key");
  return set;
}

Result<CaSet> CaSet::load(const std::string& path, std::string_view cluster) {
  MID_TRY(text, read_file(path, kMaxCaFileBytes));
  return parse(text, path, cluster);
}

const TrustedCa* CaSet::find(Bytes key_blob) const {
  for (const auto& ca : keys_)
    if (std::equal(key_blob.begin(), key_blob.end(), ca.verifier.key().blob.begin(), ca.verifier.key().blob.end()))
      return &ca;
  return nullptr;
}

std::string CaSet::sshd_form() const {
  std::string out;
  for (const auto& ca : keys_) out += ca.verifier.key().to_text() + "\n";
  return out;
}

}  // namespace machineid
