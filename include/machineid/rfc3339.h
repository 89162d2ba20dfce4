// RFC 3339 timestamps, as Teleport writes a lock's expiry.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "machineid/result.h"

namespace machineid {

// Unix seconds of an RFC 3339 time ("2026-01-02T15:04:05Z", with optional
// fraction and numeric offset). A fraction rounds up, so a lock is in force
// through the whole second in which it ends.
Result<std::int64_t> parse_rfc3339(std::string_view text);

// "2026-01-02T15:04:05Z" for Unix seconds in years 0000..9999; other
// values as their decimal seconds. No locale, no time zone look-up.
std::string format_rfc3339(std::int64_t seconds);

// The same instant as OpenSSH's authorized_keys time ("20260102150405Z"),
// clamped to the last second of 9999.
std::string format_ssh_time(std::int64_t seconds);

}  // namespace machineid
