// machineid-verifierd under hostile files, pressure and signals: a FIFO
// among the roles, slow reloads, descriptors running out, a peer that never
// reads, files others could have written, escape sequences in key ids.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "machineid/client.h"
#include "machineid/protocol.h"
#include "sshd_harness.h"

namespace machineid {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::CertSpec;
using testing::kCiRole;
using testing::SshdHarness;

std::string base64_of(const std::string& cert_path) {
  std::istringstream in(testing::read_file(cert_path));
  std::string type, b64;
  in >> type >> b64;
  return b64;
}

template <class F>
bool eventually(F done, std::chrono::milliseconds timeout = 10s) {
  for (auto until = Clock::now() + timeout; Clock::now() < until; std::this_thread::sleep_for(20ms))
    if (done()) return true;
  return done();
}

// The daemon's pid, from the kernel's view of the socket's peer.
pid_t daemon_pid(const std::string& socket_path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  ucred cred{};
  socklen_t len = sizeof cred;
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
  close(fd);
  return ok ? cred.pid : -1;
}

long status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

// utime + stime of a process, in clock ticks.
long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stol(f);
    if (i == 15) {
      stime = std::stol(f);
      break;
    }
  }
  return utime + stime;
}

class RobustnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h.write_role("ci", kCiRole);
    ASSERT_TRUE(h.start_daemon());
    user = h.keygen().make_key("user");
    CertSpec spec{.ca = h.ca(), .key = user + ".pub"};
    spec.options = {R"(extension:teleport-roles={"roles":["ci"]})"};
    cert = base64_of(h.keygen().sign(spec));
    pid = daemon_pid(h.socket());
    ASSERT_GT(pid, 0);
  }

  Result<DecideReply> ask(const std::string& login, const std::string& certificate,
                          const std::string& source = "", int timeout_ms = 2000) {
    DecideRequest r{Asker::cli, login, "ssh-ed25519-cert-v01@openssh.com", certificate, source};
    auto reply = call_daemon(h.socket(), encode(r), timeout_ms);
    if (!reply.ok()) return reply.error();
    return decode_decide_reply(*reply);
  }

  // A fresh source each time: decided afresh, not from the cache.
  Result<DecideReply> ask_fresh() {
    return ask("root", cert, "198.51.100." + std::to_string(++asked_ % 250 + 1));
  }

  nlohmann::json status() {
    auto reply = call_daemon(h.socket(), encode_simple(MessageKind::status), 2000);
    if (!reply.ok()) return nlohmann::json{};
    auto s = decode_status_reply(*reply);
    return s.ok() ? nlohmann::json::parse(s->json) : nlohmann::json{};
  }

  std::uint64_t generation() {
    auto s = status();
    return s.contains("last_reload") ? s["last_reload"]["generation"].get<std::uint64_t>() : 0;
  }

  int connect_raw() {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", h.socket().c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  std::string daemon_log() { return testing::read_file(h.file("verifierd.log")); }

  SshdHarness h{MID_BIN_DIR};
  std::string user, cert;
  pid_t pid = -1;
  int asked_ = 0;
};

// A FIFO named like a role file would block open() for ever: it is refused
// (it defines no role), the other roles keep working, and SIGTERM still ends
// the daemon.
TEST_F(RobustnessTest, FifoInRolesDirIsRefusedAndTheDaemonStaysResponsive) {
  std::string fifo = h.file("etc/roles.d/zz.yaml");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  h.signal_daemon(SIGHUP);
  nlohmann::json s;
  ASSERT_TRUE(eventually([&] {
    s = status();
    return s.contains("errors") && s["errors"].contains("roles");
  })) << daemon_log();
  EXPECT_NE(s["errors"]["roles"].get<std::string>().find(fifo + ": not a regular file (a FIFO)"),
            std::string::npos)
      << s["errors"];
  auto reply = ask_fresh();
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_TRUE(reply->allowed) << reply->detail;
  auto started = Clock::now();
  h.signal_daemon(SIGTERM);
  EXPECT_TRUE(eventually([&] { return daemon_pid(h.socket()) <= 0; }, 5s))
      << "SIGTERM did not stop it";
  EXPECT_LT(Clock::now() - started, 5s);
  EXPECT_NE(daemon_log().find("<5>machineid-verifierd: stopping on signal 15"), std::string::npos)
      << daemon_log();
}

// Thousands of roles take a while to load; decisions go on meanwhile with
// the policy in force, and the new one arrives whole.
TEST_F(RobustnessTest, DecisionsAreAnsweredWhileASlowReloadRuns) {
  for (int file = 0; file < 50; ++file) {
    std::string yaml;
    for (int i = 0; i < 100; ++i) {
      std::string name = "bulk-" + std::to_string(file) + "-" + std::to_string(i);
      yaml += "---\nkind: role\nversion: v7\nmetadata:\n  name: " + name +
              "\nspec:\n  allow:\n    logins: [u" + std::to_string(i) +
              ", '{{internal.logins}}']\n    node_labels:\n      env: ['^pro[a-z]+$', staging]\n"
              "      team: '*'\n  deny:\n    logins: [nobody]\n";
    }
    h.write_role("bulk" + std::to_string(file), yaml);
  }
  std::uint64_t before = generation();
  bool seen_loading = false;
  int answered_during_load = 0, errors = 0;
  for (int attempt = 0; attempt < 3 && !(seen_loading && answered_during_load > 0); ++attempt) {
    h.signal_daemon(SIGHUP);
    auto until = Clock::now() + 60s;
    while (Clock::now() < until) {
      auto s = status();
      if (s.empty()) {
        ++errors;
        continue;
      }
      bool loading = s["last_reload"]["loading"].get<bool>();
      if (loading) {
        seen_loading = true;
        auto reply = ask_fresh();
        if (!reply.ok() || !reply->allowed) {
          ++errors;
        } else if (status()["last_reload"]["loading"] == true) {
          ++answered_during_load;  // answered between two looks that both saw the load running
        }
      } else if (s["last_reload"]["generation"].get<std::uint64_t>() > before) {
        break;
      }
    }
    before = generation();
  }
  EXPECT_TRUE(seen_loading) << "never saw a load in progress";
  EXPECT_GT(answered_during_load, 0);
  EXPECT_EQ(errors, 0);
  nlohmann::json s;
  EXPECT_TRUE(eventually([&] {
    s = status();
    return s.contains("roles") && s["roles"]["names"].size() == 5001u && s["last_reload"]["loading"] == false;
  })) << s.dump().substr(0, 2000);
  EXPECT_TRUE(s["errors"].empty()) << s["errors"];
}

// machineidctl reload requests that arrive while a load runs are coalesced
// into one more load, and each is answered once a load that began after it
// is in force.
TEST_F(RobustnessTest, ReloadRequestsDuringALoadAreCoalescedAndEachAnswered) {
  std::string yaml;
  for (int i = 0; i < 2000; ++i)
    yaml += "---\nkind: role\nversion: v7\nmetadata: {name: r" + std::to_string(i) +
            "}\nspec:\n  allow:\n    logins: [u]\n    node_labels: {env: ['^pro[a-z]+$']}\n";
  h.write_role("many", yaml);
  ASSERT_TRUE(eventually([&] { return status()["roles"]["names"].size() == 2001u; })) << daemon_log();
  std::uint64_t before = generation();
  constexpr int kRequests = 8;
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i)
    clients.emplace_back([&] {
      auto reply = call_daemon(h.socket(), encode_simple(MessageKind::reload), 30000);
      if (!reply.ok()) return;
      auto s = decode_status_reply(*reply);
      if (s.ok() && nlohmann::json::parse(s->json)["last_reload"]["generation"].get<std::uint64_t>() > before)
        ++answered;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), kRequests);
  std::uint64_t loads = generation() - before;
  EXPECT_GE(loads, 1u);
  EXPECT_LT(loads, static_cast<std::uint64_t>(kRequests)) << "every request made a load of its own";
  auto reply = ask_fresh();
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->allowed);
}

// With few descriptors and more idle peers than they allow, a reload still
// reads every file (the KRL included: no deny-all), a decision is still
// answered, and accept4 failing does not spin the loop.
TEST_F(RobustnessTest, IdlePeersExhaustingDescriptorsBreakNeitherReloadsNorDecisions) {
  rlimit low{96, 96};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);
  std::vector<int> peers;
  for (int i = 0; i < 160; ++i) {
    int fd = connect_raw();
    if (fd >= 0) peers.push_back(fd);
  }
  ASSERT_GE(peers.size(), 100u);
  long cpu_before = cpu_ticks(pid);
  auto wall_before = Clock::now();
  std::this_thread::sleep_for(1s);  // peers idle, some waiting in the backlog
  long cpu = cpu_ticks(pid) - cpu_before;
  double seconds = std::chrono::duration<double>(Clock::now() - wall_before).count();
  EXPECT_LT(static_cast<double>(cpu) / static_cast<double>(sysconf(_SC_CLK_TCK)), seconds / 2)
      << "the daemon spins while descriptors are short";

  h.write_krl("serial: 4242");  // a new KRL, which must load, not deny everything
  std::uint64_t before = generation();
  h.signal_daemon(SIGHUP);
  nlohmann::json s;
  ASSERT_TRUE(eventually([&] {
    s = status();
    return s.contains("last_reload") &&
           s["last_reload"]["generation"].get<std::uint64_t>() > before &&
           s["last_reload"]["loading"] == false;
  })) << daemon_log();
  EXPECT_EQ(s["krl"]["state"], "loaded") << s.dump();
  EXPECT_TRUE(s["errors"].empty()) << s["errors"];
  auto reply = ask_fresh();
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_TRUE(reply->allowed) << reply->reason << ": " << reply->detail;
  for (int fd : peers) close(fd);
  EXPECT_GE(status_kib(pid, "VmRSS"), 0);  // still there
}

// A peer that writes requests and never reads its replies: the daemon stops
// reading from it, its memory stays put, the peer is closed, and everyone
// else is answered meanwhile.
TEST_F(RobustnessTest, PeerThatNeverReadsCannotGrowTheDaemon) {
  ASSERT_TRUE(ask_fresh().ok());
  long rss_before = status_kib(pid, "VmRSS");
  ASSERT_GT(rss_before, 0);
  int fd = connect_raw();
  ASSERT_GE(fd, 0);
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  ByteVector request = frame(
      encode(DecideRequest{Asker::cli, "root", "ssh-ed25519-cert-v01@openssh.com", cert, ""}));
  ByteVector batch;
  while (batch.size() < 16 * 1024) batch.insert(batch.end(), request.begin(), request.end());
  // Paced, as a slow client would write: a few MB/s, well within what the
  // daemon decides, so it is not reading faster than the client writes
  // that keeps its input small, but only whether it stops reading.
  std::size_t written = 0, offset = 0;
  auto last_progress = Clock::now(), until = Clock::now() + 20s;
  while (Clock::now() < until && written < (48u << 20) && Clock::now() - last_progress < 1s) {
    ssize_t n = send(fd, batch.data() + offset, batch.size() - offset, MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      offset = (offset + static_cast<std::size_t>(n)) % batch.size();
      last_progress = Clock::now();
    } else if (n < 0 && errno != EAGAIN) {
      break;  // closed by the daemon
    }
    std::this_thread::sleep_for(3ms);
  }
  auto other = ask_fresh();
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_TRUE(other->allowed);
  long rss_after = status_kib(pid, "VmRSS");
  std::printf("never-reading peer: %zu bytes written, daemon RSS %ld KiB -> %ld KiB\n", written,
              rss_before, rss_after);
#ifndef __SANITIZE_ADDRESS__
  EXPECT_LT(rss_after - rss_before, 8 * 1024)
      << "daemon grew by " << (rss_after - rss_before) << " KiB";
#endif
  EXPECT_LT(written, std::size_t{16} << 20)
      << "the daemon kept reading from a peer that does not read";
  // Stuck past its deadline, the peer is closed: sends fail from then on.
  EXPECT_TRUE(eventually([&] {
    pollfd p{fd, POLLOUT, 0};
    char byte = 0;
    return (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) ||
           (send(fd, &byte, 1, MSG_NOSIGNAL) < 0 && errno != EAGAIN);
  })) << "the daemon kept a peer that never reads";
  close(fd);
}

// sshd's StrictModes for the CA file and the KRL: a CA file someone else
// owns is refused (the last good keys stay in force); a KRL others can
// write denies every certificate, as an unreadable one does.
TEST_F(RobustnessTest, CaFileAndKrlThatOthersCouldWriteAreRefused) {
  ASSERT_EQ(chown(h.user_ca_file().c_str(), 65534, static_cast<gid_t>(-1)), 0);
  h.signal_daemon(SIGHUP);
  nlohmann::json s;
  ASSERT_TRUE(eventually([&] {
    s = status();
    return s.contains("errors") && s["errors"].contains("ca");
  })) << daemon_log();
  EXPECT_NE(s["errors"]["ca"].get<std::string>().find(h.user_ca_file() +
                                                      ": file is owned by neither root"),
            std::string::npos)
      << s["errors"];
  EXPECT_EQ(s["ca"]["keys"].size(), 1u);  // the last good key
  auto reply = ask_fresh();
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->allowed) << reply->detail;

  ASSERT_EQ(chmod(h.krl_file().c_str(), 0666), 0);
  h.signal_daemon(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    s = status();
    return s.contains("krl") && s["krl"].contains("error");
  })) << daemon_log();
  EXPECT_NE(s["krl"]["error"].get<std::string>().find("fix: chmod go-w " + h.krl_file()),
            std::string::npos)
      << s["krl"];
  reply = ask_fresh();
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->allowed);
  EXPECT_EQ(reply->reason, "revoked");
  EXPECT_NE(daemon_log().find("<3>machineid-verifierd: revoked_keys: "), std::string::npos)
      << daemon_log();
}

// The daemon's own lines carry journald priorities, and text others wrote
// (here a role file's name) reaches the log escaped.
TEST_F(RobustnessTest, LogLinesCarryPrioritiesAndEscapeUntrustedText) {
  h.write_role("evil\x1b[31m\nforged",
               "kind: role\nversion: v7\nmetadata: {name: x}\nspec:\n  allow:\n    logins: root\n");
  h.signal_daemon(SIGHUP);
  ASSERT_TRUE(eventually([&] { return status()["errors"].contains("roles"); })) << daemon_log();
  std::string log = daemon_log();
  EXPECT_NE(log.find("<6>machineid-verifierd: serving "), std::string::npos) << log;
  EXPECT_NE(log.find("<3>machineid-verifierd: roles: "), std::string::npos) << log;
  EXPECT_NE(log.find("evil\\033[31m\\012forged.yaml"), std::string::npos) << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    EXPECT_TRUE(line.size() > 3 && line[0] == '<' && line[2] == '>')
        << "a line without a priority: " << line;
}

// A key id from a real ssh-keygen -I with an escape sequence and a newline:
// the audit message is escaped, the JSON value exact.
TEST_F(RobustnessTest, KeyIdWithEscapesIsEscapedInTheAudit) {
  CertSpec spec{.ca = h.ca(), .key = user + ".pub"};
  spec.identity = "evil\x1b]0;owned\x07\nline";
  spec.options = {R"(extension:teleport-roles={"roles":["ci"]})"};
  std::string evil = base64_of(h.keygen().sign(spec));
  auto mark = h.audit_mark();
  auto reply = ask("root", evil, "192.0.2.7");
  ASSERT_TRUE(reply.ok());
  std::vector<std::string> lines;
  ASSERT_TRUE(eventually([&] { return !(lines = h.audit_lines_since(mark)).empty(); }));
  auto j = nlohmann::json::parse(lines.back());
  EXPECT_EQ(j["key_id"], spec.identity);
  EXPECT_NE(j["message"].get<std::string>().find("key id 'evil\\033]0;owned\\007\\012line'"),
            std::string::npos)
      << j["message"];
}

// With WATCHDOG_USEC set, as systemd sets it for WatchdogSec=, the loop
// tells systemd it is alive, twice per period.
TEST(VerifierdWatchdogTest, LoopSendsWatchdogKeepAlives) {
  testing::TempDir dir;
  std::string notify = dir.file("notify");
  int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", notify.c_str());
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  testing::HarnessOptions options;
  options.daemon_env = {"NOTIFY_SOCKET=" + notify, "WATCHDOG_USEC=400000"};
  SshdHarness h{MID_BIN_DIR, options};
  h.write_role("ci", kCiRole);
  ASSERT_TRUE(h.start_daemon());
  int keepalives = 0;
  for (auto until = Clock::now() + 5s; Clock::now() < until && keepalives < 3;) {
    pollfd p{sock, POLLIN, 0};
    if (poll(&p, 1, 100) != 1) continue;
    char buf[512];
    ssize_t n = recv(sock, buf, sizeof buf, 0);
    if (n > 0 &&
        std::string(buf, static_cast<std::size_t>(n)).find("WATCHDOG=1") != std::string::npos)
      ++keepalives;
  }
  EXPECT_GE(keepalives, 3);
  close(sock);
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

// No descriptor left while a reload reads the files: that says nothing about
// the KRL, which stays in force (no deny-all) while the load is retried, and
// the retry puts everything back without anyone reloading again.
TEST_F(RobustnessTest, DescriptorsRunningOutDuringAReloadKeepTheKrlAndRetry) {
#ifdef __SANITIZE_ADDRESS__
  // The sanitizers' runtime needs descriptors of its own (its memory checks
  // open a pipe): with none left it reports errors that are not the daemon's.
  GTEST_SKIP() << "not under the sanitizers";
#endif
  // A KRL file that has not changed is not read again: touch it.
  ASSERT_EQ(utimes(h.krl_file().c_str(), nullptr), 0);
  rlimit saved{};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, nullptr, &saved), 0);
  rlimit none{3, saved.rlim_max};  // below every descriptor it holds: no open() succeeds
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &none, nullptr), 0);
  h.signal_daemon(SIGHUP);
  bool kept = eventually([&] {
    return daemon_log().find("revoked_keys: " + h.krl_file() +
                             ": cannot open: Too many open files (a passing error") !=
           std::string::npos;
  });
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &saved, nullptr), 0);
  ASSERT_TRUE(kept) << daemon_log();
  EXPECT_TRUE(eventually([&] {
    return daemon_log().find("revoked_keys: loads again") != std::string::npos;
  })) << daemon_log();
  auto s = status();
  EXPECT_EQ(s["krl"]["state"], "loaded") << s.dump();
  EXPECT_TRUE(s["errors"].empty()) << s["errors"];
  EXPECT_EQ(s["last_reload"]["trigger"], "retry");
  auto reply = ask_fresh();
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_TRUE(reply->allowed) << reply->reason << ": " << reply->detail;
  EXPECT_EQ(daemon_log().find("denying every certificate"), std::string::npos) << daemon_log();
}

// A reload whose KRL file is the one in force (same inode, size, times)
// keeps that KRL rather than holding a second copy while it reads the same
// bytes again: with no descriptor to be had, everything else fails to load
// and the KRL does not.
TEST_F(RobustnessTest, AnUnchangedKrlIsNotReadAgain) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "not under the sanitizers";
#endif
  rlimit saved{};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, nullptr, &saved), 0);
  rlimit none{3, saved.rlim_max};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &none, nullptr), 0);
  h.signal_daemon(SIGHUP);
  bool failed = eventually([&] { return daemon_log().find("cannot list: Too many open files") != std::string::npos; });
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &saved, nullptr), 0);
  ASSERT_TRUE(failed) << daemon_log();
  EXPECT_EQ(daemon_log().find("revoked_keys: " + h.krl_file()), std::string::npos) << daemon_log();
  auto reply = ask_fresh();
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_TRUE(reply->allowed) << reply->reason << ": " << reply->detail;
}

}  // namespace
}  // namespace machineid
