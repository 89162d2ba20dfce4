#include "server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "log.h"
#include "proc.h"

namespace verifierd {
namespace {

using namespace machineid;

std::int64_t now_ms() { return monotonic_ms(); }

std::int64_t wall_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

sigset_t loop_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  return mask;
}

// A connection's epoll data is its descriptor and its serial number, so an
// event for a peer closed earlier in the same batch is not taken for the
// new peer that got the same descriptor. Everything else has serial 0.
std::uint64_t tag(int fd, std::uint32_t serial) {
  return static_cast<std::uint64_t>(serial) << 32 | static_cast<std::uint32_t>(fd);
}

void epoll_set(int epoll_fd, int op, int fd, std::uint32_t events, std::uint32_t serial = 0) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag(fd, serial);
  if (epoll_ctl(epoll_fd, op, fd, &ev) != 0 && op != EPOLL_CTL_DEL) {
    log(Priority::error, std::string("epoll_ctl: ") + std::strerror(errno));
    std::abort();
  }
}

int open_spare() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

void block_loop_signals() {
  sigset_t mask = loop_signals();
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
}

Server::Server(Engine& engine, int listen_fd, uid_t client_uid)
    : engine_(engine), listen_fd_(listen_fd), client_uid_(client_uid) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  sigset_t mask = loop_signals();
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // main() did already; harmless again
  signal_fd_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  spare_fd_ = open_spare();
  if (epoll_fd_ < 0 || signal_fd_ < 0 || inotify_fd_ < 0 || spare_fd_ < 0) {
    log(Priority::error, std::string("cannot set up the event loop: ") + std::strerror(errno));
    std::abort();
  }
  engine_.counters().decision_threads = pool_.threads();
  epoll_set(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, EPOLLIN);
  epoll_set(epoll_fd_, EPOLL_CTL_ADD, signal_fd_, EPOLLIN);
  epoll_set(epoll_fd_, EPOLL_CTL_ADD, inotify_fd_, EPOLLIN);
  epoll_set(epoll_fd_, EPOLL_CTL_ADD, engine_.reload_fd(), EPOLLIN);
  if (pool_.ready_fd() >= 0) epoll_set(epoll_fd_, EPOLL_CTL_ADD, pool_.ready_fd(), EPOLLIN);
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    // Twice per period, as sd_watchdog_enabled(3) advises.
    watchdog_interval_ms_ = std::max<std::int64_t>(static_cast<std::int64_t>(usec / 2000), 1);
    watchdog_due_ms_ = now_ms();
  }
  watch_files();
}

Server::~Server() {
  for (auto& [fd, c] : connections_) close(fd);
  for (int fd : {epoll_fd_, signal_fd_, inotify_fd_, spare_fd_})
    if (fd >= 0) close(fd);
}

void Server::watch_files() {
  // Watching directories catches the rename of an atomic replace too.
  constexpr std::uint32_t kEvents =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE;
  bool appeared = false;
  std::set<std::string> unwatched;
  for (const auto& dir : engine_.watched_directories()) {
    int wd = inotify_add_watch(inotify_fd_, dir.c_str(), kEvents);
    if (wd < 0) {
      // Said once per directory, not every retry.
      if (!unwatched_.count(dir))
        log(Priority::warning, "cannot watch " + dir + ": " + std::strerror(errno) + " (trying again every " +
                                   std::to_string(kRewatchMs / 1000) + " s)");
      unwatched.insert(dir);
    } else {
      watches_[wd] = dir;
      // It came into being since the last try: what it holds is news.
      if (unwatched_.count(dir)) {
        log(Priority::notice, "watching " + dir + " now");
        appeared = true;
      }
    }
  }
  unwatched_ = std::move(unwatched);
  rewatch_due_ms_ = unwatched_.empty() ? 0 : now_ms() + kRewatchMs;
  if (appeared) {
    engine_.read_sync_state();
    if (reload_due_ms_ == 0) {
      reload_due_ms_ = now_ms() + kReloadDebounceMs;
      due_trigger_ = "directory appeared";
    }
  }
}

void Server::drain_inotify() {
  alignas(inotify_event) char buf[16384];
  bool relevant = false, sync_state = false;
  for (;;) {
    ssize_t n = read(inotify_fd_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      // Only files the policy is made of: not our own user_ca.pub.sshd, not
      // an editor's swap file, not a temporary that is renamed later.
      auto dir = watches_.find(ev->wd);
      bool named = ev->len > 0 && dir != watches_.end();
      if ((ev->mask & IN_Q_OVERFLOW) || (named && engine_.affects_policy(dir->second, ev->name)))
        relevant = true;
      if ((ev->mask & IN_Q_OVERFLOW) || (named && engine_.is_sync_state(dir->second, ev->name))) sync_state = true;
      p += sizeof(inotify_event) + ev->len;
    }
  }
  // machineid-sync records each poll there: a few hundred bytes, read at
  // once, never a reload.
  if (sync_state) engine_.read_sync_state();
  if (relevant && reload_due_ms_ == 0) {
    reload_due_ms_ = now_ms() + kReloadDebounceMs;
    due_trigger_ = "file change";
  }
}

// Peers may hold every descriptor but the daemon's own and kReservedFds,
// and never more than kMaxConnections. Read each time: the limit can change under us (prlimit).
std::size_t Server::peer_limit() const {
  rlimit rl{};
  // Should the call itself fail, 1024 (the usual soft limit) errs low.
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = 1024;
  if (rl.rlim_cur == RLIM_INFINITY) return kMaxConnections;
  std::size_t limit = static_cast<std::size_t>(rl.rlim_cur);
  if (limit <= kReservedFds + kOwnFds) return 1;
  return std::min(kMaxConnections, limit - kReservedFds - kOwnFds);
}

// At the bound: the idle peer that has waited longest makes room for the
// new one, so a crowd of silent connections cannot keep sshd's helper out.
// False when every peer is busy.
bool Server::make_room() {
  int oldest = -1;
  std::int64_t oldest_deadline = 0;
  for (const auto& [fd, c] : connections_) {
    bool idle = c.in.empty() && c.out.empty() && c.awaiting_reload == 0 && c.awaiting_decision == 0;
    if (idle && (oldest < 0 || c.deadline_ms < oldest_deadline)) {
      oldest = fd;
      oldest_deadline = c.deadline_ms;
    }
  }
  if (oldest < 0) return false;
  close_connection(oldest);
  return true;
}

void Server::warn_once_a_second(std::int64_t now, const std::string& message) {
  if (now - last_warning_ms_ < 1000) return;
  last_warning_ms_ = now;
  log(Priority::warning, message);
}

void Server::accept_all(std::int64_t now) {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) return;
      if (e == EINTR || e == ECONNABORTED || e == EPROTO) continue;  // that peer only
      if ((e == EMFILE || e == ENFILE) && spare_fd_ >= 0) {
        // No descriptor left: the spare takes the waiting peer's place for
        // a moment, and the peer is closed (its helper fails closed).
        close(spare_fd_);
        int dropped = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (dropped >= 0) close(dropped);
        spare_fd_ = open_spare();
        warn_once_a_second(now,
                           std::string("accept: ") + std::strerror(e) + ": closing waiting peers");
        if (dropped >= 0 && spare_fd_ >= 0) continue;
      }
      // Out of memory or of the spare too: rest the listening socket rather
      // than wake up for it again at once.
      warn_once_a_second(
          now, std::string("accept: ") + std::strerror(e) + ": pausing new connections briefly");
      epoll_set(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, 0);
      accept_paused_until_ms_ = now + kAcceptPauseMs;
      return;
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    bool known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                 (cred.uid == 0 || cred.uid == geteuid() || cred.uid == client_uid_);
    if (!known) {
      ++engine_.counters().refused_peers;
      close(fd);
      continue;
    }
    if (connections_.size() >= peer_limit() && !make_room()) {
      close(fd);
      continue;
    }
    Connection& c = connections_[fd];
    c.fd = fd;
    c.uid = cred.uid;
    c.pid = cred.pid;
    c.deadline_ms = now + kRequestDeadlineMs;
    c.events = EPOLLIN | EPOLLRDHUP;
    if (++serial_ == 0) ++serial_;  // 0 tags the loop's own descriptors
    c.serial = serial_;
    epoll_set(epoll_fd_, EPOLL_CTL_ADD, fd, c.events, c.serial);
  }
}

void Server::close_connection(int fd) {
  epoll_set(epoll_fd_, EPOLL_CTL_DEL, fd, 0);
  close(fd);
  connections_.erase(fd);
}

void Server::on_readable(int fd) {
  Connection& c = connections_.at(fd);
  std::uint8_t buf[16384];
  // Reading stops while the peer's replies pile up unread (or it waits for
  // a reload): what it sends then waits in the kernel, not in our memory.
  while (!blocked(c) && !c.peer_done) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      // Never buffer more than one maximal frame and its header.
      if (c.in.size() + static_cast<std::size_t>(n) > kMaxFrameBytes + 4) {
        ++engine_.counters().bad_frames;
        return close_connection(fd);
      }
      c.in.insert(c.in.end(), buf, buf + n);
      if (!handle_frames(c)) return close_connection(fd);
    } else if (n == 0) {
      c.peer_done = true;  // still answer what it sent before closing
    } else if (errno == EAGAIN || errno == EINTR) {
      break;
    } else {
      return close_connection(fd);
    }
  }
  service(fd);
}

void Server::on_writable(int fd) { service(fd); }

// Sends what is queued, takes the requests that waited while the peer was
// blocked, and sets what epoll watches; closes a finished peer.
void Server::service(int fd) {
  Connection& c = connections_.at(fd);
  for (;;) {
    while (!c.out.empty()) {
      ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(c.out.begin(), c.out.begin() + n);
        c.deadline_ms =
            now_ms() + (c.awaiting_reload ? kReloadReplyDeadlineMs : kRequestDeadlineMs);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        break;
      } else {
        return close_connection(fd);
      }
    }
    // Requests read before the peer was blocked, if it is not any more.
    std::size_t queued = c.out.size();
    if (blocked(c) || c.in.size() < 4) break;
    if (!handle_frames(c)) return close_connection(fd);
    if (c.out.size() == queued) break;  // nothing complete to answer
  }
  if (c.peer_done && c.out.empty() && c.awaiting_reload == 0 && c.awaiting_decision == 0)
    return close_connection(fd);
  std::uint32_t events = 0;
  if (!blocked(c) && !c.peer_done) events |= EPOLLIN | EPOLLRDHUP;
  if (!c.out.empty()) events |= EPOLLOUT;
  if (events != c.events) {
    c.events = events;
    epoll_set(epoll_fd_, EPOLL_CTL_MOD, fd, events, c.serial);
  }
}

// Answers complete frames in the input buffer until the peer is blocked;
// false closes.
bool Server::handle_frames(Connection& c) {
  while (c.in.size() >= 4 && !blocked(c)) {
    auto length = frame_length(Bytes(c.in).first(4));
    if (!length.ok()) {
      ++engine_.counters().bad_frames;
      return false;
    }
    if (c.in.size() < 4 + *length) break;
    ByteVector payload(c.in.begin() + 4, c.in.begin() + 4 + *length);
    c.in.erase(c.in.begin(), c.in.begin() + 4 + *length);
    auto kind = peek_kind(payload);
    if (kind.ok() && *kind == MessageKind::reload && c.uid == 0) {
      // Answered once a load that began after this request is in force.
      c.awaiting_reload = engine_.request_reload("machineidctl reload");
      c.deadline_ms = now_ms() + kReloadReplyDeadlineMs;
      break;
    }
    if (kind.ok() && *kind == MessageKind::decide) {
      if (!start_decide(payload, c)) return false;
      continue;
    }
    ByteVector reply = handle(payload, c);
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
ByteVector Server::handle(const ByteVector& payload, const Connection& c) {
  const uid_t uid = c.uid;
  auto kind = peek_kind(payload);
  if (!kind.ok()) return {};
  switch (*kind) {
    case MessageKind::status:
      return encode(StatusReply{true, engine_.status_json(wall_seconds())}, MessageKind::status);
    case MessageKind::reload:
      // root's requests are taken in handle_frames.
      return encode_error("only root may reload the daemon");
    case MessageKind::session: {
      if (uid != 0) return encode_error("only root (PAM in sshd) may report sessions");
      auto event = decode_session_event(payload);
      if (!event.ok()) return {};
      engine_.session_event(*event, c.pid, wall_seconds());
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
    case MessageKind::sessions:
      return encode(StatusReply{true, engine_.sessions_json(wall_seconds())}, MessageKind::sessions);
    case MessageKind::kill_session: {
      if (uid != 0) return encode_error("only root may end sessions");
      auto request = decode_user_request(payload, MessageKind::kill_session);
      if (!request.ok()) return {};
      auto killed = engine_.kill_session(request->login, wall_seconds());
      if (!killed.ok()) return encode_error(killed.error().message);
      return encode(StatusReply{true, engine_.sessions_json(wall_seconds())}, MessageKind::kill_session);
    }
    case MessageKind::decide:  // taken in handle_frames
    case MessageKind::error:
      return {};
  }
  return {};
}

bool Server::start_decide(const ByteVector& payload, Connection& c) {
  auto request = decode_decide_request(payload);
  if (!request.ok()) {
    ++engine_.counters().bad_frames;
    return false;
  }
  std::int64_t now = wall_seconds();
  auto begun = engine_.begin_decide(*request, c.pid, now);
  auto* pending = std::get_if<Engine::PendingDecide>(&begun);
  if (pending) {
    auto policy = engine_.policy();
    std::uint64_t ticket = ++next_ticket_;
    auto request = pending->decision_request(now);
    DecisionPool::Job job{ticket, policy, pending->certificate, pending->request.login, request.source, now,
                          request.stale_locks};
    if (pool_.submit(std::move(job))) {
      c.awaiting_decision = ticket;
      deferred_.emplace(ticket, Deferred{c.fd, c.serial, std::move(*pending)});
      return true;
    }
    Decision d = machineid::decide(pending->decision_request(now), *policy);
    begun = engine_.finish_decide(std::move(*pending), std::move(d), *policy, now);
  }
  ByteVector framed = frame(encode(std::get<DecideReply>(begun)));
  c.out.insert(c.out.end(), framed.begin(), framed.end());
  c.deadline_ms = now_ms() + kRequestDeadlineMs;
  return true;
}

void Server::finish_decisions() {
  for (auto& done : pool_.take()) {
    auto it = deferred_.find(done.ticket);
    if (it == deferred_.end()) continue;
    Deferred deferred = std::move(it->second);
    deferred_.erase(it);
    // Finished even when the peer has gone: the audit trail and a host
    // user's grant do not depend on who reads the answer.
    DecideReply reply =
        engine_.finish_decide(std::move(deferred.pending), std::move(done.decision), *done.policy, wall_seconds());
    auto c = connections_.find(deferred.fd);
    if (c == connections_.end() || c->second.serial != deferred.serial) continue;
    c->second.awaiting_decision = 0;
    ByteVector framed = frame(encode(reply));
    c->second.out.insert(c->second.out.end(), framed.begin(), framed.end());
    c->second.deadline_ms = now_ms() + kRequestDeadlineMs;
    service(deferred.fd);
  }
}

void Server::reload(const std::string& trigger) { engine_.request_reload(trigger); }

void Server::finish_reload() {
  auto outcome = engine_.finish_reload(wall_seconds());
  if (!outcome.applied) return;
  std::int64_t now = now_ms();
  if (outcome.transient) {
    // Descriptors or memory ran short: the pieces in force stay, and the
    // load runs again after a growing pause.
    if (reload_due_ms_ == 0) {
      reload_due_ms_ = now + retry_ms_;
      due_trigger_ = "retry";
    }
    retry_ms_ = std::min(retry_ms_ * 2, kRetryMaxMs);
  } else {
    retry_ms_ = kRetryFirstMs;
  }
  watch_files();  // a directory may have appeared
  std::vector<int> answered;
  for (auto& [fd, c] : connections_) {
    if (c.awaiting_reload == 0 || c.awaiting_reload > engine_.applied_generation()) continue;
    c.awaiting_reload = 0;
    ByteVector framed =
        frame(encode(StatusReply{true, engine_.status_json(wall_seconds())}, MessageKind::reload));
    c.out.insert(c.out.end(), framed.begin(), framed.end());
    c.deadline_ms = now + kRequestDeadlineMs;
    answered.push_back(fd);
  }
  for (int fd : answered)
    if (connections_.count(fd)) service(fd);
}

void Server::expire_connections(std::int64_t now) {
  std::vector<int> expired;
  for (const auto& [fd, c] : connections_)
    if (c.deadline_ms <= now) expired.push_back(fd);
  for (int fd : expired) close_connection(fd);
}

int Server::next_timeout(std::int64_t now) const {
  std::int64_t next = INT64_MAX;
  for (const auto& [fd, c] : connections_) next = std::min(next, c.deadline_ms);
  if (reload_due_ms_ != 0) next = std::min(next, reload_due_ms_);
  if (accept_paused_until_ms_ != 0) next = std::min(next, accept_paused_until_ms_);
  if (watchdog_interval_ms_ != 0) next = std::min(next, watchdog_due_ms_);
  if (rewatch_due_ms_ != 0) next = std::min(next, rewatch_due_ms_);
  if (std::int64_t tick = engine_.next_tick_ms(); tick != 0) next = std::min(next, tick);
  if (next == INT64_MAX) return -1;
  return static_cast<int>(std::clamp<std::int64_t>(next - now, 0, INT_MAX));
}

int Server::run() {
  sd_notify(0, "READY=1");
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epoll_fd_, events, 64, next_timeout(now_ms()));
    if (n < 0 && errno != EINTR) {
      log(Priority::error, std::string("epoll_wait: ") + std::strerror(errno));
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      int fd = static_cast<int>(events[i].data.u64 & 0xffffffffu);
      auto serial = static_cast<std::uint32_t>(events[i].data.u64 >> 32);
      if (serial != 0) {
        auto c = connections_.find(fd);
        if (c == connections_.end() || c->second.serial != serial)
          continue;  // closed in this batch
        if (events[i].events & (EPOLLIN | EPOLLRDHUP)) on_readable(fd);
        if (connections_.count(fd) && (events[i].events & EPOLLOUT)) on_writable(fd);
        if (connections_.count(fd) && (events[i].events & (EPOLLHUP | EPOLLERR)))
          close_connection(fd);
      } else if (fd == listen_fd_) {
        accept_all(now_ms());
      } else if (fd == signal_fd_) {
        signalfd_siginfo si{};
        while (read(signal_fd_, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) {
            reload("SIGHUP");
          } else {
            sd_notify(0, "STOPPING=1");
            log(Priority::notice, "stopping on signal " + std::to_string(si.ssi_signo));
            engine_.finish_terminations();
            return 0;
          }
        }
      } else if (fd == inotify_fd_) {
        drain_inotify();
      } else if (fd == engine_.reload_fd()) {
        finish_reload();
      } else if (fd == pool_.ready_fd()) {
        finish_decisions();
      }
    }
    std::int64_t now = now_ms();
    if (reload_due_ms_ != 0 && reload_due_ms_ <= now) {
      reload_due_ms_ = 0;
      reload(due_trigger_);
    }
    if (rewatch_due_ms_ != 0 && rewatch_due_ms_ <= now) watch_files();
    if (accept_paused_until_ms_ != 0 && accept_paused_until_ms_ <= now) {
      accept_paused_until_ms_ = 0;
      if (spare_fd_ < 0) spare_fd_ = open_spare();
      epoll_set(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, EPOLLIN);
    }
    if (watchdog_interval_ms_ != 0 && watchdog_due_ms_ <= now) {
      sd_notify(0, "WATCHDOG=1");
      watchdog_due_ms_ = now + watchdog_interval_ms_;
    }
    expire_connections(now);
    if (std::int64_t tick = engine_.next_tick_ms(); tick != 0 && tick <= now) engine_.tick(wall_seconds());
  }
}

}  // namespace verifierd
