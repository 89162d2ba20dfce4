// machineidctl's commands; each takes its parsed command line and returns
// the process exit code (cli.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "cli.h"
#include "machineid/config.h"
#include "machineid/result.h"
#include "machineid/wire.h"

namespace machineidctl {

// SPEC §5: exit 0 allowed, 1 denied, 2 usage, config or I/O error.
int verify(const Args& args);
// What the daemon has in force; exit 1 when it reports load errors.
int status(const Args& args);
// Makes the daemon reload, then prints its status as `status` does.
int reload(const Args& args);
// Lists host users, or retires one with --forget; exit 1 when the daemon
// refuses or reports its host-user database unusable.
int users(const Args& args);
// Lists the open certificate sessions, or ends one with --kill (root).
int sessions(const Args& args);
// Prints our audit events from journald or the JSON-lines file.
int audit(const Args& args);
// Checks the node's wiring and health; exit 1 when any check fails.
int doctor(const Args& args);
// `policy import`: splits a roles/locks YAML stream into roles_dir and
// locks_dir; exit 1 when a document is refused (nothing is then written).
int policy_import(const Args& args);

// The daemon's socket: --socket, or else [daemon] socket of --config (or of
// the default configuration).
machineid::Result<std::string> daemon_socket(const Args& args);
// Sends `request` to the daemon and parses its status-style JSON answer
// into `reply`. Returns kExitOk, or — having said why on stderr —
// kExitUsage (configuration), kExitUnreachable (no socket, no answer) or
// kExitFindings (the daemon refused the request or answered garbage).
int ask_daemon(const Args& args, const machineid::ByteVector& request, nlohmann::json& reply);

// StrictModes for user_ca_file as the daemon sees it: with user_ca_url set
// the daemon's user (client_user, under the packaged units) rewrites the
// file and may own it.
machineid::Status check_ca_file_trusted(const machineid::Config& config);

}  // namespace machineidctl
