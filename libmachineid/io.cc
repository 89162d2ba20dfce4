#include "machineid/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace machineid {
namespace {

Error io_error(const std::string& path, const std::string& what) {
  return make_error(Errc::io, path + ": " + what + ": " + std::strerror(errno));
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
  Fd f{open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
  if (f.fd < 0) return io_error(path, "cannot open");
  struct stat st {};
  if (fstat(f.fd, &st) != 0) return io_error(path, "cannot stat");
  if (!S_ISREG(st.st_mode)) return make_error(Errc::io, path + ": not a regular file");
  if (static_cast<std::size_t>(st.st_size) > max_bytes)
    return make_error(Errc::limit, path + ": " + std::to_string(st.st_size) + " bytes exceeds the limit of " +
                                       std::to_string(max_bytes));
  std::string content;
  char buf[65536];
  for (;;) {
    ssize_t n = read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(path, "cannot read");
    if (n == 0) break;
    // The file may grow between fstat and read; the bound holds regardless.
    if (content.size() + static_cast<std::size_t>(n) > max_bytes)
      return make_error(Errc::limit, path + ": grew past the limit of " + std::to_string(max_bytes) + " bytes");
    content.append(buf, static_cast<std::size_t>(n));
  }
  return content;
}

Status write_file_atomic(const std::string& path, const std::string& content, unsigned mode) {
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
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
  if (fsync(f.fd) != 0) return fail("cannot fsync");
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename into place");
  Fd d{open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0 || fsync(d.fd) != 0) return io_error(dir, "cannot fsync directory");
  return {};
}

}  // namespace machineid
