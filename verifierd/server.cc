#include "server.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace verifierd {
namespace {

using namespace machineid;

std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::int64_t wall_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

void log(const std::string& line) { std::fprintf(stderr, "machineid-verifierd: %s\n", line.c_str()); }

void epoll_set(int epoll_fd, int op, int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd, op, fd, &ev) != 0 && op != EPOLL_CTL_DEL) {
    log(std::string("epoll_ctl: ") + std::strerror(errno));
    std::abort();
  }
}

}  // namespace

Server::Server(Engine& engine, int listen_fd, uid_t client_uid)
    : engine_(engine), listen_fd_(listen_fd), client_uid_(client_uid) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (epoll_fd_ < 0 || signal_fd_ < 0 || inotify_fd_ < 0) {
    log(std::string("cannot set up the event loop: ") + std::strerror(errno));
    std::abort();
  }
  epoll_set(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, EPOLLIN);
  epoll_set(epoll_fd_, EPOLL_CTL_ADD, signal_fd_, EPOLLIN);
  epoll_set(epoll_fd_, EPOLL_CTL_ADD, inotify_fd_, EPOLLIN);
  watch_files();
}

Server::~Server() {
  for (auto& [fd, c] : connections_) close(fd);
  for (int fd : {epoll_fd_, signal_fd_, inotify_fd_})
    if (fd >= 0) close(fd);
}

void Server::watch_files() {
  // Watching directories catches the rename of an atomic replace too.
  constexpr std::uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE;
  for (const auto& dir : engine_.watched_directories()) {
    int wd = inotify_add_watch(inotify_fd_, dir.c_str(), kEvents);
    if (wd < 0) {
      log("cannot watch " + dir + ": " + std::strerror(errno) + " (reload with SIGHUP)");
    } else {
      watches_[wd] = dir;
    }
  }
}

void Server::drain_inotify() {
  alignas(inotify_event) char buf[16384];
  bool relevant = false;
  for (;;) {
    ssize_t n = read(inotify_fd_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      // Only files the policy is made of: not our own user_ca.pub.sshd, not
      // an editor's swap file, not a temporary that is renamed later.
      auto dir = watches_.find(ev->wd);
      if ((ev->mask & IN_Q_OVERFLOW) || (ev->len > 0 && dir != watches_.end() && engine_.affects_policy(dir->second, ev->name)))
        relevant = true;
      p += sizeof(inotify_event) + ev->len;
    }
  }
  if (relevant && reload_due_ms_ == 0) reload_due_ms_ = now_ms() + kReloadDebounceMs;
}

void Server::accept_all() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a transient error; epoll will tell us again
    ucred cred{};
    socklen_t len = sizeof cred;
    bool known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                 (cred.uid == 0 || cred.uid == geteuid() || cred.uid == client_uid_);
    if (!known || connections_.size() >= kMaxConnections) {
      if (!known) ++engine_.counters().refused_peers;
      close(fd);
      continue;
    }
    Connection& c = connections_[fd];
    c.uid = cred.uid;
    c.deadline_ms = now_ms() + kRequestDeadlineMs;
    epoll_set(epoll_fd_, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP);
  }
}

void Server::close_connection(int fd) {
  epoll_set(epoll_fd_, EPOLL_CTL_DEL, fd, 0);
  close(fd);
  connections_.erase(fd);
}

void Server::on_readable(int fd) {
  Connection& c = connections_[fd];
  std::uint8_t buf[16384];
  bool peer_done = false;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      // Never buffer more than one maximal frame and its header.
      if (c.in.size() + static_cast<std::size_t>(n) > kMaxFrameBytes + 4) {
        ++engine_.counters().bad_frames;
        return close_connection(fd);
      }
      c.in.insert(c.in.end(), buf, buf + n);
    } else if (n == 0) {
      peer_done = true;  // still answer what it sent before closing
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      break;
    } else {
      return close_connection(fd);
    }
  }
  if (!handle_frames(fd, c)) return close_connection(fd);
  if (!c.out.empty()) on_writable(fd);
  if (peer_done && connections_.count(fd)) close_connection(fd);
}

// Answers every complete frame in the input buffer; false closes.
bool Server::handle_frames(int, Connection& c) {
  while (c.in.size() >= 4) {
    auto length = frame_length(Bytes(c.in).first(4));
    if (!length.ok()) {
      ++engine_.counters().bad_frames;
      return false;
    }
    if (c.in.size() < 4 + *length) break;
    ByteVector payload(c.in.begin() + 4, c.in.begin() + 4 + *length);
    c.in.erase(c.in.begin(), c.in.begin() + 4 + *length);
    ByteVector reply = handle(payload, c.uid);
    if (reply.empty()) {
      ++engine_.counters().bad_frames;
      return false;
    }
    ByteVector framed = frame(reply);
    c.out.insert(c.out.end(), framed.begin(), framed.end());
    c.deadline_ms = now_ms() + kRequestDeadlineMs;
  }
  return true;
}

// One reply payload, or an empty one for a malformed request.
ByteVector Server::handle(const ByteVector& payload, uid_t uid) {
  auto kind = peek_kind(payload);
  if (!kind.ok()) return {};
  switch (*kind) {
    case MessageKind::decide: {
      auto request = decode_decide_request(payload);
      if (!request.ok()) return {};
      return encode(engine_.decide(*request, wall_seconds()));
    }
    case MessageKind::status:
      return encode(StatusReply{true, engine_.status_json(wall_seconds())}, MessageKind::status);
    case MessageKind::reload:
      if (uid != 0) return encode_error("only root may reload the daemon");
      sd_notify(0, "RELOADING=1");
      engine_.reload("machineidctl reload", wall_seconds());
      sd_notify(0, "READY=1");
      return encode(StatusReply{true, engine_.status_json(wall_seconds())}, MessageKind::reload);
    case MessageKind::session: {
      if (uid != 0) return encode_error("only root (PAM in sshd) may report sessions");
      auto event = decode_session_event(payload);
      if (!event.ok()) return {};
      engine_.session_event(*event);
      return encode(StatusReply{true, "{}"}, MessageKind::session);
    }
    case MessageKind::provisional_user: {
      // Only root: sshd's lookup runs as root. Nothing is stored either way.
      if (uid != 0) return encode_error("only root (NSS in sshd) may ask for provisional entries");
      auto request = decode_user_request(payload, MessageKind::provisional_user);
      if (!request.ok()) return {};
      return encode(engine_.provisional_user(request->login));
    }
    case MessageKind::users:
      return encode(StatusReply{true, engine_.users_json()}, MessageKind::users);
    case MessageKind::forget_user: {
      if (uid != 0) return encode_error("only root may forget host users");
      auto request = decode_user_request(payload, MessageKind::forget_user);
      if (!request.ok()) return {};
      auto forgotten = engine_.forget_user(request->login, wall_seconds());
      if (!forgotten.ok()) return encode_error(forgotten.error().message);
      return encode(StatusReply{true, engine_.users_json()}, MessageKind::forget_user);
    }
    case MessageKind::error:
      return {};
  }
  return {};
}

void Server::on_writable(int fd) {
  Connection& c = connections_[fd];
  while (!c.out.empty()) {
    ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(c.out.begin(), c.out.begin() + n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      break;
    } else {
      return close_connection(fd);
    }
  }
  epoll_set(epoll_fd_, EPOLL_CTL_MOD, fd, c.out.empty() ? (EPOLLIN | EPOLLRDHUP) : (EPOLLIN | EPOLLOUT | EPOLLRDHUP));
}

void Server::expire_connections(std::int64_t now) {
  std::vector<int> expired;
  for (const auto& [fd, c] : connections_)
    if (c.deadline_ms <= now) expired.push_back(fd);
  for (int fd : expired) close_connection(fd);
}

int Server::next_timeout(std::int64_t now) const {
  std::int64_t next = INT_MAX;
  for (const auto& [fd, c] : connections_) next = std::min(next, c.deadline_ms);
  if (reload_due_ms_ != 0) next = std::min(next, reload_due_ms_);
  if (next == INT_MAX) return -1;
  return static_cast<int>(std::clamp<std::int64_t>(next - now, 0, INT_MAX));
}

int Server::run() {
  sd_notify(0, "READY=1");
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epoll_fd_, events, 64, next_timeout(now_ms()));
    if (n < 0 && errno != EINTR) {
      log(std::string("epoll_wait: ") + std::strerror(errno));
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listen_fd_) {
        accept_all();
      } else if (fd == signal_fd_) {
        signalfd_siginfo si{};
        while (read(signal_fd_, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) {
            sd_notify(0, "RELOADING=1");
            engine_.reload("SIGHUP", wall_seconds());
            sd_notify(0, "READY=1");
          } else {
            sd_notify(0, "STOPPING=1");
            log("stopping on signal " + std::to_string(si.ssi_signo));
            return 0;
          }
        }
      } else if (fd == inotify_fd_) {
        drain_inotify();
      } else if (connections_.count(fd)) {
        if (events[i].events & EPOLLIN) on_readable(fd);
        if (connections_.count(fd) && (events[i].events & EPOLLOUT)) on_writable(fd);
        if (connections_.count(fd) && (events[i].events & (EPOLLHUP | EPOLLERR))) close_connection(fd);
      }
    }
    std::int64_t now = now_ms();
    if (reload_due_ms_ != 0 && reload_due_ms_ <= now) {
      reload_due_ms_ = 0;
      engine_.reload("file change", wall_seconds());
      watch_files();  // a directory may have appeared
    }
    expire_connections(now);
  }
}

}  // namespace verifierd
