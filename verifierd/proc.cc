#include "proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <ctime>
#include <string_view>

namespace verifierd {

std::optional<ProcStat> proc_stat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return std::nullopt;
  // "pid (comm) state ppid pgrp session ... starttime(22) ...": comm may
  // hold blanks and parentheses, so fields are counted from its last ')'.
  std::string_view text(buf, static_cast<std::size_t>(n));
  std::size_t open_paren = text.find('('), close_paren = text.rfind(')');
  if (open_paren == std::string_view::npos || close_paren == std::string_view::npos || close_paren < open_paren)
    return std::nullopt;
  ProcStat st;
  st.pid = pid;
  st.comm = std::string(text.substr(open_paren + 1, close_paren - open_paren - 1));
  std::string_view rest = text.substr(close_paren + 1);
  for (int field = 3; field <= 22; ++field) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    std::size_t end = rest.find(' ');
    if (end == std::string_view::npos && field < 22) return std::nullopt;
    std::string_view value = rest.substr(0, end);
    auto parse = [&](auto& out) {
      return std::from_chars(value.data(), value.data() + value.size(), out).ec == std::errc();
    };
    if ((field == 4 && !parse(st.ppid)) || (field == 6 && !parse(st.sid)) || (field == 22 && !parse(st.start_time)))
      return std::nullopt;
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  return st;
}

std::vector<ProcStat> all_processes() {
  std::vector<ProcStat> out;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* entry = readdir(dir)) {
    pid_t pid = 0;
    std::string_view name(entry->d_name);
    if (std::from_chars(name.data(), name.data() + name.size(), pid).ec != std::errc()) continue;
    if (auto st = proc_stat(pid)) out.push_back(std::move(*st));
  }
  closedir(dir);
  return out;
}

int open_pidfd(pid_t pid, std::uint64_t start_time) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return -1;
  auto st = proc_stat(pid);
  if (!st || st->start_time != start_time) {
    close(fd);
    return -1;
  }
  return fd;
}

std::int64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool signal_pidfd(int pidfd, int sig) { return syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0; }

}  // namespace verifierd
