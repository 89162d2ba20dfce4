#include "connection.h"

#include "proc.h"

namespace verifierd {
namespace {

// sshd names its processes "sshd" (and "sshd-session" since OpenSSH 9.8).
bool is_sshd(const ProcStat& st) { return st.comm == "sshd" || st.comm == "sshd-session"; }

}  // namespace

std::optional<ConnectionProcess> sshd_connection(pid_t peer, machineid::Asker asker) {
  if (asker == machineid::Asker::cli) return std::nullopt;
  pid_t pid = peer;
  auto st = proc_stat(pid);
  if (st && asker == machineid::Asker::principals) {  // sshd's child: its parent is the connection
    pid = st->ppid;
    st = proc_stat(pid);
  }
  if (!st) return std::nullopt;
  // Climb while the parent is an sshd whose own parent is an sshd too: the
  // connection process is the one whose parent is the listening sshd.
  for (int depth = 0; depth < 8; ++depth) {
    auto parent = proc_stat(st->ppid);
    if (!parent || !is_sshd(*parent)) break;
    auto grandparent = proc_stat(parent->ppid);
    if (!grandparent || !is_sshd(*grandparent)) break;
    pid = st->ppid;
    st = parent;
  }
  return ConnectionProcess{pid, st->start_time, is_sshd(*st)};
}

}  // namespace verifierd
