// machineid-verifierd [--config FILE] [--foreground] | --help | --version
//
// Owns the node's policy and answers decisions over a Unix socket. It never
// forks (systemd's Type=notify needs none); --foreground says so explicitly
// for terminals, tests and the demo, where stderr is the log.
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <memory>
#include <string>

#include "engine.h"
#include "machineid/config.h"
#include "machineid/encoding.h"
#include "log.h"
#include "server.h"

namespace {

using verifierd::log;
using verifierd::Priority;

int fail(const std::string& message) {
  log(Priority::error, message);
  return 1;
}

constexpr const char* kHelp =
    "usage: machineid-verifierd [--config FILE] [--foreground]\n"
    "\n"
    "Decide Teleport Machine ID certificate logins for sshd, over a Unix socket.\n"
    "\n"
    "options:\n"
    "  --config FILE   the configuration (default /etc/machineid/verifierd.toml)\n"
    "  --foreground    run attached to the terminal, logging to stderr (it never forks either way)\n"
    "  -h, --help      print this help and exit\n"
    "  --version       print the version and exit\n"
    "\n"
    "exit status: 0 stopped on request, 1 the configuration or the socket cannot be loaded or bound,\n"
    "2 usage error\n";

constexpr int kExitUsage = 2;

// One line naming what was refused, and where help is.
int usage_error(const std::string& message) {
  std::fprintf(stderr, "machineid-verifierd: %s; try 'machineid-verifierd --help'\n",
               machineid::escape_untrusted(message).c_str());
  return kExitUsage;
}

// Reads the command line into `config_path`. Returns -1 to go on, or the
// exit code (0 after --help or --version).
int parse_args(int argc, char** argv, std::string& config_path) {
  enum { kConfig = 256, kForeground, kVersion };
  static const option kOptions[] = {{"config", required_argument, nullptr, kConfig},
                                    {"foreground", no_argument, nullptr, kForeground},
                                    {"help", no_argument, nullptr, 'h'},
                                    {"version", no_argument, nullptr, kVersion},
                                    {nullptr, 0, nullptr, 0}};
  opterr = 0;
  for (int c; (c = getopt_long(argc, argv, ":h", kOptions, nullptr)) != -1;) {
    switch (c) {
      case kConfig:
        config_path = optarg;
        break;
      case kForeground:  // it never forks; the flag says so for terminals
        break;
      case 'h':
        std::fputs(kHelp, stdout);
        return 0;
      case kVersion:
        std::printf("machineid-verifierd (machineid-host) %s\n", MACHINEID_VERSION);
        return 0;
      case ':':
        return usage_error("option '--config' needs a value (--config FILE)");
      default: {
        if (optopt != 0 && optopt < 256 && optopt != 'h')
          return usage_error(std::string("unknown option '-") + static_cast<char>(optopt) + "'");
        std::string typed = argv[optind - 1];
        typed = typed.substr(0, typed.find('='));
        if (optopt != 0) return usage_error("option '" + typed + "' takes no value");
        return usage_error("unknown option '" + typed + "'");
      }
    }
  }
  if (optind < argc) return usage_error(std::string("unexpected argument '") + argv[optind] + "'");
  return -1;
}

// Room for every peer the loop admits and the descriptors it keeps in
// reserve, when the hard limit allows (systemd's default soft limit is 1024).
void raise_descriptor_limit() {
  rlimit rl{};
  const rlim_t wanted = verifierd::kMaxConnections + verifierd::kOwnFds + 2 * verifierd::kReservedFds;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= wanted) return;
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, rl.rlim_max);
  setrlimit(RLIMIT_NOFILE, &rl);
}

// Binds the socket, refusing to take over one a live daemon listens on.
int bind_socket(const std::string& path, uid_t owner, std::string& error) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    error = path + ": socket path too long";
    return -1;
  }
  std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty() && mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    error = dir + ": cannot create: " + std::strerror(errno);
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      error = path + ": exists and is not a socket";
      close(fd);
      return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(probe);
    if (live) {
      error = path + ": another daemon is listening there";
      close(fd);
      return -1;
    }
    unlink(path.c_str());
  }
  // Only the owner (the client user) and root may connect; SO_PEERCRED is
  // checked on every connection besides.
  mode_t old = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old);
  if (rc != 0 || listen(fd, 256) != 0) {
    error = path + ": cannot listen: " + std::strerror(errno);
    close(fd);
    return -1;
  }
  if (geteuid() == 0 && owner != 0 && chown(path.c_str(), owner, static_cast<gid_t>(-1)) != 0) {
    error = path + ": cannot chown: " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything else, and above all before any thread exists (the CA
  // refresher's, a load's): every thread inherits this mask, so the loop's
  // signalfd is the only taker of SIGHUP, SIGTERM and SIGINT. Were a thread
  // to start first, the kernel could hand it a SIGHUP, whose default
  // action ends the process.
  verifierd::block_loop_signals();
  signal(SIGPIPE, SIG_IGN);
  raise_descriptor_limit();
  // Large blocks (a KRL's lists, a file being read, the host-user index)
  // each get a mapping of their own and go back to the system when freed.
  // glibc would otherwise raise this threshold after the first such block is
  // freed and serve the next ones from its heap, where a reload leaves the
  // replaced policy's pages held for the rest of the daemon's life.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  std::string config_path(machineid::kDefaultConfigPath);
  if (int rc = parse_args(argc, argv, config_path); rc >= 0) return rc;

  verifierd::Engine engine(config_path);
  if (auto started = engine.start(static_cast<std::int64_t>(std::time(nullptr))); !started.ok())
    return fail(started.error().message);
  // A copy: a reload replaces the policy (and the config in it) whole.
  const machineid::Config config = engine.config();

  uid_t client_uid = 0;
  if (passwd* pw = getpwnam(config.daemon.client_user.c_str())) {
    client_uid = pw->pw_uid;
  } else {
    log(Priority::warning, "client_user '" + config.daemon.client_user + "' does not exist; only root may connect");
  }

  int listen_fd = -1;
  bool activated = sd_listen_fds(1) == 1;
  if (activated) {
    listen_fd = SD_LISTEN_FDS_START;
    if (sd_is_socket_unix(listen_fd, SOCK_STREAM, 1, nullptr, 0) <= 0)
      return fail("the socket passed by systemd is not a listening Unix stream socket");
    // systemd hands sockets over blocking; the event loop accepts until EAGAIN.
    int flags = fcntl(listen_fd, F_GETFL);
    if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) != 0)
      return fail(std::string("cannot make the passed socket non-blocking: ") + std::strerror(errno));
  } else {
    std::string error;
    listen_fd = bind_socket(config.daemon.socket, client_uid, error);
    if (listen_fd < 0) return fail(error);
  }
  log(Priority::info, "serving " + config.daemon.socket + (activated ? " (socket-activated)" : ""));
  int rc;
  {
    verifierd::Server server(engine, listen_fd, client_uid);
    rc = server.run();
  }
  if (!activated) unlink(config.daemon.socket.c_str());
  close(listen_fd);
  return rc;
}
