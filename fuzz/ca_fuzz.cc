// libFuzzer target: bytes as user_ca_file text. A CA set that parses must
// parse to the same keys again from the form it writes for sshd.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "machineid/ca.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto set = machineid::CaSet::parse(text, "fuzz", "example.teleport.sh");
  if (!set.ok()) return 0;
  auto again = machineid::CaSet::parse(set->sshd_form(), "fuzz-sshd", "example.teleport.sh");
  bool same = again.ok() && again->keys().size() == set->keys().size();
  for (std::size_t i = 0; same && i < set->keys().size(); ++i)
    same = again->keys()[i].fingerprint == set->keys()[i].fingerprint;
  if (!same) {
    std::fprintf(stderr, "sshd form of a parsed CA set does not parse back: %s\n",
                 again.ok() ? "different keys" : again.error().message.c_str());
    std::abort();
  }
  return 0;
}
