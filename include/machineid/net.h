// IP addresses and the address lists of the `source-address` option.
#pragma once

#include <string_view>

#include "machineid/result.h"

namespace machineid {

// Whether `address` (IPv4 or IPv6 text) is in `list`, a comma-separated list
// of addresses and CIDR blocks as OpenSSH's source-address takes. As sshd,
// an IPv4-mapped client address (::ffff:a.b.c.d) is matched as IPv4, and
// every entry must be well-formed, even after a match: empty, longer than
// OpenSSH allows, characters other than hex digits '.' ':' '/', a prefix
// length beyond the family's bits, or host bits set beyond the prefix
// ("10.0.0.1/8") are errors. Addresses are parsed strictly (inet_pton), so
// shorthands such as "10.1" and zone ids ("fe80::1%eth0") are errors too.
Result<bool> address_in_list(std::string_view address, std::string_view list);

}  // namespace machineid
