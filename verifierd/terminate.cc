#include "terminate.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <map>

#include "proc.h"

namespace verifierd {

Terminator::~Terminator() {
  for (auto& e : endings_)
    for (int fd : e.pidfds) close(fd);
}

bool Terminator::begin(pid_t pid, std::uint64_t start_time, const std::vector<ProcStat>& processes) {
  int monitor = open_pidfd(pid, start_time);
  if (monitor < 0) return false;
  Ending ending;
  ending.since = start_time;
  ending.due_ms = monotonic_ms() + kTerminateGraceMs;
  ending.pidfds.push_back(monitor);

  // The processes below the monitor now, before SIGHUP orphans them.
  std::multimap<pid_t, const ProcStat*> children;
  for (const auto& st : processes) children.emplace(st.ppid, &st);
  std::vector<pid_t> tree = {pid}, todo = {pid};
  while (!todo.empty() && tree.size() < kMaxSessionProcesses) {
    pid_t parent = todo.back();
    todo.pop_back();
    auto [first, last] = children.equal_range(parent);
    for (auto it = first; it != last && tree.size() < kMaxSessionProcesses; ++it) {
      const ProcStat& child = *it->second;
      if (child.start_time < start_time) continue;  // not born of this session
      int fd = open_pidfd(child.pid, child.start_time);
      if (fd < 0) continue;
      ending.pidfds.push_back(fd);
      tree.push_back(child.pid);
      todo.push_back(child.pid);
    }
  }
  // Sessions led by a process of the tree: never the listening sshd's.
  for (const auto& st : processes)
    if (st.sid == st.pid && std::find(tree.begin(), tree.end(), st.pid) != tree.end())
      ending.sessions.push_back(st.sid);

  bool signalled = signal_pidfd(monitor, SIGHUP);
  endings_.push_back(std::move(ending));
  return signalled;
}

void Terminator::finish(bool all) {
  std::int64_t now_ms = monotonic_ms();
  std::vector<Ending> due;
  for (auto it = endings_.begin(); it != endings_.end();) {
    if (all || it->due_ms <= now_ms) {
      due.push_back(std::move(*it));
      it = endings_.erase(it);
    } else {
      ++it;
    }
  }
  if (due.empty()) return;
  std::vector<ProcStat> everyone = all_processes();
  for (Ending& e : due) {
    for (int fd : e.pidfds) {
      signal_pidfd(fd, SIGKILL);
      close(fd);
    }
    for (const ProcStat& st : everyone) {
      if (st.start_time < e.since || std::find(e.sessions.begin(), e.sessions.end(), st.sid) == e.sessions.end())
        continue;
      int fd = open_pidfd(st.pid, st.start_time);
      if (fd < 0) continue;
      signal_pidfd(fd, SIGKILL);
      close(fd);
    }
  }
}

std::int64_t Terminator::next_due_ms() const {
  std::int64_t next = 0;
  for (const auto& e : endings_) next = next == 0 ? e.due_ms : std::min(next, e.due_ms);
  return next;
}

}  // namespace verifierd
