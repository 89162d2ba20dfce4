// Refreshing user_ca_file from the cluster: a real `openssl s_server` on
// loopback with a certificate made at test time, and a listener that never
// answers.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "machineid/ca.h"
#include "machineid/ca_refresh.h"
#include "machineid/client.h"
#include "machineid/config.h"
#include "machineid/encoding.h"
#include "machineid/protocol.h"
#include "sshd_harness.h"

extern char** environ;

namespace machineid {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kCluster = "example.teleport.sh";
constexpr std::string_view kExportPath = "/webapi/auth/export?type=user";

// `openssl s_server` on 127.0.0.1 at a port the kernel picks, run in `dir`.
class TlsServer {
 public:
  TlsServer(const std::string& dir, const std::string& cert, const std::string& key,
            const std::vector<std::string>& mode, const std::string& stdin_path = "/dev/null") {
    std::vector<std::string> argv = {"openssl", "s_server", "-accept", "127.0.0.1:0",
                                     "-cert",   cert,       "-key",    key};
    argv.insert(argv.end(), mode.begin(), mode.end());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const std::string log = dir + "/s_server.log";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    // -WWW serves "GET /x" from the file x under its working directory.
    posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
    if (posix_spawnp(&pid_, "openssl", &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    // It prints "ACCEPT 127.0.0.1:<port>" once it listens.
    for (auto until = Clock::now() + 10s; pid_ > 0 && port_ == 0 && Clock::now() < until;) {
      std::string text = testing::read_file(log);
      if (auto at = text.find("ACCEPT 127.0.0.1:");
          at != std::string::npos && text.find('\n', at) != std::string::npos)
        port_ = std::stoi(text.substr(at + 17));
      else
        std::this_thread::sleep_for(20ms);
    }
  }
  ~TlsServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// A TCP listener on 127.0.0.1 that never accepts: connections complete in
// the kernel and then hear nothing, not even a TLS handshake.
class SilentListener {
 public:
  SilentListener() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 && listen(fd_, 8) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
      port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// A self-signed certificate for 127.0.0.1; returns the certificate's path,
// the key is at "<name>.key".
std::string make_certificate(const testing::TempDir& dir, const std::string& name) {
  std::string cert = dir.file(name + ".crt");
  testing::run_ok({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir.file(name + ".key"), "-out",
                   cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                   "subjectAltName=IP:127.0.0.1"});
  return cert;
}

// The SHA-256 of a certificate's SubjectPublicKeyInfo, as user_ca_pin holds it.
Sha256Digest spki_sha256(const std::string& cert_path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(cert_path.c_str(), "r"), std::fclose);
  std::unique_ptr<X509, void (*)(X509*)> cert(
      f ? PEM_read_X509(f.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
  if (!cert) return {};
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(X509_get0_pubkey(cert.get()), &der);
  if (len <= 0) return {};
  Sha256Digest digest = sha256(Bytes(der, static_cast<std::size_t>(len)));
  OPENSSL_free(der);
  return digest;
}

class CaRefreshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(www_ + "/webapi/auth");
    serve("");
    server_ = std::make_unique<TlsServer>(www_, cert_, dir_.file("server.key"),
                                          std::vector<std::string>{"-WWW"});
    ASSERT_NE(server_->port(), 0) << testing::read_file(www_ + "/s_server.log");
    old_ = export_line("old");
    testing::write_file(ca_file_, old_);
  }

  // What the proxy answers. s_server -WWW takes the query string for part
  // of the file name, so the file is named with it.
  void serve(const std::string& text) {
    testing::write_file(www_ + std::string(kExportPath), text);
  }

  // A `tctl auth export --type=user` line for a fresh CA key.
  std::string export_line(const std::string& name) {
    std::istringstream in(testing::read_file(kg_.make_key(name) + ".pub"));
    std::string type, b64;
    in >> type >> b64;
    return "cert-authority " + type + " " + b64 + " clustername=" + std::string(kCluster) +
           "&type=user\n";
  }

  std::string url(int port) const {
    return "https://127.0.0.1:" + std::to_string(port) + std::string(kExportPath);
  }

  CaFetchOptions options() const {
    CaFetchOptions o;
    o.url = url(server_->port());
    o.ca_bundle = cert_;
    return o;
  }

  Result<CaRefreshOutcome> refresh(const CaFetchOptions& o) {
    return refresh_ca_file(o, ca_file_, kCluster);
  }

  testing::Keygen kg_;
  testing::TempDir dir_;
  const std::string www_ = dir_.file("www");
  const std::string cert_ = make_certificate(dir_, "server");
  const std::string ca_file_ = dir_.file("user_ca.pub");
  std::string old_;  // the last good file's content
  std::unique_ptr<TlsServer> server_;
};

TEST_F(CaRefreshTest, ExportWithOneKeyReplacesTheFile) {
  std::string exported = export_line("new");
  serve(exported);
  auto outcome = refresh(options());
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  EXPECT_EQ(outcome->keys, 1u);
  EXPECT_TRUE(outcome->changed);
  EXPECT_EQ(testing::read_file(ca_file_), exported);
  auto loaded = CaSet::load(ca_file_, kCluster);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->keys().size(), 1u);
}

TEST_F(CaRefreshTest, RotationWithTwoKeysReplacesTheFileWithBoth) {
  std::string exported = export_line("current") + export_line("next");
  serve(exported);
  auto outcome = refresh(options());
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  EXPECT_EQ(outcome->keys, 2u);
  EXPECT_EQ(testing::read_file(ca_file_), exported);
  auto loaded = CaSet::load(ca_file_, kCluster);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->keys().size(), 2u);
}

TEST_F(CaRefreshTest, UnchangedAnswerLeavesTheFileUntouched) {
  serve(old_);
  struct stat before {
  }, after{};
  ASSERT_EQ(stat(ca_file_.c_str(), &before), 0);
  auto outcome = refresh(options());
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  EXPECT_FALSE(outcome->changed);
  ASSERT_EQ(stat(ca_file_.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // not even rewritten: the daemon has nothing to reload
}

TEST_F(CaRefreshTest, EmptyAnswerKeepsTheLastGoodFile) {
  auto outcome = refresh(options());
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(outcome.error().message.find("holds no CA key"), std::string::npos)
      << outcome.error().message;
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

TEST_F(CaRefreshTest, GarbageAnswerKeepsTheLastGoodFile) {
  serve("<html><body>Teleport is starting</body></html>\n");
  auto outcome = refresh(options());
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().message.rfind(url(server_->port()) + ":1: ", 0), 0u)
      << outcome.error().message;
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

TEST_F(CaRefreshTest, ExportOfAnotherClusterKeepsTheLastGoodFile) {
  std::string other = export_line("other");
  other.replace(other.find(kCluster), kCluster.size(), "other.example.com");
  serve(other);
  auto outcome = refresh(options());
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(outcome.error().message.find("cluster 'other.example.com'"), std::string::npos);
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

TEST_F(CaRefreshTest, WrongPinIsRefused) {
  serve(export_line("new"));
  Sha256Digest wrong = spki_sha256(make_certificate(dir_, "other"));
  CaFetchOptions o = options();
  o.pin = "sha256:" + base64_encode(wrong);
  auto outcome = refresh(o);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code, Errc::crypto) << outcome.error().message;
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

TEST_F(CaRefreshTest, RightPinIsAcceptedWithoutATrustedChain) {
  std::string exported = export_line("new");
  serve(exported);
  Sha256Digest digest = spki_sha256(cert_);
  for (const std::string& pin : {"sha256:" + base64_encode(digest), "sha256:" + hex(digest)}) {
    CaFetchOptions o = options();
    o.ca_bundle
        .clear();  // the system store does not know this self-signed certificate; the pin does
    o.pin = pin;
    auto body = fetch_ca_export(o);
    ASSERT_TRUE(body.ok()) << pin << ": " << body.error().message;
    EXPECT_EQ(*body, exported);
  }
}

TEST_F(CaRefreshTest, CertificateOutsideTheTrustStoreIsRefused) {
  serve(export_line("new"));
  CaFetchOptions o = options();
  o.ca_bundle = make_certificate(dir_, "unrelated");
  auto outcome = refresh(o);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code, Errc::crypto) << outcome.error().message;
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

TEST_F(CaRefreshTest, ServerThatNeverAnswersFailsWithinTheTimeout) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  CaFetchOptions o = options();
  o.url = url(silent.port());
  o.connect_timeout = 1s;
  o.total_timeout = 2s;
  auto started = Clock::now();
  auto outcome = refresh(o);
  auto took = Clock::now() - started;
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code, Errc::io);
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 5s);
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

TEST_F(CaRefreshTest, HttpUrlIsRefused) {
  serve(export_line("new"));
  CaFetchOptions o = options();
  o.url = "http://127.0.0.1:" + std::to_string(server_->port()) + std::string(kExportPath);
  auto outcome = refresh(o);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code, Errc::config);
  EXPECT_NE(outcome.error().message.find("https://"), std::string::npos);
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

TEST_F(CaRefreshTest, AnswerOverTheSizeLimitIsRefused) {
  serve(std::string(kMaxCaFileBytes + 1, '#'));
  auto outcome = refresh(options());
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code, Errc::limit) << outcome.error().message;
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

TEST_F(CaRefreshTest, RedirectIsNotFollowed) {
  // Without -WWW, s_server sends its standard input to the client verbatim.
  std::string answer = dir_.file("redirect.http");
  testing::write_file(
      answer,
      "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/export\r\nContent-Length: 0\r\n\r\n");
  TlsServer redirecting(dir_.path(), cert_, dir_.file("server.key"), {"-naccept", "1"}, answer);
  ASSERT_NE(redirecting.port(), 0);
  CaFetchOptions o = options();
  o.url = url(redirecting.port());
  auto outcome = refresh(o);
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(outcome.error().message.find("HTTP 302"), std::string::npos) << outcome.error().message;
  EXPECT_NE(outcome.error().message.find("not followed"), std::string::npos);
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

// Collects what a CaRefresher reports, from its thread.
struct Reports {
  std::mutex mu;
  std::vector<std::string> messages;
  CaRefresher::Reporter reporter() {
    return [this](const std::string& m) {
      std::lock_guard lock(mu);
      messages.push_back(m);
    };
  }
  std::vector<std::string> get() {
    std::lock_guard lock(mu);
    return messages;
  }
};

// Polls until `done` holds or 10 s pass.
template <class F>
bool eventually(F done) {
  for (auto until = Clock::now() + 10s; Clock::now() < until; std::this_thread::sleep_for(20ms))
    if (done()) return true;
  return done();
}

TEST_F(CaRefreshTest, RefresherRefreshesOnStartAndStopsPromptly) {
  std::string exported = export_line("new");
  serve(exported);
  Reports reports;
  CaRefresher refresher(options(), ca_file_, std::string(kCluster), 1h, reports.reporter());
  ASSERT_TRUE(eventually([&] { return refresher.state().attempts == 1; }));
  CaRefresher::State state = refresher.state();
  EXPECT_TRUE(state.last_success.has_value());
  EXPECT_EQ(state.last_change, state.last_success);
  EXPECT_FALSE(state.last_error.has_value());
  EXPECT_EQ(state.keys, 1u);
  EXPECT_EQ(refresher.options().url, url(server_->port()));
  EXPECT_EQ(testing::read_file(ca_file_), exported);
  ASSERT_EQ(reports.get().size(), 1u);
  EXPECT_NE(reports.get()[0].find("replaced with 1 CA key"), std::string::npos) << reports.get()[0];

  auto started = Clock::now();
  refresher.stop();  // while it waits out the hour
  EXPECT_LT(Clock::now() - started, 1s);
  refresher.stop();
}

TEST_F(CaRefreshTest, RefresherKeepsTheFileAndReportsAFailure) {
  serve("garbage\n");
  Reports reports;
  CaRefresher refresher(options(), ca_file_, std::string(kCluster), 1h, reports.reporter());
  ASSERT_TRUE(eventually([&] { return refresher.state().attempts == 1; }));
  CaRefresher::State state = refresher.state();
  EXPECT_EQ(state.failures, 1u);
  EXPECT_FALSE(state.last_success.has_value());
  ASSERT_TRUE(state.last_error.has_value());
  EXPECT_NE(state.last_error->find(url(server_->port())), std::string::npos) << *state.last_error;
  ASSERT_EQ(reports.get().size(), 1u);
  EXPECT_NE(reports.get()[0].find("keeping " + ca_file_), std::string::npos) << reports.get()[0];
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

TEST_F(CaRefreshTest, RefresherPicksUpARotationWithinAnInterval) {
  serve(old_);
  CaRefresher refresher(options(), ca_file_, std::string(kCluster), 200ms, nullptr);
  ASSERT_TRUE(eventually([&] { return refresher.state().attempts >= 2; }));
  EXPECT_FALSE(refresher.state().last_change.has_value());  // the same answer wrote nothing
  std::string rotated = old_ + export_line("next");
  serve(rotated);
  ASSERT_TRUE(eventually([&] { return refresher.state().keys == 2; }));
  EXPECT_EQ(testing::read_file(ca_file_), rotated);
  EXPECT_EQ(refresher.state().failures, 0u);
}

TEST_F(CaRefreshTest, RefresherWaitsOutTheLongestConfigurableInterval) {
  serve(old_);
  CaRefresher refresher(options(), ca_file_, std::string(kCluster), kMaxDuration, nullptr);
  ASSERT_TRUE(eventually([&] { return refresher.state().attempts == 1; }));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(refresher.state().attempts, 1u);  // no busy loop on a deadline past the clock's range
}

TEST_F(CaRefreshTest, RefresherStopsPromptlyDuringAFetch) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  CaFetchOptions o = options();
  o.url = url(silent.port());  // the default 10 s / 30 s timeouts
  Reports reports;
  auto refresher =
      std::make_unique<CaRefresher>(o, ca_file_, std::string(kCluster), 1h, reports.reporter());
  std::this_thread::sleep_for(300ms);  // the fetch is waiting for a handshake by now
  auto started = Clock::now();
  refresher.reset();  // the destructor stops it as stop() does
  EXPECT_LT(Clock::now() - started, 3s);
  EXPECT_TRUE(reports.get().empty());  // an abandoned fetch is not the proxy's failure
  EXPECT_EQ(testing::read_file(ca_file_), old_);
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

// The unit's ExecReload is SIGHUP. With user_ca_url set the daemon runs the
// refresher's thread; a HUP must reach the event loop (a reload), never
// that thread, where its default action would end the process.
TEST_F(CaRefreshTest, DaemonWithUserCaUrlReloadsOnSighupAndLivesOn) {
  testing::SshdHarness h{MID_BIN_DIR};
  h.write_role("ci", testing::kCiRole);
  std::istringstream in(testing::read_file(h.ca() + ".pub"));
  std::string type, b64;
  in >> type >> b64;
  serve("cert-authority " + type + " " + b64 + " clustername=" + std::string(kCluster) + "&type=user\n");
  std::string toml = testing::read_file(h.file("etc/verifierd.toml"));
  std::string ca_line = "user_ca_file = \"" + h.user_ca_file() + "\"\n";
  auto at = toml.find(ca_line);
  ASSERT_NE(at, std::string::npos) << toml;
  toml.insert(at + ca_line.size(), "user_ca_url = \"" + url(server_->port()) + "\"\nuser_ca_pin = \"sha256:" +
                                       hex(spki_sha256(cert_)) + "\"\nrefresh_interval = \"1h\"\n");
  testing::write_file(h.file("etc/verifierd.toml"), toml);
  ASSERT_TRUE(h.start_daemon());

  auto status = [&]() -> nlohmann::json {
    auto reply = call_daemon(h.socket(), encode_simple(MessageKind::status), 2000);
    if (!reply.ok()) return {};
    auto s = decode_status_reply(*reply);
    return s.ok() ? nlohmann::json::parse(s->json) : nlohmann::json{};
  };
  // The refresher's thread is up and has fetched once.
  ASSERT_TRUE(eventually([&] {
    auto s = status();
    return s.contains("ca") && s["ca"].contains("refresh") && s["ca"]["refresh"]["attempts"] == 1;
  })) << h.logs_since({});
  for (int i = 0; i < 3; ++i) {
    h.signal_daemon(SIGHUP);
    std::this_thread::sleep_for(200ms);
  }
  nlohmann::json s;
  ASSERT_TRUE(eventually([&] {
    s = status();
    return s.contains("last_reload") && s["last_reload"]["trigger"] == "SIGHUP" && s["last_reload"]["loading"] == false;
  })) << "daemon gone or never reloaded on SIGHUP\n"
      << h.logs_since({});
  EXPECT_TRUE(s["errors"].empty()) << s.dump();
}

}  // namespace
}  // namespace machineid
