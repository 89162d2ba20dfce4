// machineidctl's commands; each returns the process exit code.
#pragma once

#include <string>
#include <vector>

#include "machineid/config.h"
#include "machineid/result.h"

namespace machineidctl {

// Exit codes shared by every command.
inline constexpr int kExitAllowed = 0;
inline constexpr int kExitDenied = 1;
inline constexpr int kExitUsage = 2;  // usage, config or I/O error

int verify(const std::vector<std::string>& args);
// Exit 0 when the daemon answers and reports no load errors, 1 otherwise.
int status(const std::vector<std::string>& args);
int reload(const std::vector<std::string>& args);
// Lists host users, or retires one with --forget; exit 1 when the daemon
// refuses or reports its host-user database unusable.
int users(const std::vector<std::string>& args);
// Prints our audit events from journald or the JSON-lines file.
int audit(const std::vector<std::string>& args);
// Checks the node's wiring and health; exit 1 when any check fails.
int doctor(const std::vector<std::string>& args);
// `policy import`: splits a roles/locks YAML stream into roles_dir and
// locks_dir; exit 1 when a document is refused (nothing is then written).
int policy(const std::vector<std::string>& args);

// StrictModes for user_ca_file as the daemon sees it: with user_ca_url set
// the daemon's user (client_user, under the packaged units) rewrites the
// file and may own it.
machineid::Status check_ca_file_trusted(const machineid::Config& config);

}  // namespace machineidctl
