#include "machineid/log.h"

#include <cstdio>
#include <string>

#include "machineid/encoding.h"

namespace machineid {

void log_as(std::string_view program, Priority priority, std::string_view message) {
  std::string line = "<" + std::to_string(static_cast<int>(priority)) + ">" + std::string(program) + ": " +
                     escape_untrusted(message) + "\n";
  // stderr is unbuffered: one fwrite is one write(), whole, even when
  // another thread logs at the same moment.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace machineid
