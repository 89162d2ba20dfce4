// verifierd.toml: any text gives a config or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "machineid/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)machineid::parse_config(text, "fuzz.toml", "fuzz-host");
  return 0;
}
