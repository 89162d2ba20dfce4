// machineid-verifierd as a process: its socket, its reloads, and load.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "machineid/client.h"
#include "machineid/protocol.h"
#include "sshd_harness.h"

namespace machineid {
namespace {

using testing::CertSpec;
using testing::SshdHarness;

using testing::kCiRole;

std::string base64_of(const std::string& cert_path) {
  std::istringstream in(testing::read_file(cert_path));
  std::string type, b64;
  in >> type >> b64;
  return b64;
}

class VerifierdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h.write_role("ci", kCiRole);
    ASSERT_TRUE(h.start_daemon());
    user = h.keygen().make_key("user");
    CertSpec spec{.ca = h.ca(), .key = user + ".pub"};
    spec.options = {R"(extension:teleport-roles={"roles":["ci"]})"};
    cert = base64_of(h.keygen().sign(spec));
  }

  Result<DecideReply> ask(const std::string& login, const std::string& certificate, const std::string& source = "",
                          Asker asker = Asker::cli) {
    DecideRequest r{asker, login, "ssh-ed25519-cert-v01@openssh.com", certificate, source};
    auto reply = call_daemon(h.socket(), encode(r), 2000);
    if (!reply.ok()) return reply.error();
    return decode_decide_reply(*reply);
  }

  nlohmann::json status() {
    auto reply = call_daemon(h.socket(), encode_simple(MessageKind::status), 2000);
    EXPECT_TRUE(reply.ok());
    auto s = decode_status_reply(reply.ok() ? *reply : ByteVector{});
    return s.ok() ? nlohmann::json::parse(s->json) : nlohmann::json{};
  }

  // A raw connection, for frames the client library would never send.
  int connect_raw() {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", h.socket().c_str());
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  }

  SshdHarness h{MID_BIN_DIR};
  std::string user, cert;
};

// One connection, one decision: the helper's repeated calls from one sshd
// connection process (here, this test's parent) are answered from its first
// decision; machineidctl's requests are connections of their own.
TEST_F(VerifierdTest, OneDecisionPerConnection) {
  auto first = ask("root", cert, "", Asker::principals);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->allowed);
  EXPECT_EQ(first->who.roles, "ci");
  auto second = ask("root", cert, "", Asker::principals);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->who.correlation_id, first->who.correlation_id);
  auto cli_one = ask("root", cert);
  auto cli_two = ask("root", cert);
  ASSERT_TRUE(cli_one.ok() && cli_two.ok());
  EXPECT_NE(cli_one->who.correlation_id, first->who.correlation_id);
  EXPECT_NE(cli_two->who.correlation_id, cli_one->who.correlation_id);
  auto denied = ask("daemon", cert, "", Asker::principals);
  ASSERT_TRUE(denied.ok());
  EXPECT_FALSE(denied->allowed);
  EXPECT_EQ(denied->reason, "principal");
  EXPECT_EQ(denied->who.correlation_id, first->who.correlation_id);  // the same connection
  auto s = status();
  EXPECT_EQ(s["counters"]["requests"], 5);
  EXPECT_EQ(s["counters"]["cache_hits"], 1);
}

TEST_F(VerifierdTest, GarbageCertificateIsDeniedAsParse) {
  auto reply = ask("root", "!!!not base64");
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->allowed);
  EXPECT_EQ(reply->reason, "parse");
}

TEST_F(VerifierdTest, BadFramesCloseTheConnectionNotTheDaemon) {
  const std::vector<ByteVector> bad = {
      {0xff, 0xff, 0xff, 0xff},                    // length over the limit
      {0, 0, 0, 2, 9, 1},                          // wrong version
      {0, 0, 0, 3, 1, 1, 0},                       // truncated decide request
      {0, 0, 0, 0},                                // empty frame
  };
  for (const auto& frame_bytes : bad) {
    int fd = connect_raw();
    ASSERT_EQ(write(fd, frame_bytes.data(), frame_bytes.size()), static_cast<ssize_t>(frame_bytes.size()));
    char c;
    EXPECT_EQ(read(fd, &c, 1), 0) << "daemon answered a bad frame instead of closing";
    close(fd);
  }
  auto reply = ask("root", cert);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_TRUE(reply->allowed);
  EXPECT_EQ(status()["counters"]["bad_frames"], 4);
}

// Decisions run beside the event loop; one peer's requests are still
// answered in the order it sent them, each with its own outcome.
TEST_F(VerifierdTest, PipelinedRequestsAreAnsweredInOrder) {
  ByteVector both;
  for (int i = 0; i < 8; ++i) {
    DecideRequest r{Asker::cli, i % 2 ? "daemon" : "root", "ssh-ed25519-cert-v01@openssh.com", cert,
                    "192.0.2." + std::to_string(i)};
    ByteVector framed = frame(encode(r));
    both.insert(both.end(), framed.begin(), framed.end());
  }
  int fd = connect_raw();
  ASSERT_EQ(write(fd, both.data(), both.size()), static_cast<ssize_t>(both.size()));
  ByteVector in;
  std::vector<DecideReply> replies;
  while (replies.size() < 8) {
    std::uint8_t buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    ASSERT_GT(n, 0) << "after " << replies.size() << " replies";
    in.insert(in.end(), buf, buf + n);
    while (in.size() >= 4) {
      auto length = frame_length(Bytes(in).first(4));
      ASSERT_TRUE(length.ok());
      if (in.size() < 4 + *length) break;
      auto reply = decode_decide_reply(ByteVector(in.begin() + 4, in.begin() + 4 + *length));
      ASSERT_TRUE(reply.ok()) << reply.error().message;
      replies.push_back(*reply);
      in.erase(in.begin(), in.begin() + 4 + *length);
    }
  }
  close(fd);
  for (std::size_t i = 0; i < replies.size(); ++i) {
    EXPECT_EQ(replies[i].allowed, i % 2 == 0) << i;
    EXPECT_EQ(replies[i].reason, i % 2 ? "principal" : "ok") << i;
  }
  EXPECT_GE(status()["counters"]["decision_threads"].get<int>(), 1);
}

TEST_F(VerifierdTest, StuckClientDoesNotDelayOthersAndIsDroppedAtItsDeadline) {
  int stuck = connect_raw();
  const std::uint8_t half[] = {0, 0, 0, 50, 1};  // a frame that never completes
  ASSERT_EQ(write(stuck, half, sizeof half), 5);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(ask("root", cert, "192.0.2." + std::to_string(i)).ok());
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(elapsed, std::chrono::seconds(1));  // correctness bound, not a benchmark
  char c;
  EXPECT_EQ(read(stuck, &c, 1), 0);  // closed by the daemon after its deadline
  close(stuck);
}

TEST_F(VerifierdTest, RefusesPeersOtherThanRootAndTheClientUser) {
  pid_t pid = fork();
  if (pid == 0) {
    // uid 1 (daemon) is neither root nor the configured client user (nobody).
    if (setgid(1) != 0 || setuid(1) != 0) _exit(3);
    auto reply = call_daemon(h.socket(), encode_simple(MessageKind::status), 1000);
    _exit(reply.ok() ? 0 : 1);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  // The socket is mode 0600 and owned by the client user, so the connect
  // itself fails; SO_PEERCRED would refuse it otherwise.
  EXPECT_EQ(WEXITSTATUS(st), 1);
}

TEST_F(VerifierdTest, BrokenRoleFileIsReportedAndDeniesOnlyItsHolders) {
  h.write_role("broken", "kind: role\nversion: v7\nmetadata: {name: x}\nspec:\n  allow:\n    logins: root\n");
  h.signal_daemon(SIGHUP);
  nlohmann::json s;
  for (int i = 0; i < 50; ++i) {
    s = status();
    if (s["errors"].contains("roles")) break;
    usleep(100000);
  }
  ASSERT_TRUE(s["errors"].contains("roles")) << s.dump();
  EXPECT_NE(s["errors"]["roles"].get<std::string>().find("broken.yaml:6"), std::string::npos) << s["errors"];
  EXPECT_TRUE(s["roles"]["broken"].contains("x")) << s["roles"];
  auto reply = ask("root", cert);
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->allowed) << reply->detail;  // the other roles keep working
  CertSpec spec{.ca = h.ca(), .key = h.keygen().make_key("holder") + ".pub"};
  spec.identity = "bot-holder";
  spec.principals = {"root"};
  spec.validity = "-1m:+1h";
  spec.options = {R"(extension:teleport-roles={"roles":["ci","x"]})"};
  auto holder = ask("root", base64_of(h.keygen().sign(spec)));
  ASSERT_TRUE(holder.ok());
  EXPECT_FALSE(holder->allowed);
  EXPECT_EQ(holder->reason, "role");
  EXPECT_NE(holder->detail.find("role 'x' did not load"), std::string::npos) << holder->detail;
}

TEST_F(VerifierdTest, BrokenKrlDeniesEverything) {
  std::ofstream(h.krl_file() + ".new") << "garbage";
  ASSERT_EQ(rename((h.krl_file() + ".new").c_str(), h.krl_file().c_str()), 0);
  h.signal_daemon(SIGHUP);
  Result<DecideReply> reply = make_error(Errc::io, "not asked");
  for (int i = 0; i < 50; ++i) {
    reply = ask("root", cert, "198.51.100." + std::to_string(i));  // a new source each time: no cache
    if (reply.ok() && !reply->allowed) break;
    usleep(100000);
  }
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->allowed);
  EXPECT_EQ(reply->reason, "revoked");
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

long peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

TEST_F(VerifierdTest, SixtyFourClientsTwentyThousandMixedRequestsNoErrorsNoWrongAnswers) {
  h.write_lock("other", "kind: lock\nversion: v2\nmetadata: {name: other}\nspec: {target: {user: bot-locked}}\n");
  h.signal_daemon(SIGHUP);
  CertSpec locked_spec{.ca = h.ca(), .key = user + ".pub"};
  locked_spec.identity = "bot-locked";
  locked_spec.options = {R"(extension:teleport-roles={"roles":["ci"]})"};
  const std::string locked = base64_of(h.keygen().sign(locked_spec));
  for (int i = 0; i < 50 && ask("root", locked, "203.0.113.1")->allowed; ++i) usleep(100000);

  struct Case {
    std::string login, certificate, reason;
  };
  const std::vector<Case> cases = {
      {"root", cert, "ok"}, {"daemon", cert, "principal"}, {"root", locked, "locked"}, {"root", "AAAA", "parse"}};
  constexpr int kClients = 64, kRequests = 20000;
  std::atomic<int> errors{0}, wrong{0}, done{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = c; i < kRequests; i += kClients) {
        const Case& k = cases[static_cast<std::size_t>(i) % cases.size()];
        // Half the requests repeat a source (cached), half are new (uncached).
        std::string source = i % 2 ? "10.0.0.1" : "10." + std::to_string(i / 65536 % 256) + "." +
                                                       std::to_string(i / 256 % 256) + "." + std::to_string(i % 256);
        auto reply = ask(k.login, k.certificate, source);
        if (!reply.ok()) {
          ++errors;
        } else if (reply->reason != k.reason || reply->allowed != (k.reason == "ok")) {
          ++wrong;
        }
        ++done;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(done.load(), kRequests);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  pid_t pid = daemon_pid(h.socket());
  ASSERT_GT(pid, 0);
  long rss = peak_rss_kib(pid);
  EXPECT_GT(rss, 0);
#ifndef __SANITIZE_ADDRESS__
  // AddressSanitizer's shadow memory and quarantine dwarf the daemon's own.
  EXPECT_LT(rss, 20 * 1024) << "daemon peak RSS " << rss << " KiB";
#endif
  std::printf("load: %d requests from %d clients, daemon peak RSS %ld KiB\n", kRequests, kClients, rss);
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

TEST(VerifierdActivationTest, ServesASocketHandedOverBySystemd) {
  SshdHarness h{MID_BIN_DIR};
  h.write_role("ci", kCiRole);
  testing::Process activator;
  std::string log = h.file("activation.log");
  // Listens on the daemon's socket and starts the daemon with LISTEN_FDS on
  // the first connection, as systemd's .socket unit would.
  ASSERT_TRUE(activator.start({"/usr/bin/systemd-socket-activate", "-l", h.socket(), MID_BIN_DIR "/machineid-verifierd",
                               "--foreground", "--config", h.file("etc/verifierd.toml")},
                              log, log));
  Result<ByteVector> reply = make_error(Errc::io, "not asked");
  for (int i = 0; i < 20 && !reply.ok(); ++i) {
    usleep(100000);
    reply = call_daemon(h.socket(), encode_simple(MessageKind::status), 1000);
  }
  ASSERT_TRUE(reply.ok()) << reply.error().message << "\n" << testing::read_file(log);
  // A second connection: the daemon must not block in accept() after the first.
  reply = call_daemon(h.socket(), encode_simple(MessageKind::status), 1000);
  ASSERT_TRUE(reply.ok()) << reply.error().message << "\n" << testing::read_file(log);
  auto status = decode_status_reply(*reply);
  ASSERT_TRUE(status.ok());
  EXPECT_NE(status->json.find("\"cluster\":\"example.teleport.sh\""), std::string::npos);
  EXPECT_NE(testing::read_file(log).find("(socket-activated)"), std::string::npos);
  activator.stop();
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

// SPEC §6: the helper links neither OpenSSL nor libsodium, and (being
// static) needs no dynamic loader to start. It is C on the client library:
// no C++ runtime either.
TEST(PrincipalsHelperTest, LinksNeitherOpenSslNorLibsodium) {
  const std::string helper = MID_BIN_DIR "/machineid-principals";
  auto symbols = testing::run({"nm", "--defined-only", helper});
  ASSERT_EQ(symbols.status, 0) << symbols.output;
  EXPECT_NE(symbols.output.find("mid_call"), std::string::npos) << "nm saw no symbols at all";
  for (std::string crypto : {"EVP_", "OPENSSL_", "RSA_", "sodium_", "crypto_sign", "__cxa_throw", "_ZNSt"})
    EXPECT_EQ(symbols.output.find(crypto), std::string::npos) << crypto;
  auto dynamic = testing::run({"readelf", "-d", helper});
  EXPECT_EQ(dynamic.output.find("libcrypto"), std::string::npos) << dynamic.output;
  EXPECT_EQ(dynamic.output.find("libsodium"), std::string::npos) << dynamic.output;
}

}  // namespace
}  // namespace machineid
