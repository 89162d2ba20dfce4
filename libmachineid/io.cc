#include "machineid/io.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <utility>
#include <vector>

namespace machineid {
namespace {

// Running out of descriptors or memory, or a signal, passes; the file has
// not changed. Everything else is the file's own state.
bool transient_errno(int e) { return e == EMFILE || e == ENFILE || e == ENOMEM || e == EINTR; }

Error io_error(const std::string& path, const std::string& what) {
  int e = errno;
  return make_error(transient_errno(e) ? Errc::transient : Errc::io,
                    path + ": " + what + ": " + std::strerror(e));
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a file";
}

// Closes a descriptor on every path out of a function.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer;
  // it is refused below. On a regular file the flag changes nothing.
  Fd f{open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)};
  if (f.fd < 0) return io_error(path, "cannot open");
  struct stat st {};
  if (fstat(f.fd, &st) != 0) return io_error(path, "cannot stat");
  if (!S_ISREG(st.st_mode))
    return make_error(Errc::io, path + ": not a regular file (" + file_kind(st.st_mode) +
                                    "); refusing to read it");
  if (static_cast<std::size_t>(st.st_size) > max_bytes)
    return make_error(Errc::limit, path + ": " + std::to_string(st.st_size) +
                                       " bytes exceeds the limit of " + std::to_string(max_bytes));
  std::string content;
  char buf[65536];
  for (;;) {
    ssize_t n = read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(path, "cannot read");
    if (n == 0) break;
    // The file may grow between fstat and read; the bound holds regardless.
    if (content.size() + static_cast<std::size_t>(n) > max_bytes)
      return make_error(Errc::limit,
                        path + ": grew past the limit of " + std::to_string(max_bytes) + " bytes");
    content.append(buf, static_cast<std::size_t>(n));
  }
  return content;
}

Status write_file_atomic(const std::string& path, const std::string& content, unsigned mode, Durability durability) {
  const bool sync = durability == Durability::on_disk;
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos)
    dir = slash == 0 ? "/" : path.substr(0, slash);
  std::string tmp = path + ".tmp.XXXXXX";
  Fd f{mkostemp(tmp.data(), O_CLOEXEC)};
  if (f.fd < 0) return io_error(tmp, "cannot create");
  auto fail = [&](const char* what) {
    Error e = io_error(tmp, what);
    unlink(tmp.c_str());
    return e;
  };
  if (fchmod(f.fd, mode) != 0) return fail("cannot chmod");
  if (!write_all(f.fd, content.data(), content.size())) return fail("cannot write");
  if (sync && fsync(f.fd) != 0) return fail("cannot fsync");
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename into place");
  if (!sync) return {};
  Fd d{open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0 || fsync(d.fd) != 0) return io_error(dir, "cannot fsync directory");
  return {};
}

namespace {

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string user_name(uid_t uid) {
  passwd pw{}, *found = nullptr;
  std::vector<char> buf(4096);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr)
    return std::string(found->pw_name) + " (uid " + std::to_string(uid) + ")";
  return "uid " + std::to_string(uid);
}

// One file or directory of the chain, as stat() found it.
Status check_entry(const std::string& path, const struct stat& st, uid_t also) {
  const uid_t euid = geteuid();
  const std::string found =
      " (owner " + user_name(st.st_uid) + ", mode " + octal_mode(st.st_mode) + ")";
  const char* what = S_ISDIR(st.st_mode) ? "directory" : "file";
  if (st.st_uid != 0 && st.st_uid != euid && st.st_uid != also) {
    std::string owners = "root";
    for (uid_t uid : {euid, also})
      if (uid != 0 && owners.find("(uid " + std::to_string(uid) + ")") == std::string::npos)
        owners += " or " + user_name(uid);
    return make_error(Errc::config,
                      path + ": " + what + " is owned by neither " + owners + found +
                          ", so its owner can change this node's policy; fix: chown root " + path);
  }
  mode_t writable = st.st_mode & (S_IWGRP | S_IWOTH);
  if (writable == 0) return {};
  // A root-owned sticky directory (/tmp, or /etc/machineid at 1775) lets
  // others add entries but not rename, replace or delete anyone else's:
  // the entries on our path, owned by root or by us as checked on their own,
  // stay ours. Without the sticky bit anyone who may write it could swap
  // them.
  if (S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && st.st_uid == 0) return {};
  const char* by = writable == (S_IWGRP | S_IWOTH) ? "group and others"
                   : writable == S_IWGRP           ? "group"
                                                   : "others";
  return make_error(Errc::config,
                    path + ": " + what + " is writable by " + by + found +
                        ", so others can change this node's policy; fix: chmod go-w " + path);
}

// "/a/b/c" -> "/a/b/c", "/a/b", "/a", "/": the entry, then each directory up.
std::vector<std::string> chain(const std::string& absolute) {
  std::vector<std::string> parts;
  for (std::size_t begin = 0; begin < absolute.size();) {
    std::size_t end = absolute.find('/', begin);
    if (end == std::string::npos) end = absolute.size();
    std::string part = absolute.substr(begin, end - begin);
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    begin = end + 1;
  }
  std::vector<std::string> out;
  for (std::size_t n = parts.size(); n > 0; --n) {
    std::string prefix;
    for (std::size_t i = 0; i < n; ++i) prefix += "/" + parts[i];
    out.push_back(std::move(prefix));
  }
  out.push_back("/");
  return out;
}

}  // namespace

Status check_trusted_path(const std::string& path) { return check_trusted_path(path, geteuid()); }

Status check_trusted_path(const std::string& path, uid_t also_trusted) {
  if (path.empty()) return make_error(Errc::config, "an empty path cannot be checked");
  std::string absolute = path;
  if (path.front() != '/') {
    std::unique_ptr<char, decltype(&std::free)> cwd(getcwd(nullptr, 0), std::free);
    if (!cwd) return io_error(path, "cannot find the current directory");
    absolute = std::string(cwd.get()) + "/" + path;
  }
  // Along the path as written, stat() of each prefix is the directory that
  // holds the next name (a symbolic link there included); along the path it
  // resolves to are the directories that hold the real file. Both must be
  // safe, each checked once.
  std::vector<std::string> paths = chain(absolute);
  std::unique_ptr<char, decltype(&std::free)> resolved(realpath(absolute.c_str(), nullptr),
                                                       std::free);
  if (!resolved) return io_error(path, "cannot resolve");
  if (std::string(resolved.get()) != absolute)
    for (auto& p : chain(resolved.get())) paths.push_back(std::move(p));
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const auto& p : paths) {
    struct stat st {};
    if (stat(p.c_str(), &st) != 0) return io_error(p, "cannot stat");
    if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
    MID_CHECK(check_entry(p, st, also_trusted));
  }
  return {};
}

}  // namespace machineid
