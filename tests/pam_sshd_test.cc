// pam_machineid.so in a real sshd (SPEC §6, §7): sshd runs under
// pam_wrapper, which makes it read the tests' own "sshd" service instead of
// /etc/pam.d/sshd, with "account required" and "session optional" lines
// for the module as the SPEC has them.
//
// sshd shows PAM's account check every method that completed the login
// but the last (its monitor records that one afterwards), so with the
// SPEC's public-key-only logins the certificate reaches the module at
// session open; only a chain such as publickey,keyboard-interactive:pam
// lets the account check see it, and refuse.
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "pam_wrapper_env.h"
#include "sshd_harness.h"

namespace machineid {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace std::string_literals;
using nlohmann::json;
using testing::CertSpec;
using testing::CommandResult;
using testing::HarnessOptions;
using testing::Process;
using testing::SshdHarness;
using testing::TempDir;

constexpr const char* kModule = MID_PAM_MODULE;
// sshd closes the PAM session once the client has gone.
constexpr auto kCloseWait = 5s;
constexpr auto kSshTimeout = 30s;

using testing::kCiRole;
constexpr const char* kLockedBot = R"(kind: lock
version: v2
metadata:
  name: bot-locked
spec:
  target:
    user: bot-locked
)";

// A directory under /run that sshd's StrictModes accepts for an
// AuthorizedPrincipalsFile: root's, and writable by nobody else.
class RunDir {
 public:
  RunDir() {
    std::string tmpl = "/run/machineid-pam-test.XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
    chmod(path_.c_str(), 0755);
  }
  ~RunDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// What sshd needs in its environment to run under pam_wrapper.
std::vector<std::string> pam_wrapper_env(const std::string& service_dir) {
  std::vector<std::string> env = {"PAM_WRAPPER=1", "PAM_WRAPPER_SERVICE_DIR=" + service_dir};
#if defined(__SANITIZE_ADDRESS__)
  // The module carries ASan; sshd does not, so the runtime this test runs
  // with comes first, and sshd's own leaks are not ours to report.
  Dl_info info{};
  void* asan = dlsym(RTLD_DEFAULT, "__asan_init");
  std::string runtime = asan != nullptr && dladdr(asan, &info) != 0 ? info.dli_fname : "";
  env.push_back("LD_PRELOAD=" + runtime + " libpam_wrapper.so");
  env.push_back("ASAN_OPTIONS=detect_leaks=0");
  env.insert(env.end(), testing::kNoDeepBind.begin(), testing::kNoDeepBind.end());
#else
  env.push_back("LD_PRELOAD=libpam_wrapper.so");
#endif
  return env;
}

std::string field(const json& event, const char* name) {
  auto it = event.find(name);
  return it != event.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.status) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

// `env` output as a map.
std::map<std::string, std::string> environment(const std::string& out) {
  std::map<std::string, std::string> env;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (auto eq = line.find('='); eq != std::string::npos)
      env[line.substr(0, eq)] = line.substr(eq + 1);
  return env;
}

// How sshd finds the login's principals and which methods it asks for.
enum class Wiring {
  principals_command,  // the SPEC's drop-in
  principals_file,     // AuthorizedPrincipalsFile: no daemon before PAM
  file_then_kbdint,    // ... and AuthenticationMethods publickey,keyboard-interactive:pam
};

// One sshd with UsePAM and our service.
class PamSshdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0)
      GTEST_SKIP() << "needs root: sshd runs only a root-owned AuthorizedPrincipalsCommand";
  }
  void TearDown() override {
    if (HasFailure() && h_ != nullptr) std::cerr << h_->logs_since({});
  }

  void start(Wiring wiring) {
    HarnessOptions options;
    options.sshd_config = {"UsePAM yes"};
    if (wiring != Wiring::principals_command) {
      testing::write_file(run_.file("principals"), "root\n");
      options.sshd_config.insert(options.sshd_config.end(),
                                 {"AuthorizedPrincipalsCommand none",
                                  "AuthorizedPrincipalsFile " + run_.file("principals")});
    }
    // keyboard-interactive counts as a password to PermitRootLogin.
    if (wiring == Wiring::file_then_kbdint)
      options.sshd_config.insert(options.sshd_config.end(),
                                 {"KbdInteractiveAuthentication yes", "PermitRootLogin yes",
                                  "AuthenticationMethods publickey,keyboard-interactive:pam"});
    options.sshd_env = pam_wrapper_env(services_.path());
    h_ = std::make_unique<SshdHarness>(MID_BIN_DIR, options);
    h_->write_role("ci", kCiRole);
    h_->write_lock("bot-locked", kLockedBot);
    // pam_wrapper copies the service directory as each sshd process starts.
    // The auth stack answers keyboard-interactive without a question.
    std::string module = std::string(kModule) + " socket=" + h_->socket();
    testing::write_file(services_.file("sshd"),
                        "auth required pam_permit.so\n"
                        "account required " +
                            module +
                            "\n"
                            "account required pam_permit.so\n"
                            "password required pam_deny.so\n"
                            "session required pam_permit.so\n"
                            "session optional " +
                            module + "\n");
    ASSERT_TRUE(h_->start());
    key_ = h_->keygen().make_key("user");
    mark_ = h_->audit_mark();
  }

  std::string bot(const std::string& name) {
    CertSpec spec{.ca = h_->ca(), .key = key_ + ".pub"};
    spec.identity = "bot-" + name;
    spec.options = {R"(extension:teleport-roles={"version":"v1","roles":["ci"]})",
                    "extension:impersonator=bot-" + name};
    return h_->keygen().sign(spec);
  }

  // ssh as the harness runs it, but willing to go on to keyboard-interactive
  // (which asks nothing) after the certificate: BatchMode would not.
  CommandResult ssh_then_kbdint(const std::string& cert, const std::string& command) {
    std::vector<std::string> argv = {
        "/usr/bin/ssh", "-F", "/dev/null", "-i", key_, "-p", std::to_string(h_->port())};
    for (const std::string& option :
         {"CertificateFile=" + cert, "IdentitiesOnly=yes"s, "IdentityAgent=none"s,
          "StrictHostKeyChecking=no"s, "UserKnownHostsFile=/dev/null"s, "LogLevel=ERROR"s,
          "ConnectTimeout=5"s, "PreferredAuthentications=publickey,keyboard-interactive"s})
      argv.insert(argv.end(), {"-o", option});
    argv.insert(argv.end(), {"root@127.0.0.1", command});
    std::string out = run_.file("ssh.out"), err = run_.file("ssh.err");
    unlink(out.c_str());
    unlink(err.c_str());
    CommandResult result;
    Process ssh;
    if (ssh.start(argv, out, err)) {
      bool finished = ssh.wait_exit(kSshTimeout);
      result.status = ssh.stop();
      if (!finished) result.status = -1;
    }
    result.out = testing::read_file(out);
    result.err = testing::read_file(err);
    return result;
  }

  // The audit events since start(), once `done` holds for them or
  // kCloseWait has passed.
  std::vector<json> audit_until(bool (*done)(const std::vector<json>&)) const {
    auto deadline = std::chrono::steady_clock::now() + kCloseWait;
    for (;;) {
      std::vector<json> events;
      for (const auto& line : h_->audit_lines_since(mark_)) events.push_back(json::parse(line));
      if (done(events) || std::chrono::steady_clock::now() >= deadline) return events;
      std::this_thread::sleep_for(20ms);
    }
  }
  static bool closed(const std::vector<json>& events) {
    for (const auto& e : events)
      if (field(e, "event") == "session.close") return true;
    return false;
  }
  static bool any(const std::vector<json>& events) { return !events.empty(); }

  RunDir run_;
  TempDir services_;
  std::unique_ptr<SshdHarness> h_;
  std::string key_;
  std::uintmax_t mark_ = 0;
};

TEST_F(PamSshdTest, SessionSeesTeleportVariablesAndIsAudited) {
  start(Wiring::principals_file);
  CommandResult r = h_->ssh(key_, bot("ci"), "root", "env");
  ASSERT_EQ(r.status, 0) << describe(r);
  auto env = environment(r.out);
  EXPECT_EQ(env["TELEPORT_USERNAME"], "bot-ci") << r.out;
  EXPECT_EQ(env["TELEPORT_LOGIN"], "root");
  EXPECT_EQ(env["TELEPORT_ROLES"], "ci");
  EXPECT_EQ(env["MACHINEID_BOT"], "ci");

  auto events = audit_until(closed);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(field(events[0], "event"), "login.allow");
  EXPECT_EQ(field(events[1], "event"), "session.open");
  EXPECT_EQ(field(events[2], "event"), "session.close");
  for (const auto& e : events) {
    EXPECT_EQ(field(e, "correlation_id"), field(events[0], "correlation_id")) << e.dump();
    EXPECT_EQ(field(e, "key_id"), "bot-ci");
    EXPECT_EQ(field(e, "source"), "127.0.0.1");
  }
  EXPECT_TRUE(events[2].contains("duration"));
}

// One connection, one decision: the helper's decision is the connection's;
// PAM's re-check in the same connection (with the client's address) agrees
// and adds no event, and the session carries the same correlation id.
TEST_F(PamSshdTest, WithThePrincipalsCommandTheConnectionHasOneDecision) {
  start(Wiring::principals_command);
  CommandResult r = h_->ssh(key_, bot("ci"), "root", "env");
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(environment(r.out)["TELEPORT_USERNAME"], "bot-ci") << r.out;

  auto events = audit_until(closed);
  int decisions = 0, sessions = 0;
  std::string id;
  for (const auto& e : events) {
    if (field(e, "event") == "login.allow") {
      ++decisions;
      id = field(e, "correlation_id");
    }
  }
  EXPECT_EQ(decisions, 1);
  ASSERT_FALSE(id.empty());
  for (const auto& e : events) {
    EXPECT_EQ(field(e, "correlation_id"), id) << e.dump();
    sessions += field(e, "event").starts_with("session.");
  }
  EXPECT_EQ(sessions, 2);

  // A second connection with the same certificate is a decision of its own.
  auto mark = h_->audit_mark();
  ASSERT_EQ(h_->ssh(key_, bot("ci"), "root", "true").status, 0);
  std::string second;
  for (int i = 0; i < 100 && second.empty(); ++i) {
    for (const auto& line : h_->audit_lines_since(mark)) {
      auto e = nlohmann::json::parse(line, nullptr, false);
      if (!e.is_discarded() && field(e, "event") == "login.allow") second = field(e, "correlation_id");
    }
    if (second.empty()) usleep(30000);
  }
  EXPECT_FALSE(second.empty());
  EXPECT_NE(second, id);
}

TEST_F(PamSshdTest, LockedCertificateThePrincipalsFileAcceptsIsRefusedByTheAccountCheck) {
  start(Wiring::file_then_kbdint);
  // The principals file lets root in: only the account check can refuse.
  CommandResult allowed = ssh_then_kbdint(bot("ci"), "env");
  ASSERT_EQ(allowed.status, 0) << describe(allowed);
  EXPECT_EQ(environment(allowed.out)["TELEPORT_USERNAME"], "bot-ci");
  // sshd closes that session after ssh has gone; its event must not count
  // as the next login's.
  ASSERT_TRUE(closed(audit_until(closed)));

  mark_ = h_->audit_mark();
  CommandResult r = ssh_then_kbdint(bot("locked"), "echo in");
  EXPECT_EQ(r.status, 255) << describe(r);
  EXPECT_EQ(r.out, "");
  auto events = audit_until(any);
  ASSERT_EQ(events.size(), 1u) << "the account check's decision, and no session";
  EXPECT_EQ(field(events[0], "event"), "login.deny");
  EXPECT_EQ(field(events[0], "reason"), "locked");
  EXPECT_EQ(field(events[0], "source"), "127.0.0.1");  // PAM's question: the helper has no source
  // sshd runs the account check at the end of keyboard-interactive.
  EXPECT_NE(h_->logs_since({}).find("Failed keyboard-interactive/pam for root"), std::string::npos);
}

TEST_F(PamSshdTest, DaemonDownRefusesTheAccountCheck) {
  start(Wiring::file_then_kbdint);
  h_->stop_daemon();
  CommandResult r = ssh_then_kbdint(bot("ci"), "echo in");
  EXPECT_EQ(r.status, 255) << describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(h_->logs_since({}).find("denying certificate login as 'root': no decision"),
            std::string::npos);
}

TEST_F(PamSshdTest, WithPublicKeyAloneALockedCertificateGetsNoSessionOfOurs) {
  // The SPEC's methods with a principals file instead of the command: the
  // account check cannot see the certificate, sshd runs the session (the
  // principals command is the gate of the SPEC's set-up), and the module
  // refuses to open it: no identity exported, no session.open.
  start(Wiring::principals_file);
  CommandResult r = h_->ssh(key_, bot("locked"), "root", "env");
  EXPECT_EQ(environment(r.out).count("TELEPORT_USERNAME"), 0u) << describe(r);
  auto events = audit_until(any);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(field(events[0], "event"), "login.deny");
  EXPECT_EQ(field(events[0], "reason"), "locked");
}

}  // namespace
}  // namespace machineid
