// machineid-sync's HTTPS GET: a real `openssl s_server` on loopback with a
// certificate made at test time, and a listener that never answers.
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
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "fixtures.h"
#include "machineid/config.h"
#include "machineid/encoding.h"
#include "machineid/fetch.h"

extern char** environ;

namespace machineid {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

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

class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(www_ + "/webapi/auth");
    serve("cert-authority ssh-ed25519 AAAA clustername=c&type=user\n");
    server_ = std::make_unique<TlsServer>(www_, cert_, dir_.file("server.key"),
                                          std::vector<std::string>{"-WWW"});
    ASSERT_NE(server_->port(), 0) << testing::read_file(www_ + "/s_server.log");
  }

  // What the server answers. s_server -WWW takes the query string for part
  // of the file name, so the file is named with it.
  void serve(const std::string& text) {
    served_ = text;
    testing::write_file(www_ + std::string(kExportPath), text);
  }

  std::string url(int port) const {
    return "https://127.0.0.1:" + std::to_string(port) + std::string(kExportPath);
  }

  FetchOptions options() const {
    FetchOptions o;
    o.url = url(server_->port());
    o.ca_bundle = cert_;
    o.max_bytes = 1024 * 1024;
    return o;
  }

  testing::TempDir dir_;
  const std::string www_ = dir_.file("www");
  const std::string cert_ = make_certificate(dir_, "server");
  std::string served_;
  std::unique_ptr<TlsServer> server_;
};

TEST_F(FetchTest, TrustedServerAnswersWithTheBody) {
  auto got = fetch(options());
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(got->not_modified);
  EXPECT_EQ(got->body, served_);
}

TEST_F(FetchTest, WrongPinIsRefused) {
  Sha256Digest wrong = spki_sha256(make_certificate(dir_, "other"));
  FetchOptions o = options();
  o.pin = "sha256:" + base64_encode(wrong);
  auto got = fetch(o);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::crypto) << got.error().message;
}

TEST_F(FetchTest, RightPinIsAcceptedWithoutATrustedChain) {
  Sha256Digest digest = spki_sha256(cert_);
  for (const std::string& pin : {"sha256:" + base64_encode(digest), "sha256:" + hex(digest)}) {
    FetchOptions o = options();
    o.ca_bundle.clear();  // the system store does not know this self-signed certificate; the pin does
    o.pin = pin;
    auto got = fetch(o);
    ASSERT_TRUE(got.ok()) << pin << ": " << got.error().message;
    EXPECT_EQ(got->body, served_);
  }
}

TEST_F(FetchTest, MalformedPinIsAConfigError) {
  FetchOptions o = options();
  o.pin = "sha256:abc";
  auto got = fetch(o);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::config) << got.error().message;
}

TEST_F(FetchTest, CertificateOutsideTheTrustStoreIsRefused) {
  FetchOptions o = options();
  o.ca_bundle = make_certificate(dir_, "unrelated");
  auto got = fetch(o);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::crypto) << got.error().message;
}

TEST_F(FetchTest, ServerThatNeverAnswersFailsWithinTheTimeout) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  FetchOptions o = options();
  o.url = url(silent.port());
  o.connect_timeout = 1s;
  o.total_timeout = 2s;
  auto started = Clock::now();
  auto got = fetch(o);
  auto took = Clock::now() - started;
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::io);
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 5s);
}

TEST_F(FetchTest, HttpUrlIsRefused) {
  FetchOptions o = options();
  o.url = "http://127.0.0.1:" + std::to_string(server_->port()) + std::string(kExportPath);
  auto got = fetch(o);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::config);
  EXPECT_NE(got.error().message.find("https://"), std::string::npos);
}

TEST_F(FetchTest, AnswerOverTheSizeLimitIsRefused) {
  serve(std::string(4096, '#'));
  FetchOptions o = options();
  o.max_bytes = 4095;
  auto got = fetch(o);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::limit) << got.error().message;
  o.max_bytes = 4096;
  EXPECT_TRUE(fetch(o).ok());
}

TEST_F(FetchTest, RedirectIsNotFollowed) {
  // Without -WWW, s_server sends its standard input to the client verbatim.
  std::string answer = dir_.file("redirect.http");
  testing::write_file(
      answer,
      "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/export\r\nContent-Length: 0\r\n\r\n");
  TlsServer redirecting(dir_.path(), cert_, dir_.file("server.key"), {"-naccept", "1"}, answer);
  ASSERT_NE(redirecting.port(), 0);
  FetchOptions o = options();
  o.url = url(redirecting.port());
  auto got = fetch(o);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find("HTTP 302"), std::string::npos) << got.error().message;
  EXPECT_NE(got.error().message.find("not followed"), std::string::npos);
}

TEST_F(FetchTest, BodyCutShortIsAnError) {
  // A Content-Length the server does not deliver: a truncated stream must
  // never pass for a whole one.
  std::string answer = dir_.file("short.http");
  testing::write_file(answer, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nkind: lock\n");
  TlsServer cut(dir_.path(), cert_, dir_.file("server.key"), {"-naccept", "1"}, answer);
  ASSERT_NE(cut.port(), 0);
  FetchOptions o = options();
  o.url = url(cut.port());
  o.total_timeout = 5s;  // should s_server hold the connection open instead
  auto got = fetch(o);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::io) << got.error().message;
}

}  // namespace
}  // namespace machineid
