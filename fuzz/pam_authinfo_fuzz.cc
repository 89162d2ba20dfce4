// SSH_AUTH_INFO_0 as pam_machineid.so reads it: any text must be refused or
// yield certificates whose fields are drawn from the text itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "../pam_machineid/authinfo.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto found = machineid::pam::certificates_in_auth_info(text);
  if (!found.ok()) return 0;
  for (const auto& c : *found)
    if (c.key_type.empty() || c.certificate.empty() ||
        text.find(c.certificate) == std::string_view::npos ||
        !c.key_type.ends_with(machineid::pam::kCertTypeSuffix))
      std::abort();
  return 0;
}
