// verifierd's event loop: the listening socket, one state machine per
// connection, signals, inotify-driven reloads and per-request deadlines.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

#include "engine.h"

namespace verifierd {

// A request must arrive whole within this long of the connection being idle.
inline constexpr std::int64_t kRequestDeadlineMs = 2000;
inline constexpr std::size_t kMaxConnections = 1024;
// Changes to watched files are coalesced for this long before a reload.
inline constexpr std::int64_t kReloadDebounceMs = 200;

class Server {
 public:
  // `listen_fd` is bound and listening. Peers other than root, our own uid
  // and `client_uid` are refused.
  Server(Engine& engine, int listen_fd, uid_t client_uid);
  ~Server();

  // Serves until SIGTERM or SIGINT; returns the exit code.
  int run();

 private:
  struct Connection {
    machineid::ByteVector in, out;
    std::int64_t deadline_ms = 0;
    uid_t uid = 0;
    pid_t pid = 0;
  };

  void accept_all();
  void on_readable(int fd);
  void on_writable(int fd);
  bool handle_frames(int fd, Connection& c);
  machineid::ByteVector handle(const machineid::ByteVector& payload, const Connection& c);
  void close_connection(int fd);
  void watch_files();
  void drain_inotify();
  void expire_connections(std::int64_t now_ms);
  int next_timeout(std::int64_t now_ms) const;

  Engine& engine_;
  int listen_fd_, epoll_fd_ = -1, signal_fd_ = -1, inotify_fd_ = -1;
  uid_t client_uid_;
  std::map<int, Connection> connections_;
  std::map<int, std::string> watches_;  // inotify watch -> directory
  std::int64_t reload_due_ms_ = 0;  // 0: none pending
};

}  // namespace verifierd
