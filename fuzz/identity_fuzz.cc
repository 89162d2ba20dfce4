// libFuzzer: any bytes as the JSON of Teleport's certificate extensions
// (teleport-roles, teleport-traits, teleport-active-requests), read as a
// certificate's identity is read.
#include <cstddef>
#include <cstdint>
#include <string>

#include "machineid/identity.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace machineid;
  std::string text(reinterpret_cast<const char*>(data), size);
  for (std::string_view name : {kExtRoles, kExtTraits, kExtActiveRequests}) {
    Certificate cert;
    cert.key_id = "bot-fuzz";
    cert.extensions.push_back(CertOption{std::string(name), text});
    (void)read_identity(cert);
  }
  return 0;
}
