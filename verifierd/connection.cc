#include "connection.h"

#include <charconv>
#include <fstream>
#include <iterator>
#include <string_view>

namespace verifierd {
namespace {

struct ProcStat {
  pid_t ppid = 0;
  unsigned long long starttime = 0;
  std::string comm;
};

// /proc/PID/stat: "pid (comm) state ppid ... starttime(22) ...". comm may
// hold blanks and parentheses, so fields are counted from its last ')'.
std::optional<ProcStat> proc_stat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  ProcStat st;
  st.comm = text.substr(open + 1, close - open - 1);
  std::string_view rest(text);
  rest.remove_prefix(close + 1);
  // Field 3 is the state; ppid is field 4 and starttime field 22.
  for (int field = 3; field <= 22; ++field) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    std::size_t end = rest.find(' ');
    std::string_view value = rest.substr(0, end);
    if (field == 4) std::from_chars(value.data(), value.data() + value.size(), st.ppid);
    if (field == 22 && std::from_chars(value.data(), value.data() + value.size(), st.starttime).ec != std::errc())
      return std::nullopt;
    if (end == std::string_view::npos && field < 22) return std::nullopt;
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  return st;
}

// sshd names its processes "sshd" (and "sshd-session" since OpenSSH 9.8).
bool is_sshd(const ProcStat& st) { return st.comm == "sshd" || st.comm == "sshd-session"; }

}  // namespace

std::optional<std::string> sshd_connection(pid_t peer, machineid::Asker asker) {
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
  return std::to_string(pid) + ":" + std::to_string(st->starttime);
}

}  // namespace verifierd
