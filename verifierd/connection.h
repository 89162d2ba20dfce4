// Which sshd connection a request comes from. sshd runs one process per
// connection (the privileged monitor, whose parent is the listening sshd);
// the principals helper is its child, and PAM's account and session calls
// run in it or in its children. A connection is named by that process's pid
// and start time, so a pid the kernel reuses names another connection.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "machineid/protocol.h"

namespace verifierd {

struct ConnectionProcess {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  bool sshd = false;  // an sshd process (not a test's PAM driver, say)
  // "pid:starttime": the connection's name.
  std::string key() const { return std::to_string(pid) + ":" + std::to_string(start_time); }
};

// The connection process for a request from `peer` (SO_PEERCRED) asking as
// `asker`; nullopt for machineidctl, or when /proc does not say (the peer
// is gone): such a request is a connection of its own.
std::optional<ConnectionProcess> sshd_connection(pid_t peer, machineid::Asker asker);

}  // namespace verifierd
