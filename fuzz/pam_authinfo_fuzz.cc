// SSH_AUTH_INFO_0 as pam_machineid.so reads it: any text must be refused or
// yield certificates whose fields are views into the text itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "machineid/mid_authinfo.h"

namespace {

bool inside(const mid_string& s, const char* text, std::size_t size) {
  return s.size > 0 && s.data >= text && s.data + s.size <= text + size;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  mid_auth_info info;
  char err[256];
  if (mid_auth_info_parse(text, size, &info, err, sizeof err) != 0) {
    if (info.count != 0 || std::memchr(err, 0, sizeof err) == nullptr) std::abort();
    return 0;
  }
  if (info.count > MID_AUTHINFO_MAX_LINES) std::abort();
  for (std::size_t i = 0; i < info.count; ++i) {
    const mid_cert_login& c = info.certificates[i];
    if (!inside(c.key_type, text, size) || !inside(c.certificate, text, size) ||
        !std::string_view(c.key_type.data, c.key_type.size).ends_with(MID_CERT_TYPE_SUFFIX))
      std::abort();
  }
  return 0;
}
