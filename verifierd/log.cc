#include "log.h"

#include <cstdio>
#include <string>

#include "machineid/encoding.h"

namespace verifierd {

void log(Priority priority, std::string_view message) {
  std::string line = "<" + std::to_string(static_cast<int>(priority)) +
                     ">machineid-verifierd: " + machineid::escape_untrusted(message) + "\n";
  // stderr is unbuffered: one fwrite is one write(), whole, even when the
  // CA refresher's thread logs at the same moment.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace verifierd
