#include "machineid/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace machineid {
namespace {

std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

class Connection {
 public:
  Connection(const std::string& path, std::int64_t deadline) : path_(path), deadline_(deadline) {}
  ~Connection() {
    if (fd_ >= 0) close(fd_);
  }

  Status open() {
    if (path_.size() >= sizeof(sockaddr_un::sun_path)) return fail("socket path too long");
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return {};
    if (errno != EINPROGRESS && errno != EAGAIN) return fail("cannot connect");
    MID_CHECK(wait(POLLOUT));
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      errno = err;
      return fail("cannot connect");
    }
    return {};
  }

  Status send_all(const ByteVector& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      ssize_t n = send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        MID_CHECK(wait(POLLOUT));
      } else {
        return fail("cannot send");
      }
    }
    return {};
  }

  Status receive_exactly(std::uint8_t* out, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
      ssize_t n = recv(fd_, out + done, size - done, 0);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n == 0) {
        return make_error(Errc::io, path_ + ": daemon closed the connection");
      } else if (errno == EAGAIN || errno == EINTR) {
        MID_CHECK(wait(POLLIN));
      } else {
        return fail("cannot receive");
      }
    }
    return {};
  }

 private:
  Status wait(short events) {
    for (;;) {
      std::int64_t left = deadline_ - now_ms();
      if (left <= 0) return make_error(Errc::io, path_ + ": daemon did not answer in time");
      pollfd p{fd_, events, 0};
      int rc = poll(&p, 1, static_cast<int>(left));
      if (rc > 0) return {};
      if (rc < 0 && errno != EINTR) return fail("poll");
    }
  }

  Error fail(const char* what) const { return make_error(Errc::io, path_ + ": " + what + ": " + std::strerror(errno)); }

  std::string path_;
  std::int64_t deadline_;
  int fd_ = -1;
};

}  // namespace

Result<ByteVector> call_daemon(const std::string& socket_path, const ByteVector& request, int deadline_ms) {
  Connection c(socket_path, now_ms() + deadline_ms);
  MID_CHECK(c.open());
  MID_CHECK(c.send_all(frame(request)));
  std::uint8_t header[4];
  MID_CHECK(c.receive_exactly(header, sizeof header));
  MID_TRY(length, frame_length(header));
  ByteVector payload(length);
  MID_CHECK(c.receive_exactly(payload.data(), payload.size()));
  return payload;
}

}  // namespace machineid
