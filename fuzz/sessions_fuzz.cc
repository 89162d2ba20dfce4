// The daemon's session table file (verifierd/sessions.cc): whatever
// state_dir/sessions.json holds, loading it never crashes, and a table that
// loads writes back to one that loads the same.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "sessions.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/sessions-fuzz.XXXXXX";
    const char* made = mkdtemp(tmpl);
    if (made == nullptr) std::abort();
    return std::string(made);
  }();
  const std::string path = dir + "/sessions.json";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);

  verifierd::SessionTable table(path);
  if (!table.load().ok()) return 0;
  std::size_t loaded = table.all().size();
  if (!table.save().ok()) std::abort();
  verifierd::SessionTable again(path);
  if (!again.load().ok() || again.all().size() != loaded) std::abort();
  return 0;
}
