// The daemon's own log lines: one function, one place. Each line goes to
// stderr with the priority prefix sd-daemon.h defines ("<3>" error, "<4>"
// warning, "<5>" notice, "<6>" info), which journald turns into PRIORITY=,
// and with every byte a terminal or a log viewer would act on escaped
// (machineid::escape_untrusted): file names, key ids and YAML errors carry
// text other people wrote.
#pragma once

#include <string_view>

namespace verifierd {

enum class Priority { error = 3, warning = 4, notice = 5, info = 6 };

// One line, "<N>machineid-verifierd: message". Thread-safe.
void log(Priority priority, std::string_view message);

}  // namespace verifierd
