// verifierd's event loop: the listening socket, one state machine per
// connection, signals, inotify-driven reloads, per-request deadlines, the
// systemd watchdog, and the descriptors held in reserve.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "decision_pool.h"
#include "engine.h"

namespace verifierd {

// A request must arrive whole within this long of the connection being
// idle, and a reply queued for a peer must start to leave within this long.
inline constexpr std::int64_t kRequestDeadlineMs = 2000;
// machineidctl reload waits for its load to be in force.
inline constexpr std::int64_t kReloadReplyDeadlineMs = 30000;
inline constexpr std::size_t kMaxConnections = 1024;
// Descriptors kept free for everything but peers: a reload's files and
// directory listings, the audit file, journald, sd_notify, the CA
// refresher's connection, a thread. Peers never take the last of them.
inline constexpr std::size_t kReservedFds = 32;
// The descriptors the daemon holds for good: stdio, the listening socket,
// epoll, signalfd, inotify, the reload eventfd, the spare, journald.
inline constexpr std::size_t kOwnFds = 16;
// Replies queued for one peer beyond which nothing more is read from it
// (it is not reading what it asked for); past its deadline it is closed.
// One reply may exceed it (a large status): the cap is checked before each
// request is taken.
inline constexpr std::size_t kMaxQueuedReplyBytes = 64 * 1024;
// Changes to watched files are coalesced for this long before a reload.
inline constexpr std::int64_t kReloadDebounceMs = 200;
inline constexpr std::int64_t kRewatchMs = 5000;
// A load that kept pieces for a passing reason (descriptors, memory) is
// retried after this long, doubling up to the maximum.
inline constexpr std::int64_t kRetryFirstMs = 1000;
inline constexpr std::int64_t kRetryMaxMs = 30000;
// accept4 failing for lack of descriptors or memory: the listening socket
// rests this long instead of waking the loop again at once.
inline constexpr std::int64_t kAcceptPauseMs = 100;

// The signals the loop takes through its signalfd. main() blocks them
// before any thread exists, so every thread inherits the mask and none of
// them can be killed by one.
void block_loop_signals();

class Server {
 public:
  // `listen_fd` is bound and listening. Peers other than root, our own uid
  // and `client_uid` are refused.
  Server(Engine& engine, int listen_fd, uid_t client_uid);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until SIGTERM or SIGINT; returns the exit code.
  int run();

 private:
  struct Connection {
    int fd = -1;
    machineid::ByteVector in, out;
    std::int64_t deadline_ms = 0;
    uid_t uid = 0;
    // The load generation this peer's reload request waits for; 0: none.
    std::uint64_t awaiting_reload = 0;
    // The ticket of this peer's decision running on the pool; 0: none.
    // Nothing more is read from the peer until it is answered, so its
    // replies keep the order of its requests.
    std::uint64_t awaiting_decision = 0;
    bool peer_done = false;    // the peer shut down its side: answer, then close
    std::uint32_t events = 0;  // what epoll watches for it
    std::uint32_t serial = 0;  // tells it from an earlier peer on the same descriptor
    pid_t pid = 0;
  };
  static bool blocked(const Connection& c) {
    return c.awaiting_reload != 0 || c.awaiting_decision != 0 || c.out.size() >= kMaxQueuedReplyBytes;
  }

  void accept_all(std::int64_t now);
  void warn_once_a_second(std::int64_t now, const std::string& message);
  std::size_t peer_limit() const;
  bool make_room();
  void on_readable(int fd);
  void on_writable(int fd);
  void service(int fd);
  bool handle_frames(Connection& c);
  machineid::ByteVector handle(const machineid::ByteVector& payload, const Connection& c);
  void close_connection(int fd);
  void watch_files();
  void drain_inotify();
  void reload(const std::string& trigger);
  void finish_reload();
  // Takes a decide request: answered at once (cached, or decided here when
  // the pool does not take it) or handed to the pool; false closes.
  bool start_decide(const machineid::ByteVector& payload, Connection& c);
  void finish_decisions();
  void expire_connections(std::int64_t now_ms);
  int next_timeout(std::int64_t now_ms) const;

  Engine& engine_;
  int listen_fd_, epoll_fd_ = -1, signal_fd_ = -1, inotify_fd_ = -1;
  // Opened at start and given up only to accept (and close) a peer when
  // accept4 finds no descriptor left, so the backlog drains instead of
  // waking the loop forever.
  int spare_fd_ = -1;
  uid_t client_uid_;
  std::map<int, Connection> connections_;
  std::uint32_t serial_ = 0;
  std::map<int, std::string> watches_;  // inotify watch -> directory
  // Directories that could not be watched (not there yet, say), tried again
  // every kRewatchMs: a change there would otherwise go unseen until a reload.
  std::set<std::string> unwatched_;
  std::int64_t rewatch_due_ms_ = 0;  // 0: none to try
  std::int64_t reload_due_ms_ = 0;      // 0: none pending
  std::string due_trigger_;
  std::int64_t retry_ms_ = kRetryFirstMs;
  std::int64_t accept_paused_until_ms_ = 0;                      // 0: accepting
  std::int64_t watchdog_interval_ms_ = 0, watchdog_due_ms_ = 0;  // 0: no watchdog
  std::int64_t last_warning_ms_ = INT64_MIN / 2;
  // Decisions on the pool: the peer that asked (descriptor and serial) and
  // what finishing needs, by ticket.
  struct Deferred {
    int fd;
    std::uint32_t serial;
    Engine::PendingDecide pending;
  };
  std::map<std::uint64_t, Deferred> deferred_;
  std::uint64_t next_ticket_ = 0;
  // Last: its threads are joined before anything they could reach goes.
  DecisionPool pool_;
};

}  // namespace verifierd
