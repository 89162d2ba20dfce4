// RFC 3339 timestamps, as Teleport writes a lock's expiry.
#pragma once

#include <cstdint>
#include <string_view>

#include "machineid/result.h"

namespace machineid {

// Unix seconds of an RFC 3339 time ("2026-01-02T15:04:05Z", with optional
// fraction and numeric offset). A fraction rounds up, so a lock is in force
// through the whole second in which it ends.
Result<std::int64_t> parse_rfc3339(std::string_view text);

}  // namespace machineid
