// The daemon's own log lines (machineid/log.h), named machineid-verifierd.
#pragma once

#include <string_view>

#include "machineid/log.h"

namespace verifierd {

using machineid::Priority;

inline void log(Priority priority, std::string_view message) {
  machineid::log_as("machineid-verifierd", priority, message);
}

}  // namespace verifierd
