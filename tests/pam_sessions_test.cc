// Sessions the daemon ends (SPEC §7, "Sessions"): real sshd logins under
// pam_wrapper with the module's account and session lines, left running
// while a lock lands, the certificate's time runs out, an operator kills
// them, or the daemon restarts.
//
// The delays printed ("ended N ms after ...") are for the record; nothing
// here asserts a time.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <ctime>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "machineid/client.h"
#include "machineid/protocol.h"
#include "pam_wrapper_env.h"
#include "sshd_harness.h"

namespace machineid {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using testing::CertSpec;
using testing::HarnessOptions;
using testing::Process;
using testing::SshdHarness;
using testing::TempDir;

constexpr const char* kModule = MID_PAM_MODULE;
// Far longer than any end takes; only a session that never ends meets it.
constexpr auto kPatience = 20s;

std::string field(const json& event, const char* name) {
  auto it = event.find(name);
  return it != event.end() && it->is_string() ? it->get<std::string>() : "";
}

template <class Predicate>
bool eventually(Predicate holds) {
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!holds()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// The processes whose command line is exactly `words` (NUL-separated).
std::vector<pid_t> processes_running(const std::string& words) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (testing::read_file(entry.path().string() + "/cmdline") == words) pids.push_back(std::stoi(name));
  }
  return pids;
}
bool process_running(const std::string& words) { return !processes_running(words).empty(); }

class PamSessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: sshd runs only a root-owned AuthorizedPrincipalsCommand";
  }
  void TearDown() override {
    if (HasFailure() && h_ != nullptr) std::cerr << h_->logs_since({});
    h_.reset();
    // A session a test left open outlives sshd (its command leads a session
    // of its own): nothing of this test may linger into the next.
    for (const std::string& command : commands_)
      for (pid_t pid : processes_running(command)) kill(pid, SIGKILL);
  }

  void start(const std::string& daemon_toml = "") {
    HarnessOptions options;
    options.sshd_config = {"UsePAM yes"};
    options.sshd_env = testing::pam_wrapper_env(services_.path());
    options.daemon_toml = daemon_toml;
    h_ = std::make_unique<SshdHarness>(MID_BIN_DIR, options);
    h_->write_role("ci", testing::kCiRole);
    std::string module = std::string(kModule) + " socket=" + h_->socket();
    testing::write_file(services_.file("sshd"), "auth required pam_permit.so\n"
                                                "account required " + module + "\n"
                                                "account required pam_permit.so\n"
                                                "password required pam_deny.so\n"
                                                "session required pam_permit.so\n"
                                                "session optional " + module + "\n");
    ASSERT_TRUE(h_->start());
    key_ = h_->keygen().make_key("user");
    mark_ = h_->audit_mark();
  }

  std::string bot(const std::string& name, const std::string& validity = "-1m:+1h") {
    CertSpec spec{.ca = h_->ca(), .key = key_ + ".pub"};
    spec.identity = "bot-" + name;
    spec.validity = validity;
    spec.options = {R"(extension:teleport-roles={"version":"v1","roles":["ci"]})",
                    "extension:impersonator=bot-" + name};
    return h_->keygen().sign(spec);
  }

  // An ssh login running `seconds` of sleep in the background, once its
  // session is open (session.open audited) and the command runs: an end
  // must not land while root's shell is still starting (killed there, its
  // start-up files could leave a lock behind for the next root login).
  void open_session(Process& ssh, const std::string& cert, const std::string& sleep_seconds) {
    ASSERT_TRUE(ssh.start(h_->ssh_argv(key_, cert, "root", "sleep " + sleep_seconds), h_->file("bg.out"),
                          h_->file("bg.err")));
    ASSERT_TRUE(wait_for_event("session.open")) << testing::read_file(h_->file("bg.err"));
    std::string command = "sleep";
    command += '\0' + sleep_seconds + '\0';
    commands_.push_back(command);
    ASSERT_TRUE(eventually([&] { return process_running(command); })) << testing::read_file(h_->file("bg.err"));
  }

  std::vector<json> events() const {
    std::vector<json> out;
    for (const auto& line : h_->audit_lines_since(mark_)) out.push_back(json::parse(line));
    return out;
  }
  std::optional<json> event(const std::string& name) const {
    for (const auto& e : events())
      if (field(e, "event") == name) return e;
    return std::nullopt;
  }
  bool wait_for_event(const std::string& name) const {
    return eventually([&] { return event(name).has_value(); });
  }

  // The daemon watches its files and reloads 200 ms after a change; a test
  // that logs in right after writing one asks for the reload itself, which
  // answers once the new policy is in force.
  bool reloaded() const {
    return testing::run({std::string(MID_BIN_DIR) + "/machineidctl", "reload", "--socket", h_->socket()}).status == 0;
  }

  // machineidctl sessions --json.
  json sessions() const {
    auto r = testing::run({std::string(MID_BIN_DIR) + "/machineidctl", "sessions", "--socket", h_->socket(), "--json"});
    if (r.status != 0) return json();
    return json::parse(r.output, nullptr, false);
  }

  // Waits for the background ssh to end; prints how long after `since` it
  // did, for the record.
  bool ended(Process& ssh, std::chrono::steady_clock::time_point since, const char* after) const {
    bool done = ssh.wait_exit(kPatience);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since);
    std::cout << "[ measured ] the session ended " << ms.count() << " ms after " << after << "\n";
    return done;
  }

  TempDir services_;
  std::unique_ptr<SshdHarness> h_;
  std::vector<std::string> commands_;  // the background sessions' commands
  std::string key_;
  std::uintmax_t mark_ = 0;
};

TEST_F(PamSessionsTest, OpenSessionIsListedWithItsCertificateIdentity) {
  start();
  Process ssh;
  open_session(ssh, bot("ci"), "3011");
  json list = sessions();
  ASSERT_TRUE(list.contains("sessions")) << list.dump();
  ASSERT_EQ(list["sessions"].size(), 1u) << list.dump();
  const json& s = list["sessions"][0];
  EXPECT_EQ(s["login"], "root");
  EXPECT_EQ(s["uid"], 0);
  EXPECT_EQ(s["key_id"], "bot-ci");
  EXPECT_EQ(s["bot"], "ci");
  EXPECT_EQ(s["roles"], "ci");
  EXPECT_EQ(s["source"], "127.0.0.1");
  EXPECT_EQ(s["id"], field(*event("session.open"), "correlation_id"));
  EXPECT_TRUE(s["ends_at"].is_null()) << "no role asks for disconnect_expired_cert";
  // sshd's process for the connection, running as root.
  struct stat st {};
  ASSERT_EQ(stat(("/proc/" + std::to_string(s["pid"].get<int>())).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
}

TEST_F(PamSessionsTest, LockLandingMidSessionEndsItAndWhatItRuns) {
  start();
  Process ssh;
  open_session(ssh, bot("ci"), "3012");
  const std::string command("sleep\0" "3012\0", 11);
  ASSERT_TRUE(eventually([&] { return process_running(command); }));
  auto landed = std::chrono::steady_clock::now();
  h_->write_lock("incident", "kind: lock\nversion: v2\nmetadata:\n  name: incident-7\n"
                             "spec:\n  message: \"rotating the CI keys\"\n  target:\n    user: bot-ci\n");
  ASSERT_TRUE(ended(ssh, landed, "the lock file landed")) << h_->logs_since({});
  auto terminated = event("session.terminate");
  ASSERT_TRUE(terminated) << "no session.terminate";
  EXPECT_EQ(field(*terminated, "reason"), "locked");
  std::string message = field(*terminated, "message");
  EXPECT_NE(message.find("incident-7"), std::string::npos) << message;
  EXPECT_NE(message.find("rotating the CI keys"), std::string::npos) << message;
  EXPECT_EQ(field(*terminated, "correlation_id"), field(*event("session.open"), "correlation_id"));
  // The remote command went with the session, and the table forgot it.
  EXPECT_TRUE(eventually([&] { return !process_running(command); }));
  EXPECT_TRUE(eventually([&] { return sessions()["sessions"].empty(); })) << sessions().dump();
}

// A daemon stopped within the grace after SIGHUP still sends the SIGKILL:
// an end it began is never left half done.
TEST_F(PamSessionsTest, StoppingDaemonFinishesTheEndsItBegan) {
  start();
  Process ssh;
  open_session(ssh, bot("ci"), "3018");
  const std::string command("sleep\0" "3018\0", 11);
  ASSERT_TRUE(eventually([&] { return process_running(command); }));
  h_->write_lock("incident", "kind: lock\nversion: v2\nmetadata:\n  name: incident-8\nspec:\n  target:\n    user: bot-ci\n");
  ASSERT_TRUE(ssh.wait_exit(kPatience));
  h_->stop_daemon();
  EXPECT_TRUE(eventually([&] { return !process_running(command); }));
}

TEST_F(PamSessionsTest, DisconnectExpiredCertEndsTheSessionWhenTheCertificateExpires) {
  start();
  h_->write_role("ci", std::string(testing::kCiRole) + "  options:\n    disconnect_expired_cert: true\n");
  ASSERT_TRUE(reloaded());
  // Long enough to log in on a loaded machine, short enough to wait for.
  std::string cert = bot("ci", "-1m:+6s");
  Process ssh;
  auto began = std::chrono::steady_clock::now();
  open_session(ssh, cert, "3013");
  EXPECT_FALSE(sessions()["sessions"][0]["ends_at"].is_null());
  ASSERT_TRUE(ended(ssh, began, "the login began (the certificate had 6 s left)"));
  auto terminated = event("session.terminate");
  ASSERT_TRUE(terminated);
  EXPECT_EQ(field(*terminated, "reason"), "expired");
}

TEST_F(PamSessionsTest, RevokedCertificateEndsItsSession) {
  start();
  Process ssh;
  open_session(ssh, bot("ci"), "3014");
  auto landed = std::chrono::steady_clock::now();
  h_->write_krl("id: bot-ci");
  ASSERT_TRUE(ended(ssh, landed, "the KRL landed"));
  auto terminated = event("session.terminate");
  ASSERT_TRUE(terminated);
  EXPECT_EQ(field(*terminated, "reason"), "revoked");
}

TEST_F(PamSessionsTest, WithTerminateOnRevokeOffARevocationOnlyStopsNewLogins) {
  start("");
  // The harness writes [policy]; the switch is set by rewriting the config.
  std::string toml = testing::read_file(h_->file("etc/verifierd.toml"));
  toml.replace(toml.find("[policy]\n"), 9, "[policy]\nterminate_on_revoke = false\n");
  testing::write_file(h_->file("etc/verifierd.toml"), toml);
  h_->stop_daemon();
  ASSERT_TRUE(h_->start_daemon());
  Process ssh;
  open_session(ssh, bot("ci"), "3015");
  h_->write_krl("id: bot-ci");
  ASSERT_TRUE(reloaded());
  // The next login is refused: the new KRL is in force...
  ASSERT_NE(h_->ssh(key_, bot("ci"), "root", "true").status, 0);
  // ...and the open session still runs.
  EXPECT_TRUE(ssh.running());
  EXPECT_FALSE(event("session.terminate"));
}

// Teleport's strict locking ends every interaction once its view of the
// locks is stale: here, once machineid-sync's lock source has not synced
// for locks_max_age (its state file says when it last did).
TEST_F(PamSessionsTest, AStrictNodeEndsSessionsOnceItsLockSourceIsStale) {
  std::string sync = services_.file("sync");
  ASSERT_EQ(mkdir(sync.c_str(), 0755), 0);
  auto synced_now = [&] {
    testing::write_file(sync + "/state.json", "{\"version\":1,\"sources\":{\"locks\":{\"url\":\"x\",\"failures\":0,"
                                              "\"last_success\":" + std::to_string(std::time(nullptr)) + "}}}\n");
  };
  synced_now();
  start("[sync]\ndir = \"" + sync + "\"\nlocks_url = \"https://127.0.0.1:1/locks.yaml\"\nlocks_interval = \"1s\"\n"
        "locks_max_age = \"5s\"\n");
  synced_now();
  Process ssh;
  open_session(ssh, bot("ci"), "3019");
  auto landed = std::chrono::steady_clock::now();
  ASSERT_TRUE(ended(ssh, landed, "the session opened (the lock source stale 5 s after its last sync)"));
  auto terminated = event("session.terminate");
  ASSERT_TRUE(terminated);
  EXPECT_EQ(field(*terminated, "reason"), "locked");
  EXPECT_NE(field(*terminated, "message").find("lock source last synced"), std::string::npos)
      << terminated->dump();
  // And the next login is refused until it syncs again.
  EXPECT_NE(h_->ssh(key_, bot("ci"), "root", "true").status, 0);
}

TEST_F(PamSessionsTest, RestartedDaemonKeepsItsSessionsAndStillEndsThem) {
  start();
  Process ssh;
  open_session(ssh, bot("ci"), "3016");
  std::string id = sessions()["sessions"][0]["id"];
  h_->stop_daemon();
  ASSERT_TRUE(h_->start_daemon());
  json list = sessions();
  ASSERT_EQ(list["sessions"].size(), 1u) << list.dump();
  EXPECT_EQ(list["sessions"][0]["id"], id);

  auto table = testing::run({std::string(MID_BIN_DIR) + "/machineidctl", "sessions", "--socket", h_->socket()});
  EXPECT_EQ(table.status, 0);
  EXPECT_NE(table.output.find(id), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("127.0.0.1"), std::string::npos) << table.output;

  auto landed = std::chrono::steady_clock::now();
  auto killed = testing::run({std::string(MID_BIN_DIR) + "/machineidctl", "sessions", "--socket", h_->socket(),
                              "--kill=" + id});
  ASSERT_EQ(killed.status, 0) << killed.output;
  ASSERT_TRUE(ended(ssh, landed, "machineidctl sessions --kill"));
  auto terminated = event("session.terminate");
  ASSERT_TRUE(terminated);
  EXPECT_EQ(field(*terminated, "reason"), "admin");
}

TEST_F(PamSessionsTest, SessionThatEndedWhileTheDaemonWasDownIsClosedAtStart) {
  start();
  Process ssh;
  open_session(ssh, bot("ci"), "3017");
  std::string id = sessions()["sessions"][0]["id"];
  h_->stop_daemon();
  ssh.stop();  // sshd's PAM close finds no daemon
  ASSERT_TRUE(h_->start_daemon());
  EXPECT_TRUE(sessions()["sessions"].empty()) << sessions().dump();
  ASSERT_TRUE(wait_for_event("session.close"));
  auto closed = event("session.close");
  EXPECT_EQ(field(*closed, "correlation_id"), id);
  EXPECT_NE(field(*closed, "message").find("session closed"), std::string::npos) << closed->dump();
}

TEST_F(PamSessionsTest, UnknownSessionCannotBeKilledAndOnlyRootMayKill) {
  start();
  auto r = testing::run({std::string(MID_BIN_DIR) + "/machineidctl", "sessions", "--socket", h_->socket(), "--kill",
                         "0123456789abcdef01234567"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("no open session"), std::string::npos) << r.output;
  // The client user (nobody, in the harness) may list but not end.
  auto as_nobody = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                               std::string(MID_BIN_DIR) + "/machineidctl", "sessions", "--socket", h_->socket()});
    return testing::run(argv);
  };
  EXPECT_EQ(as_nobody({}).status, 0);
  r = as_nobody({"--kill", "0123456789abcdef01234567"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("only root may end sessions"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace machineid
