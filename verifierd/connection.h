// Which sshd connection a request comes from. sshd runs one process per
// connection (the privileged monitor, whose parent is the listening sshd);
// the principals helper is its child, and PAM's account and session calls
// run in it or in its children. A connection is named by that process's pid
// and start time, so a pid the kernel reuses names another connection.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "machineid/protocol.h"

namespace verifierd {

// "pid:starttime" of the connection process for a request from `peer`
// (SO_PEERCRED) asking as `asker`; nullopt for machineidctl, or when /proc
// does not say (the peer is gone): such a request is a connection of its
// own.
std::optional<std::string> sshd_connection(pid_t peer, machineid::Asker asker);

}  // namespace verifierd
