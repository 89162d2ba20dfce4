// libFuzzer target: KRL parsing, then a revocation check of one fixed
// certificate against whatever parsed.
#include <cstddef>
#include <cstdint>

#include "machineid/cert.h"
#include "machineid/krl.h"
#include "machineid/wire.h"

namespace {

using machineid::ByteVector;
using machineid::WireWriter;

// An Ed25519 key blob whose 32 key bytes are all `fill`.
ByteVector ed25519_blob(std::uint8_t fill) {
  ByteVector key(32, fill);
  return WireWriter().string("ssh-ed25519").string(key).take();
}

// Only the fields revoked() reads; no signature is needed to check revocation.
machineid::Certificate make_certificate() {
  machineid::Certificate cert;
  cert.key.type = machineid::KeyType::ed25519;
  cert.key.blob = ed25519_blob(0x11);
  cert.key.material.assign(32, 0x11);
  cert.serial = 7;
  cert.type = machineid::kUserCert;
  cert.key_id = "bot-fuzz";
  cert.signature_key = ed25519_blob(0x22);
  return cert;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const machineid::Certificate cert = make_certificate();
  auto krl = machineid::Krl::parse(machineid::Bytes(data, size));
  if (krl.ok()) (void)krl->revoked(cert);
  return 0;
}
