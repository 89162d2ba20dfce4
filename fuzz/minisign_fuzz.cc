// minisign public keys and signature files: the first line of the input is
// taken for a key, the rest for a .minisig of the message "fuzz"; any bytes
// give a key, a verdict or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "machineid/minisign.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t newline = text.find('\n');
  auto key = machineid::MinisignKey::parse(text.substr(0, newline));
  if (key.ok() && newline != std::string_view::npos) {
    (void)key->id_hex();
    (void)machineid::minisign_verify(*key, "fuzz", text.substr(newline + 1), "fuzz.minisig");
  }
  return 0;
}
