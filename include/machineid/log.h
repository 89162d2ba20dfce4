// The services' own log lines: each goes to stderr with the priority prefix
// sd-daemon.h defines ("<3>" error, "<4>" warning, "<5>" notice, "<6>"
// info), which journald turns into PRIORITY=, and with every byte a
// terminal or a log viewer would act on escaped (escape_untrusted): file
// names, URLs, key ids and YAML errors carry text other people wrote.
#pragma once

#include <string_view>

namespace machineid {

enum class Priority { error = 3, warning = 4, notice = 5, info = 6 };

// One line, "<N>program: message", in one write(). Thread-safe.
void log_as(std::string_view program, Priority priority, std::string_view message);

}  // namespace machineid
