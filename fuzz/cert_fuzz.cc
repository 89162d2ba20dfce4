// libFuzzer target: bytes as a certificate blob. A blob that parses must
// parse to the same certificate again from its key-cert.pub text line.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "machineid/cert.h"
#include "machineid/encoding.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  machineid::Bytes blob(data, size);
  auto cert = machineid::parse_certificate(blob);
  if (!cert.ok()) return 0;
  std::string text = cert->type_name + " " + machineid::base64_encode(blob) + " fuzz\n";
  auto again = machineid::parse_certificate_text(text);
  if (!again.ok() || again->blob != cert->blob || again->key_id != cert->key_id) {
    std::fprintf(stderr, "text form of a parsed certificate does not parse back: %s\n",
                 again.ok() ? "different certificate" : again.error().message.c_str());
    std::abort();
  }
  return 0;
}
