// Asking verifierd over its Unix socket, with a hard deadline, for the C++
// tools (machineidctl). It runs on the C client the modules and the
// principals helper use (machineid/mid_client.h), so there is one socket
// client to maintain.
#pragma once

#include <string>

#include "machineid/protocol.h"
#include "machineid/result.h"

namespace machineid {

inline constexpr std::string_view kDefaultSocketPath = "/run/machineid/verifierd.sock";

// Sends one request payload and returns the reply payload. Connecting,
// writing and reading together take at most `deadline_ms`; past it, or on
// any error, returns an Errc::io error naming the socket.
Result<ByteVector> call_daemon(const std::string& socket_path, const ByteVector& request, int deadline_ms);

}  // namespace machineid
