// What /proc says of a process, and signals that reach only the process
// meant: a pid is always paired with its start time, and signals go through
// a pidfd opened while that pair still held, never to a bare pid.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace verifierd {

struct ProcStat {
  pid_t pid = 0, ppid = 0, sid = 0;
  std::uint64_t start_time = 0;  // clock ticks since boot (field 22)
  std::string comm;
};

// /proc/PID/stat, or nullopt when the process is gone or the file is odd.
std::optional<ProcStat> proc_stat(pid_t pid);

// Every process /proc lists now (those that vanish while it is read are
// left out).
std::vector<ProcStat> all_processes();

// A pidfd for the process `pid` that started at `start_time`; -1 when it is
// gone or the pid now names another process. The start time is read after
// the pidfd is open, so the descriptor cannot name a successor.
int open_pidfd(pid_t pid, std::uint64_t start_time);

// CLOCK_MONOTONIC in milliseconds: the event loop's and the terminator's
// clock.
std::int64_t monotonic_ms();

// Sends `sig` through `pidfd`; false when the process is gone or the
// daemon may not signal it.
bool signal_pidfd(int pidfd, int sig);

}  // namespace verifierd
