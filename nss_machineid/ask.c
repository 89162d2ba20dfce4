#define _GNU_SOURCE
#include "ask.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "machineid/userdb_format.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 0 once `fd` is ready for `events`, -1 at the deadline or on error. */
static int wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return -1;
    struct pollfd p = {fd, events, 0};
    int n = poll(&p, 1, (int)left);
    if (n > 0) return (p.revents & events) ? 0 : -1;
    if (n < 0 && errno != EINTR) return -1;
  }
}

static int send_all(int fd, const unsigned char* p, size_t n, int64_t deadline) {
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      p += k;
      n -= (size_t)k;
    } else if (k < 0 && errno == EINTR) {
      continue;
    } else if (k < 0 && errno == EAGAIN && wait_for(fd, POLLOUT, deadline) == 0) {
      continue;
    } else {
      return -1;
    }
  }
  return 0;
}

static int recv_all(int fd, unsigned char* p, size_t n, int64_t deadline) {
  while (n > 0) {
    ssize_t k = recv(fd, p, n, 0);
    if (k > 0) {
      p += k;
      n -= (size_t)k;
    } else if (k < 0 && errno == EINTR) {
      continue;
    } else if (k < 0 && errno == EAGAIN && wait_for(fd, POLLIN, deadline) == 0) {
      continue;
    } else {
      return -1; /* closed early, or an error */
    }
  }
  return 0;
}

static void put_u32(unsigned char* p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* Connected, within the deadline, to a daemon that runs as root and is not
 * this very process (our own lookups must not wait on ourselves). */
static int connect_daemon(int fd, const char* socket_path, int64_t deadline) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t len = strlen(socket_path);
  if (len >= sizeof addr.sun_path) return -1;
  memcpy(addr.sun_path, socket_path, len + 1);
  if (connect(fd, (const struct sockaddr*)&addr, sizeof addr) != 0) {
    int err = 0;
    socklen_t errlen = sizeof err;
    if (errno != EINPROGRESS || wait_for(fd, POLLOUT, deadline) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0)
      return -1;
  }
  struct ucred peer;
  socklen_t peerlen = sizeof peer;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peerlen) != 0 || peer.uid != 0 ||
      peer.pid == getpid())
    return -1;
  return 0;
}

int mid_ask_provisional(const char* socket_path, const char* login, unsigned char* buf,
                    struct mid_reply* r) {
  int64_t deadline = now_ms() + MID_ASK_DEADLINE_MS;
  size_t n = strlen(login);
  if (n == 0 || n > MID_USERDB_MAX_LOGIN) return -1;

  /* frame: uint32 length, then version, kind, string login */
  unsigned char request[4 + 2 + 4 + MID_USERDB_MAX_LOGIN];
  put_u32(request, (uint32_t)(2 + 4 + n));
  request[4] = MID_PROTOCOL_VERSION;
  request[5] = MID_KIND_PROVISIONAL_USER;
  put_u32(request + 6, (uint32_t)n);
  memcpy(request + 10, login, n);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  unsigned char header[4];
  uint32_t length = 0;
  int ok = connect_daemon(fd, socket_path, deadline) == 0 &&
           send_all(fd, request, 10 + n, deadline) == 0 &&
           recv_all(fd, header, sizeof header, deadline) == 0;
  if (ok) {
    length = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 |
             header[3];
    ok = length > 0 && length <= MID_MAX_REPLY_BYTES && recv_all(fd, buf, length, deadline) == 0;
  }
  close(fd);
  return ok && mid_reply_parse(buf, length, r) == 0 && mid_reply_usable(r, login) ? 0 : -1;
}
