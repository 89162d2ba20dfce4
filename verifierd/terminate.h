// Ending an sshd session from outside it.
//
// sshd's process for the connection (its privileged monitor, where PAM
// runs) gets SIGHUP first: it hands the signal to its unprivileged child,
// the connection closes, and sshd runs its own cleanup, PAM's session close
// included. One grace period later everything the session started gets
// SIGKILL: the processes below the monitor when the end began, and every
// process of the sessions (setsid) those processes lead — so a command that
// ignores SIGHUP, or that lost its parent when sshd left, still goes.
//
// Why not the cgroup: logind gives a session its own scope only where
// pam_systemd runs, and the daemon's unit keeps the cgroup tree read-only
// (ProtectControlGroups). A process that leaves its session (a daemon that
// calls setsid) escapes, as it escapes sshd's own hangup.
//
// Every signal goes through a pidfd opened while the pid still named the
// process recorded (pid and start time), so a reused pid is never hit.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "proc.h"

namespace verifierd {

// How long sshd gets to close the session itself before SIGKILL.
inline constexpr std::int64_t kTerminateGraceMs = 1000;
// A session's process tree is cut off here (a fork bomb is not our size).
inline constexpr std::size_t kMaxSessionProcesses = 4096;

class Terminator {
 public:
  Terminator() = default;
  ~Terminator();
  Terminator(const Terminator&) = delete;
  Terminator& operator=(const Terminator&) = delete;

  // Starts ending the session of sshd's process `pid` that started at
  // `start_time`. False when that process is gone or may not be signalled.
  // `processes`: every process now (all_processes()), taken once for many
  // ends at a time.
  bool begin(pid_t pid, std::uint64_t start_time, const std::vector<ProcStat>& processes);
  // SIGKILLs what is due; finish_all(): everything pending, due or not
  // (the daemon is stopping: an end it began must not be left half done).
  void finish_due() { finish(false); }
  void finish_all() { finish(true); }
  // When finish_due has work (monotonic_ms); 0 for none.
  std::int64_t next_due_ms() const;

 private:
  struct Ending {
    std::vector<int> pidfds;     // the monitor and the processes below it
    std::vector<pid_t> sessions;  // the sessions (sid) they lead
    std::uint64_t since = 0;      // the monitor's start time: later processes only
    std::int64_t due_ms = 0;
  };
  void finish(bool all);
  std::vector<Ending> endings_;
};

}  // namespace verifierd
