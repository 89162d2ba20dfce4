/* One request and its reply over the daemon's Unix socket, within one total
 * deadline (include/machineid/mid_client.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "machineid/mid_client.h"

int64_t mid_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct call {
  const char* path;
  int fd;
  int64_t deadline;
  char* err;
  size_t errlen;
};

/* Sets the error message "<socket>: <what>"; returns -1. */
static int fail(struct call* c, const char* format, ...) {
  if (c->err == NULL || c->errlen == 0) return -1;
  int n = snprintf(c->err, c->errlen, "%s: ", c->path);
  if (n >= 0 && (size_t)n < c->errlen) {
    va_list args;
    va_start(args, format);
    vsnprintf(c->err + n, c->errlen - (size_t)n, format, args);
    va_end(args);
  }
  return -1;
}

static int fail_errno(struct call* c, const char* what) {
  return fail(c, "%s: %s", what, strerror(errno));
}

/* 0 once the socket is ready for `events`, -1 at the deadline or on error. */
static int wait_for(struct call* c, short events) {
  for (;;) {
    int64_t left = c->deadline - mid_now_ms();
    if (left <= 0) return fail(c, "daemon did not answer in time");
    struct pollfd p = {c->fd, events, 0};
    int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
    if (n > 0) return 0; /* an error or hang-up shows in the next call */
    if (n < 0 && errno != EINTR) return fail_errno(c, "poll");
  }
}

static int connect_to(struct call* c, unsigned peer_checks) {
  struct sockaddr_un addr;
  size_t len = strlen(c->path);
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (len == 0 || len >= sizeof addr.sun_path) return fail(c, "socket path empty or too long");
  memcpy(addr.sun_path, c->path, len + 1);
  if (connect(c->fd, (const struct sockaddr*)&addr, sizeof addr) != 0) {
    int err = 0;
    socklen_t errlen = sizeof err;
    if (errno != EINPROGRESS && errno != EAGAIN) return fail_errno(c, "cannot connect");
    if (wait_for(c, POLLOUT) != 0) return -1;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0) {
      errno = err;
      return fail_errno(c, "cannot connect");
    }
  }
  if (peer_checks != 0) {
    struct ucred peer;
    socklen_t peerlen = sizeof peer;
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &peer, &peerlen) != 0)
      return fail_errno(c, "cannot tell who listens");
    if ((peer_checks & MID_PEER_ROOT) && peer.uid != 0)
      return fail(c, "the daemon runs as uid %u, not root", (unsigned)peer.uid);
    if ((peer_checks & MID_PEER_NOT_SELF) && peer.pid == getpid())
      return fail(c, "the socket is this process's own");
  }
  return 0;
}

static int send_all(struct call* c, const unsigned char* p, size_t n) {
  while (n > 0) {
    ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      p += k;
      n -= (size_t)k;
    } else if (k < 0 && errno == EINTR) {
      continue;
    } else if (k < 0 && errno == EAGAIN) {
      if (wait_for(c, POLLOUT) != 0) return -1;
    } else {
      return fail_errno(c, "cannot send");
    }
  }
  return 0;
}

static int recv_all(struct call* c, unsigned char* p, size_t n) {
  while (n > 0) {
    ssize_t k = recv(c->fd, p, n, 0);
    if (k > 0) {
      p += k;
      n -= (size_t)k;
    } else if (k == 0) {
      return fail(c, "daemon closed the connection");
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN) {
      if (wait_for(c, POLLIN) != 0) return -1;
    } else {
      return fail_errno(c, "cannot receive");
    }
  }
  return 0;
}

int mid_call(const char* socket_path, const struct mid_writer* request, int64_t deadline,
             unsigned peer_checks, unsigned char* reply, size_t cap, size_t* size, char* err,
             size_t errlen) {
  struct call c = {socket_path, -1, deadline, err, errlen};
  unsigned char header[4];
  uint32_t length = 0;
  int rc = -1;
  if (err != NULL && errlen > 0) err[0] = '\0';
  *size = 0;
  if (request->failed || request->size <= sizeof header) return fail(&c, "no request to send");
  c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c.fd < 0) return fail_errno(&c, "socket");
  if (connect_to(&c, peer_checks) == 0 && send_all(&c, request->data, request->size) == 0 &&
      recv_all(&c, header, sizeof header) == 0) {
    length = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 |
             header[3];
    if (length == 0 || length > MID_MAX_FRAME_BYTES || length > cap)
      fail(&c, "frame of %u bytes (limit %zu)", (unsigned)length,
           cap < MID_MAX_FRAME_BYTES ? cap : (size_t)MID_MAX_FRAME_BYTES);
    else if (recv_all(&c, reply, length) == 0)
      rc = 0;
  }
  close(c.fd);
  if (rc == 0) *size = length;
  return rc;
}
