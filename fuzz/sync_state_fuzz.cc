// machineid-sync's state.json, as verifierd reads it: any bytes give a
// state or an error, and a state formats and reads back the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "machineid/sync_state.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto state = machineid::parse_sync_state(text, "fuzz.json");
  if (!state.ok()) return 0;
  auto again = machineid::parse_sync_state(machineid::format_sync_state(*state), "formatted");
  if (!again.ok() || again->sources.size() != state->sources.size()) std::abort();
  return 0;
}
