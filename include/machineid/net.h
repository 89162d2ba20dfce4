// IP addresses and the address lists of the `source-address` option.
#pragma once

#include <string_view>

#include "machineid/result.h"

namespace machineid {

// Whether `address` (IPv4 or IPv6 text) is in `list`, a comma-separated list
// of addresses and CIDR blocks as OpenSSH's source-address takes. A malformed
// address or list entry is an error.
Result<bool> address_in_list(std::string_view address, std::string_view list);

}  // namespace machineid
