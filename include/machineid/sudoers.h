// The sudoers file of a host user, from the host_sudoers lines of the roles
// that granted it, as Teleport's node agent writes it: one
// "<login> <entry>" line per entry, in /etc/sudoers.d/machineid-<login>.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "machineid/result.h"

namespace machineid {

inline constexpr std::string_view kSudoersDir = "/etc/sudoers.d";
inline constexpr std::size_t kMaxSudoersBytes = 64 * 1024;

// "machineid-<login>", with the characters that make sudo skip a file in
// an includedir ('.', '~') and '/' turned into '_', as Teleport does.
std::string sudoers_file_name(std::string_view login);

// The file's content ("" when there are no entries). An entry that could
// reach past its own line — a control character (a newline from a trait
// would start a rule of its own) or a trailing backslash (which continues
// the line) — is an error naming it; visudo checks the rest.
Result<std::string> sudoers_content(std::string_view login, const std::vector<std::string>& entries);

}  // namespace machineid
