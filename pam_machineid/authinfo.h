// SSH_AUTH_INFO_0, as sshd exposes it to PAM: one line per authentication
// method that succeeded, "method[/submethod][ keytype base64]". The module
// finds in it the certificates that authenticated the login. The key part
// comes from the client, so this is the module's one parser of untrusted
// text; it is header-only so that fuzz/pam_authinfo_fuzz.cc reaches it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "machineid/result.h"

namespace machineid::pam {

// sshd writes a handful of lines (one per method in AuthenticationMethods);
// anything near these bounds is not sshd's doing.
inline constexpr std::size_t kMaxAuthInfoBytes = 128 * 1024;
inline constexpr std::size_t kMaxAuthInfoLines = 16;

// The key types of OpenSSH user certificates all end so.
inline constexpr std::string_view kCertTypeSuffix = "-cert-v01@openssh.com";

// A certificate that authenticated the login, as sshd's %t and %k.
struct CertificateLogin {
  std::string key_type;
  std::string certificate;  // base64
  bool operator==(const CertificateLogin&) const = default;
};

namespace detail {

inline bool all_of(std::string_view s, bool (*allowed)(char)) {
  for (char c : s)
    if (!allowed(c)) return false;
  return true;
}
inline bool alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
inline bool name_char(char c) { return alnum(c) || c == '-' || c == '_' || c == '.' || c == '@'; }
inline bool method_char(char c) { return name_char(c) || c == '/'; }
inline bool base64_char(char c) { return alnum(c) || c == '+' || c == '/' || c == '='; }
inline bool printable(char c) { return c >= 0x20 && c <= 0x7e; }

// sshd records the primary method name; older releases recorded the
// host-bound synonym of a public-key login as sent by the client.
inline bool is_publickey(std::string_view method) {
  return method == "publickey" || method == "publickey-hostbound-v00@openssh.com";
}

}  // namespace detail

// The certificates of the public-key lines of `info`, in order (none for a
// login without one); an error naming the line when a line is malformed —
// a public-key line that is not exactly "publickey keytype base64", a bad
// method name, an empty line, a control character — or a limit is exceeded.
inline Result<std::vector<CertificateLogin>> certificates_in_auth_info(std::string_view info) {
  if (info.size() > kMaxAuthInfoBytes)
    return make_error(Errc::limit, "SSH_AUTH_INFO_0: longer than " +
                                       std::to_string(kMaxAuthInfoBytes) + " bytes");
  // Every line ends in a newline; the last one may not.
  if (info.ends_with('\n')) info.remove_suffix(1);
  std::vector<CertificateLogin> found;
  if (info.empty()) return found;
  std::size_t count = 0;
  for (std::size_t begin = 0; begin <= info.size();) {
    std::size_t end = std::min(info.find('\n', begin), info.size());
    std::string_view line = info.substr(begin, end - begin);
    begin = end + 1;
    std::string where = "SSH_AUTH_INFO_0 line " + std::to_string(++count);
    if (count > kMaxAuthInfoLines)
      return make_error(Errc::limit, "SSH_AUTH_INFO_0: more than " +
                                         std::to_string(kMaxAuthInfoLines) + " lines");
    if (line.empty()) return make_error(Errc::malformed, where + ": empty line");
    if (!detail::all_of(line, detail::printable))
      return make_error(Errc::malformed, where + ": control character");
    auto space = line.find(' ');
    std::string_view method = line.substr(0, space);
    if (method.empty() || !detail::all_of(method, detail::method_char))
      return make_error(Errc::malformed, where + ": bad method name");
    if (!detail::is_publickey(method)) continue;  // no certificate can be there
    std::string_view rest =
        space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
    auto second = rest.find(' ');
    std::string_view key_type = rest.substr(0, second);
    std::string_view key =
        second == std::string_view::npos ? std::string_view{} : rest.substr(second + 1);
    if (key_type.empty() || key.empty() || !detail::all_of(key_type, detail::name_char) ||
        !detail::all_of(key, detail::base64_char))
      return make_error(Errc::malformed, where + ": not \"publickey KEYTYPE BASE64\"");
    if (key_type.ends_with(kCertTypeSuffix))
      found.push_back({std::string(key_type), std::string(key)});
  }
  return found;
}

}  // namespace machineid::pam
