// pam_machineid.so through libpam (SPEC §6, §7): pam_driver runs account
// and session stacks from the tests' own service files under pam_wrapper,
// against a real machineid-verifierd, with certificates from the real
// ssh-keygen put into SSH_AUTH_INFO_0 the way sshd puts them.
#include <security/pam_appl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "machineid/mid_authinfo.h"
#include "fixtures.h"
#include "pam_wrapper_env.h"
#include "sshd_harness.h"

namespace machineid {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using testing::CertSpec;
using testing::Process;
using testing::SshdHarness;
using testing::TempDir;

constexpr const char* kModule = MID_PAM_MODULE;
constexpr const char* kDriver = MID_PAM_DRIVER;
constexpr const char* kValgrind = "/usr/bin/valgrind";
constexpr auto kDriverTimeout = 60s;
// 1000 cycles take seconds under valgrind; slow machines may use most of
// the 300 s CTest gives a test.
constexpr auto kValgrindTimeout = 280s;
constexpr int kLeakCycles = 1000;
// What the probe service returns when the module returned PAM_IGNORE. The
// stack needs a sentinel to tell: libpam answers PAM_PERM_DENIED when every
// module of a stack ignored the call.
constexpr int kIgnored = PAM_BAD_ITEM;
// A pam_driver step: pam_putenv of what follows.
const std::string kAuthInfo = "SSH_AUTH_INFO_0=";

// The host user the host-user tests log in as, served by nss_wrapper.
constexpr const char* kHostUser = "mid-alice";
constexpr uid_t kHostUid = 61001;

using testing::kCiRole;
// mid-alice as a host user made for the grant.
constexpr const char* kHostsRole = R"(kind: role
version: v7
metadata:
  name: hosts
spec:
  options:
    create_host_user_mode: keep
  allow:
    logins: [mid-alice]
    node_labels:
      env: prod
)";

std::string lock_on_user(const std::string& user) {
  return "kind: lock\nversion: v2\nmetadata:\n  name: " + user +
         "\nspec:\n  target:\n    user: " + user + "\n  message: locked by the test\n";
}

// A Teleport bot certificate (key id "bot-<name>") with `roles` (a JSON
// list) and one principal.
CertSpec bot_cert(const std::string& ca, const std::string& key, const std::string& name,
                  const std::string& principal = "root", const std::string& roles = R"(["ci"])") {
  CertSpec spec{.ca = ca, .key = key + ".pub"};
  spec.identity = "bot-" + name;
  spec.principals = {principal};
  spec.options = {R"(extension:teleport-roles={"version":"v1","roles":)" + roles + "}",
                  "extension:impersonator=bot-" + name};
  return spec;
}

// The SSH_AUTH_INFO_0 line sshd writes for a login with `cert`.
std::string auth_info(const std::string& cert) {
  std::istringstream in(testing::read_file(cert));
  std::string type, base64;
  in >> type >> base64;
  return "publickey " + type + " " + base64 + "\n";
}

std::string field(const json& event, const char* name) {
  auto it = event.find(name);
  return it != event.end() && it->is_string() ? it->get<std::string>() : "";
}

// What one pam_driver run printed and returned.
struct DriverRun {
  int status = -1;
  std::vector<std::pair<std::string, int>> codes;  // step, PAM code
  std::map<std::string, std::string> env;
  std::string out, err;

  // The code the first `step` returned; -1 when it did not run.
  int code(const std::string& step) const {
    for (const auto& [s, c] : codes)
      if (s == step) return c;
    return -1;
  }
  bool logged(const std::string& text) const { return err.find(text) != std::string::npos; }
  std::string describe() const {
    return "exit " + std::to_string(status) + "\nstdout:\n" + out + "stderr:\n" + err;
  }
};

// A daemon shared by the suite, service files, and pam_driver runs.
class PamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    shared_ = std::make_unique<SshdHarness>(MID_BIN_DIR);
    shared_->write_role("ci", kCiRole);
    shared_->write_role("hosts", kHostsRole);
    shared_->write_lock("bot-locked", lock_on_user("bot-locked"));
    auto started = shared_->start_daemon();
    start_error_ = started ? "" : started.message();
    key_ = shared_->keygen().make_key("user");
  }
  static void TearDownTestSuite() { shared_.reset(); }

  void SetUp() override {
    // The daemon takes session events from root alone (PAM runs in sshd).
    if (geteuid() != 0) GTEST_SKIP() << "needs root: the daemon records sessions for root only";
    ASSERT_TRUE(start_error_.empty()) << start_error_;
    h_ = shared_.get();
    mark_ = h_->audit_mark();
    // The standard stack: our lines alone, so their failures are the stack's.
    service("machineid", "account required " + module() + "\nsession required " + module() + "\n");
  }

  std::string sign(const CertSpec& spec) { return h_->keygen().sign(spec); }
  std::string bot(const std::string& name, const std::string& principal = "root",
                  const std::string& roles = R"(["ci"])") {
    return sign(bot_cert(h_->ca(), key_, name, principal, roles));
  }
  // The module's path and options for a service line.
  std::string module(const std::string& options = "") const {
    return std::string(kModule) + " socket=" + socket_ + (options.empty() ? "" : " " + options);
  }
  void service(const std::string& name, const std::string& lines) {
    testing::write_file(services_.file(name), lines);
  }

  // Runs pam_driver with `args` under pam_wrapper (and nss_wrapper after
  // use_host_user()), behind `prefix` (valgrind) if any.
  DriverRun drive(const std::vector<std::string>& args, const std::vector<std::string>& prefix = {},
                  std::chrono::seconds timeout = kDriverTimeout) {
    std::vector<std::string> argv = prefix;
    argv.push_back(kDriver);
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env = {"PAM_WRAPPER=1", "PAM_WRAPPER_SERVICE_DIR=" + services_.path(),
                                    // pam_syslog lines, to stderr, down to LOG_INFO.
                                    "PAM_WRAPPER_DEBUGLEVEL=2"};
    std::string preload = "libpam_wrapper.so";
    if (nss_) {
      preload += " libnss_wrapper.so";
      env.push_back("NSS_WRAPPER_PASSWD=" + work_.file("passwd"));
      env.push_back("NSS_WRAPPER_GROUP=" + work_.file("group"));
    }
    env.push_back("LD_PRELOAD=" + preload);
    // ASan is content to come after a preloaded library.
    if (testing::kSanitized) {
      env.insert(env.end(), testing::kNoDeepBind.begin(), testing::kNoDeepBind.end());
      env.push_back("ASAN_OPTIONS=verify_asan_link_order=0");
    }

    DriverRun run;
    std::string out = work_.file("driver.out"), err = work_.file("driver.err");
    unlink(out.c_str());
    unlink(err.c_str());
    Process driver;
    if (driver.start(argv, out, err, env)) {
      bool finished = driver.wait_exit(timeout);
      run.status = driver.stop();
      if (!finished) run.status = -1;
    }
    run.out = testing::read_file(out);
    run.err = testing::read_file(err);
    std::istringstream lines(run.out);
    for (std::string step, rest; lines >> step && std::getline(lines >> std::ws, rest);) {
      if (step == "env") {
        auto eq = rest.find('=');
        run.env[rest.substr(0, eq)] = rest.substr(eq + 1);
      } else {
        run.codes.emplace_back(step, std::stoi(rest));
      }
    }
    return run;
  }
  // A login through `service` as `user` from 127.0.0.1 whose SSH_AUTH_INFO_0
  // shows `cert` (none: "") from the start, as sshd shows the earlier
  // methods of an AuthenticationMethods chain to the account check.
  DriverRun login(const std::string& service, const std::string& user, const std::string& cert,
                  const std::vector<std::string>& steps) {
    std::vector<std::string> args = {"--rhost", "127.0.0.1", service, user};
    if (!cert.empty()) args.push_back(kAuthInfo + auth_info(cert));
    args.insert(args.end(), steps.begin(), steps.end());
    return drive(args);
  }
  // A public-key login with `cert` as sshd runs it: account while
  // SSH_AUTH_INFO_0 is still empty, then the session steps once it holds
  // the certificate.
  DriverRun sshd_login(const std::string& service, const std::string& user, const std::string& cert,
                       const std::vector<std::string>& session_steps) {
    std::vector<std::string> steps = {kAuthInfo, "account", kAuthInfo + auth_info(cert)};
    steps.insert(steps.end(), session_steps.begin(), session_steps.end());
    return login(service, user, "", steps);
  }
  // The module's own return for each step, through the "probe" service:
  // its lines with `options` for every function, each followed by a
  // sentinel that turns PAM_IGNORE into kIgnored.
  DriverRun probe(const std::optional<std::string>& authinfo, const std::vector<std::string>& steps,
                  const std::vector<std::string>& options = {}, const std::string& user = "root") {
    std::string line = "[success=done ignore=ignore default=die] " + module();
    for (const auto& o : options) line += " " + o;
    service("probe",
            "auth " + line + "\nauth required pam_debug.so auth=bad_item cred=bad_item\n" +
                "account " + line + "\naccount required pam_debug.so acct=bad_item\n" +
                "password " + line +
                "\npassword required pam_debug.so prechauthtok=bad_item chauthtok=bad_item\n" +
                "session " + line +
                "\nsession required pam_debug.so open_session=bad_item close_session=bad_item\n");
    std::vector<std::string> args = {"--rhost", "127.0.0.1", "probe", user};
    if (authinfo) args.push_back(kAuthInfo + *authinfo);
    args.insert(args.end(), steps.begin(), steps.end());
    return drive(args);
  }

  // Every audit event since the test began.
  std::vector<json> audit() const {
    std::vector<json> events;
    for (const auto& line : h_->audit_lines_since(mark_)) events.push_back(json::parse(line));
    return events;
  }
  std::vector<json> audit(const std::string& event) const {
    std::vector<json> found;
    for (auto& e : audit())
      if (field(e, "event") == event) found.push_back(e);
    return found;
  }

  // nss_wrapper's passwd and group with kHostUser, whose home is under
  // the test's directory.
  std::string use_host_user() {
    nss_ = true;
    std::string home = work_.file("home/") + kHostUser;
    fs::create_directories(work_.file("home"));
    std::string id = std::to_string(kHostUid);
    testing::write_file(work_.file("passwd"), std::string("root:x:0:0:root:/root:/bin/sh\n") +
                                                  kHostUser + ":x:" + id + ":" + id + "::" + home +
                                                  ":/bin/sh\n");
    testing::write_file(work_.file("group"),
                        std::string("root:x:0:\n") + kHostUser + ":x:" + id + ":\n");
    return home;
  }

  void TearDown() override {
    if (HasFailure() && h_ != nullptr) std::cerr << h_->logs_since({});
  }

  static inline std::unique_ptr<SshdHarness> shared_;
  static inline std::string start_error_;
  static inline std::string key_;
  SshdHarness* h_ = nullptr;
  std::uintmax_t mark_ = 0;
  TempDir services_, work_;
  std::string socket_ = shared_ ? shared_->socket() : "";
  bool nss_ = false;
};

// --- account ---------------------------------------------------------------

// The module loads into cron, su, sudo and login: C against libpam and libc
// alone (no C++ runtime, no OpenSSL, no libsodium), exporting only the
// pam_sm_* entry points.
TEST(PamModuleAbi, ModuleNeedsOnlyLibpamAndLibcAndExportsOnlyPamEntryPoints) {
  std::string needed = testing::run_ok({"readelf", "-d", kModule});
  std::istringstream lines(needed);
  std::vector<std::string> libs;
  for (std::string line; std::getline(lines, line);)
    if (line.find("(NEEDED)") != std::string::npos) libs.push_back(line.substr(line.find('[')));
  EXPECT_EQ(libs, (std::vector<std::string>{"[libpam.so.0]", "[libc.so.6]"})) << needed;

  std::istringstream symbols(testing::run_ok({"nm", "-D", "--defined-only", kModule}));
  std::set<std::string> exported;
  for (std::string line; std::getline(symbols, line);) {
    std::string name = line.substr(line.rfind(' ') + 1);
    EXPECT_EQ(name.rfind("pam_sm_", 0), 0u) << "exports " << name;
    exported.insert(name);
  }
  EXPECT_EQ(exported, (std::set<std::string>{"pam_sm_acct_mgmt", "pam_sm_authenticate",
                                             "pam_sm_chauthtok", "pam_sm_close_session",
                                             "pam_sm_open_session", "pam_sm_setcred"}));
  // Nothing of a C++ runtime is even referenced.
  std::string undefined = testing::run_ok({"nm", "-D", "--undefined-only", kModule});
  EXPECT_EQ(undefined.find("_Z"), std::string::npos) << undefined;
  EXPECT_EQ(undefined.find("GLIBCXX"), std::string::npos) << undefined;
  EXPECT_EQ(undefined.find("CXXABI"), std::string::npos) << undefined;
}

TEST_F(PamTest, AllowedCertificatePassesTheAccountCheck) {
  DriverRun r = login("machineid", "root", bot("ci"), {"account"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.code("account"), PAM_SUCCESS) << r.describe();
  auto allowed = audit("login.allow");
  ASSERT_EQ(allowed.size(), 1u);
  EXPECT_EQ(field(allowed[0], "login"), "root");
  EXPECT_EQ(field(allowed[0], "key_id"), "bot-ci");
  EXPECT_EQ(field(allowed[0], "source"), "127.0.0.1");  // PAM_RHOST
}

TEST_F(PamTest, LoginTheCertificateDoesNotNameIsDenied) {
  DriverRun r = login("machineid", "daemon", bot("ci"), {"account"});
  EXPECT_EQ(r.code("account"), PAM_PERM_DENIED) << r.describe();
  auto denied = audit("login.deny");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(field(denied[0], "reason"), "principal");
}

TEST_F(PamTest, LockedCertificateIsDeniedAndLogged) {
  DriverRun r = login("machineid", "root", bot("locked"), {"account"});
  EXPECT_EQ(r.code("account"), PAM_PERM_DENIED) << r.describe();
  EXPECT_TRUE(r.logged("denied bot 'locked' as 'root': locked")) << r.describe();
  auto denied = audit("login.deny");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(field(denied[0], "reason"), "locked");
}

TEST_F(PamTest, EveryCertificateOfTheLoginMustStillBeAllowed) {
  std::string both = auth_info(bot("ci")) + auth_info(bot("locked"));
  EXPECT_EQ(probe(both, {"account"}).code("account"), PAM_PERM_DENIED);
  std::string allowed = auth_info(bot("ci")) + "keyboard-interactive/pam\n" + auth_info(bot("ci2"));
  EXPECT_EQ(probe(allowed, {"account"}).code("account"), PAM_SUCCESS);
}

TEST_F(PamTest, LoginWithoutCertificateIsIgnoredByDefault) {
  for (const std::optional<std::string>& info : std::vector<std::optional<std::string>>{
           std::nullopt, "", "password\n", "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n",
           "keyboard-interactive/pam\n"}) {
    DriverRun r = probe(info, {"account", "open", "close"});
    EXPECT_EQ(r.code("account"), kIgnored) << "SSH_AUTH_INFO_0=" << info.value_or("(unset)") << "\n"
                                           << r.describe();
    EXPECT_EQ(r.code("open"), kIgnored) << info.value_or("(unset)");
    EXPECT_EQ(r.code("close"), kIgnored) << info.value_or("(unset)");
  }
  // Another module decides for the stack; libpam denies a stack where
  // every module ignored the call.
  service("permit", "account required " + module() + "\naccount required pam_permit.so\n");
  EXPECT_EQ(login("permit", "root", "", {"account"}).code("account"), PAM_SUCCESS);
  EXPECT_EQ(login("machineid", "root", "", {"account"}).code("account"), PAM_PERM_DENIED);
  EXPECT_TRUE(audit().empty()) << "the daemon was asked about a login without a certificate";
}

TEST_F(PamTest, NocertDenyRefusesOutsideSshdAtOnce) {
  DriverRun r = probe(std::nullopt, {"account"}, {"nocert=deny"});
  EXPECT_EQ(r.code("account"), PAM_PERM_DENIED) << r.describe();
  EXPECT_TRUE(r.logged("denying 'root': the login used no certificate (nocert=deny)"))
      << r.describe();
  // nocert=ignore says what the default says; certificates are unaffected.
  EXPECT_EQ(probe(std::nullopt, {"account"}, {"nocert=ignore"}).code("account"), kIgnored);
  EXPECT_EQ(probe(auth_info(bot("ci")), {"account"}, {"nocert=deny"}).code("account"), PAM_SUCCESS);
}

TEST_F(PamTest, NocertDenyRefusesSshdLoginsInTheSession) {
  // In account, sshd has not yet shown the method that completed the login.
  for (const std::string info :
       {"", "password\n", "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n"}) {
    DriverRun r = probe(info, {"account", "open"}, {"nocert=deny"});
    EXPECT_EQ(r.code("account"), kIgnored) << info << "\n" << r.describe();
    EXPECT_EQ(r.code("open"), PAM_SESSION_ERR) << info << "\n" << r.describe();
    EXPECT_TRUE(r.logged("used no certificate (nocert=deny)")) << r.describe();
  }
}

TEST_F(PamTest, GarbageInAuthInfoIsDeniedWhateverNocertSays) {
  const std::string cert_type = "ssh-ed25519-cert-v01@openssh.com";
  std::string too_many_lines;
  for (std::size_t i = 0; i <= MID_AUTHINFO_MAX_LINES; ++i) too_many_lines += "password\n";
  const std::vector<std::string> garbage = {
      "publickey\n",
      "publickey " + cert_type + "\n",
      "publickey " + cert_type + " AAAA extra\n",
      "publickey " + cert_type + " AAAA*\n",
      "password\n\npassword\n",
      "pass\tword\n",
      " publickey " + cert_type + " AAAA\n",
      too_many_lines,
  };
  for (const std::string& info : garbage) {
    DriverRun r = probe(info, {"account"});
    EXPECT_EQ(r.code("account"), PAM_PERM_DENIED) << "SSH_AUTH_INFO_0=" << info << "\n"
                                                  << r.describe();
    EXPECT_TRUE(r.logged("SSH_AUTH_INFO_0")) << r.describe();
  }
  // Well-formed text that is no certificate: the daemon's parser refuses it.
  DriverRun r = probe("publickey " + cert_type + " AAAAnotacertificate\n", {"account"});
  EXPECT_EQ(r.code("account"), PAM_PERM_DENIED) << r.describe();
  auto denied = audit("login.deny");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(field(denied[0], "reason"), "parse");
}

TEST_F(PamTest, SourceIsTheClientAddressOnly) {
  std::string cert = bot("ci");
  for (const std::string rhost : {"192.0.2.7", "2001:db8::7", "client.example.com"}) {
    DriverRun r =
        drive({"--rhost", rhost, "machineid", "root", kAuthInfo + auth_info(cert), "account"});
    EXPECT_EQ(r.code("account"), PAM_SUCCESS) << r.describe();
  }
  auto allowed = audit("login.allow");
  ASSERT_EQ(allowed.size(), 3u);
  EXPECT_EQ(field(allowed[0], "source"), "192.0.2.7");
  EXPECT_EQ(field(allowed[1], "source"), "2001:db8::7");
  EXPECT_EQ(field(allowed[2], "source"), "");  // a host name cannot meet source-address
}

TEST_F(PamTest, UnknownOrMalformedOptionRefuses) {
  std::string cert = auth_info(bot("ci"));
  for (const std::string option :
       {"bogus", "nocert=maybe", "nocert", "socket=", "skel=", "Socket=/x"}) {
    DriverRun r = probe(cert, {"account", "open", "close"}, {option});
    EXPECT_EQ(r.code("account"), PAM_SERVICE_ERR) << option << "\n" << r.describe();
    EXPECT_EQ(r.code("open"), PAM_SERVICE_ERR) << option;
    EXPECT_EQ(r.code("close"), PAM_SERVICE_ERR) << option;
    EXPECT_TRUE(r.logged("unknown or malformed option '" + option + "'")) << r.describe();
  }
  EXPECT_TRUE(audit().empty());
}

TEST_F(PamTest, MissingUserIsUnknown) {
  EXPECT_EQ(probe(auth_info(bot("ci")), {"account"}, {}, "").code("account"), PAM_USER_UNKNOWN);
}

TEST_F(PamTest, AuthenticationCredentialsAndPasswordsAreIgnored) {
  DriverRun r = probe(auth_info(bot("ci")), {"authenticate", "setcred", "chauthtok"}, {"bogus"});
  EXPECT_EQ(r.code("authenticate"), kIgnored) << r.describe();
  EXPECT_EQ(r.code("setcred"), kIgnored);
  EXPECT_EQ(r.code("chauthtok"), kIgnored);
}

// --- session ---------------------------------------------------------------

TEST_F(PamTest, SessionExportsTeleportVariablesAndAuditsOpenAndClose) {
  DriverRun r = login("machineid", "root", bot("ci"), {"account", "open", "env", "close"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.code("account"), PAM_SUCCESS) << r.describe();
  EXPECT_EQ(r.code("open"), PAM_SUCCESS) << r.describe();
  EXPECT_EQ(r.code("close"), PAM_SUCCESS) << r.describe();
  EXPECT_EQ(r.env["TELEPORT_USERNAME"], "bot-ci");
  EXPECT_EQ(r.env["TELEPORT_LOGIN"], "root");
  EXPECT_EQ(r.env["TELEPORT_ROLES"], "ci");
  EXPECT_EQ(r.env["MACHINEID_BOT"], "ci");

  auto events = audit();
  ASSERT_EQ(events.size(), 3u) << "one decision, one open, one close";
  EXPECT_EQ(field(events[0], "event"), "login.allow");
  EXPECT_EQ(field(events[1], "event"), "session.open");
  EXPECT_EQ(field(events[2], "event"), "session.close");
  std::string id = field(events[0], "correlation_id");
  EXPECT_FALSE(id.empty());
  for (const auto& e : events) {
    EXPECT_EQ(field(e, "correlation_id"), id) << e.dump();
    EXPECT_EQ(field(e, "login"), "root");
    EXPECT_EQ(field(e, "key_id"), "bot-ci");
    EXPECT_EQ(field(e, "bot"), "ci");
    EXPECT_EQ(field(e, "roles"), "ci");
    EXPECT_EQ(field(e, "serial"), "1");
    EXPECT_EQ(field(e, "source"), "127.0.0.1");
    EXPECT_EQ(field(e, "cert_fp"), field(events[0], "cert_fp"));
  }
  EXPECT_EQ(events[2]["duration"], 0);
}

TEST_F(PamTest, CertificateOfAPersonExportsNoBot) {
  CertSpec spec{.ca = h_->ca(), .key = key_ + ".pub"};
  spec.identity = "alice@example.com";
  spec.options = {R"(extension:teleport-roles={"version":"v1","roles":["ci"]})"};
  DriverRun r = login("machineid", "root", sign(spec), {"account", "open", "env"});
  EXPECT_EQ(r.code("open"), PAM_SUCCESS) << r.describe();
  EXPECT_EQ(r.env["TELEPORT_USERNAME"], "alice@example.com");
  EXPECT_EQ(r.env.count("MACHINEID_BOT"), 0u);
}

TEST_F(PamTest, SessionWithoutAccountCheckAsksTheDaemonItself) {
  service("session-only", "session required " + module() + "\n");
  DriverRun r = login("session-only", "root", bot("ci"), {"open", "env", "close"});
  EXPECT_EQ(r.code("open"), PAM_SUCCESS) << r.describe();
  EXPECT_EQ(r.code("close"), PAM_SUCCESS);
  EXPECT_EQ(r.env["TELEPORT_USERNAME"], "bot-ci");
  auto events = audit();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(field(events[0], "event"), "login.allow");
  EXPECT_EQ(field(events[1], "correlation_id"), field(events[0], "correlation_id"));
  EXPECT_EQ(field(events[2], "correlation_id"), field(events[0], "correlation_id"));
}

TEST_F(PamTest, DeniedCertificateOpensNoSession) {
  service("session-only", "session required " + module() + "\n");
  DriverRun r = login("session-only", "root", bot("locked"), {"open", "env", "close"});
  EXPECT_EQ(r.code("open"), PAM_SESSION_ERR) << r.describe();
  EXPECT_EQ(r.env.count("TELEPORT_USERNAME"), 0u);
  EXPECT_TRUE(audit("session.open").empty());
  EXPECT_TRUE(audit("session.close").empty());
}

TEST_F(PamTest, AsInSshdTheSessionDecidesWhatAccountCouldNotSee) {
  service("sshd", "account required " + module() +
                      "\naccount required pam_permit.so\nsession required " + module() + "\n");
  DriverRun r = sshd_login("sshd", "root", bot("ci"), {"open", "env", "close"});
  EXPECT_EQ(r.code("account"), PAM_SUCCESS) << r.describe();
  EXPECT_EQ(r.code("open"), PAM_SUCCESS) << r.describe();
  EXPECT_EQ(r.code("close"), PAM_SUCCESS);
  EXPECT_EQ(r.env["TELEPORT_USERNAME"], "bot-ci");
  auto events = audit();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(field(events[0], "event"), "login.allow");
  EXPECT_EQ(field(events[0], "source"), "127.0.0.1");
  EXPECT_EQ(field(events[1], "correlation_id"), field(events[0], "correlation_id"));
  EXPECT_EQ(field(events[2], "correlation_id"), field(events[0], "correlation_id"));

  mark_ = h_->audit_mark();
  r = sshd_login("sshd", "root", bot("locked"), {"open", "env"});
  EXPECT_EQ(r.code("open"), PAM_SESSION_ERR) << r.describe();
  EXPECT_EQ(r.env.count("TELEPORT_USERNAME"), 0u);
  events = audit();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(field(events[0], "reason"), "locked");
}

TEST_F(PamTest, CertificateShownAfterTheAccountCheckIsDecidedByTheSession) {
  // publickey,publickey: account saw the first certificate, the session
  // sees both, and the second one is locked.
  std::string first = auth_info(bot("ci"));
  DriverRun r =
      probe(first, {"account", kAuthInfo + first + auth_info(bot("locked")), "open", "env"});
  EXPECT_EQ(r.code("account"), PAM_SUCCESS) << r.describe();
  EXPECT_EQ(r.code("open"), PAM_SESSION_ERR) << r.describe();
  EXPECT_EQ(r.env.count("TELEPORT_USERNAME"), 0u);
  EXPECT_TRUE(audit("session.open").empty());
}

TEST_F(PamTest, CloseWithoutOpenIsIgnored) {
  DriverRun r = probe(auth_info(bot("ci")), {"account", "close"});
  EXPECT_EQ(r.code("account"), PAM_SUCCESS) << r.describe();
  EXPECT_EQ(r.code("close"), kIgnored);
  EXPECT_TRUE(audit("session.close").empty());
}

TEST_F(PamTest, HandlesKeepTheirOwnLogins) {
  // A second handle in the same process, for a login without a
  // certificate, inherits nothing from the first one's account check.
  DriverRun r = probe(auth_info(bot("ci")), {"account", "new", "open", "env", "close"});
  EXPECT_EQ(r.code("account"), PAM_SUCCESS) << r.describe();
  EXPECT_EQ(r.code("open"), kIgnored) << r.describe();
  EXPECT_EQ(r.code("close"), kIgnored);
  EXPECT_EQ(r.env.count("TELEPORT_USERNAME"), 0u);
  EXPECT_TRUE(audit("session.open").empty());
}

// --- the daemon down ---------------------------------------------------------

// A daemon of its own, to stop or freeze.
class PamDaemonDownTest : public PamTest {
 protected:
  void SetUp() override {
    PamTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    own_ = std::make_unique<SshdHarness>(MID_BIN_DIR);
    own_->write_role("ci", kCiRole);
    ASSERT_TRUE(own_->start_daemon());
    h_ = own_.get();
    socket_ = own_->socket();
    mark_ = h_->audit_mark();
    service("machineid", "account required " + module() + "\nsession required " + module() + "\n");
  }
  std::unique_ptr<SshdHarness> own_;
};

TEST_F(PamDaemonDownTest, StoppedDaemonDeniesCertificateLoginsOnly) {
  own_->stop_daemon();
  DriverRun r = login("machineid", "root", bot("ci"), {"account", "open"});
  EXPECT_EQ(r.code("account"), PAM_PERM_DENIED) << r.describe();
  EXPECT_EQ(r.code("open"), PAM_SESSION_ERR);
  EXPECT_TRUE(r.logged("denying certificate login as 'root': no decision: " + socket_))
      << r.describe();
  // Logins without a certificate never needed the daemon.
  EXPECT_EQ(probe("password\n", {"account"}).code("account"), kIgnored);
}

TEST_F(PamDaemonDownTest, FrozenDaemonDeniesWithinTheDeadline) {
  std::string info = auth_info(bot("ci"));
  own_->signal_daemon(SIGSTOP);
  auto begin = std::chrono::steady_clock::now();
  DriverRun r = probe(info, {"account"});
  auto elapsed = std::chrono::steady_clock::now() - begin;
  own_->signal_daemon(SIGCONT);
  EXPECT_EQ(r.code("account"), PAM_PERM_DENIED) << r.describe();
  EXPECT_TRUE(r.logged("did not answer in time")) << r.describe();
  EXPECT_LT(elapsed, 5s);
}

// --- host users --------------------------------------------------------------

class PamHostUserTest : public PamTest {
 protected:
  void SetUp() override {
    PamTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    home_ = use_host_user();
    skel_ = work_.file("skel");
    fs::create_directories(skel_ + "/.config/app");
    testing::write_file(skel_ + "/.profile", "echo welcome\n");
    chmod((skel_ + "/.profile").c_str(), 0644);
    testing::write_file(skel_ + "/.config/app/secret", "s3cret\n");
    chmod((skel_ + "/.config/app/secret").c_str(), 0600);
    chmod((skel_ + "/.config").c_str(), 0750);
    // Links are copied as links, never followed.
    fs::create_symlink("/etc/passwd", skel_ + "/passwd-link");
    fs::create_symlink(work_.path(), skel_ + "/outside");
    mkfifo((skel_ + "/fifo").c_str(), 0644);
    service("machineid", "account required " + module() + "\nsession required " +
                             module("skel=" + skel_) + "\n");
  }
  DriverRun first_login() {
    return login("machineid", kHostUser, bot("alice", kHostUser, R"(["hosts"])"),
                 {"account", "open", "close"});
  }
  struct stat lstat_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
    return st;
  }

  std::string home_, skel_;
};

TEST_F(PamHostUserTest, FirstLoginMakesThePrivateHomeFromTheSkeleton) {
  DriverRun r = first_login();
  ASSERT_EQ(r.code("open"), PAM_SUCCESS) << r.describe();

  struct stat home = lstat_of(home_);
  EXPECT_TRUE(S_ISDIR(home.st_mode));
  EXPECT_EQ(home.st_mode & 07777, 0700u);
  EXPECT_EQ(home.st_uid, kHostUid);
  EXPECT_EQ(home.st_gid, kHostUid);

  EXPECT_EQ(testing::read_file(home_ + "/.profile"), "echo welcome\n");
  EXPECT_EQ(lstat_of(home_ + "/.profile").st_mode & 07777, 0644u);
  EXPECT_EQ(testing::read_file(home_ + "/.config/app/secret"), "s3cret\n");
  EXPECT_EQ(lstat_of(home_ + "/.config/app/secret").st_mode & 07777, 0600u);
  EXPECT_EQ(lstat_of(home_ + "/.config").st_mode & 07777, 0750u);
  for (const char* entry : {"/.profile", "/.config", "/.config/app", "/.config/app/secret",
                            "/passwd-link", "/outside"}) {
    struct stat st = lstat_of(home_ + entry);
    EXPECT_EQ(st.st_uid, kHostUid) << entry;
    EXPECT_EQ(st.st_gid, kHostUid) << entry;
  }
  EXPECT_EQ(fs::read_symlink(home_ + "/passwd-link"), "/etc/passwd");
  EXPECT_EQ(fs::read_symlink(home_ + "/outside"), work_.path());
  // Nothing the links point at changed hands.
  EXPECT_EQ(lstat_of("/etc/passwd").st_uid, 0u);
  EXPECT_EQ(lstat_of(work_.path()).st_uid, 0u);
  EXPECT_FALSE(fs::exists(fs::symlink_status(home_ + "/fifo")));
}

TEST_F(PamHostUserTest, ExistingHomeIsLeftAlone) {
  fs::create_directory(home_);
  chmod(home_.c_str(), 0755);
  DriverRun r = first_login();
  EXPECT_EQ(r.code("open"), PAM_SUCCESS) << r.describe();
  struct stat home = lstat_of(home_);
  EXPECT_EQ(home.st_uid, 0u);
  EXPECT_EQ(home.st_mode & 07777, 0755u);
  EXPECT_FALSE(fs::exists(home_ + "/.profile"));
}

TEST_F(PamHostUserTest, LoginThatIsNoHostUserGetsNoHome) {
  // root's grant (role ci) makes no host user: nothing is created.
  DriverRun r = login("machineid", "root", bot("ci"), {"account", "open"});
  EXPECT_EQ(r.code("open"), PAM_SUCCESS) << r.describe();
  EXPECT_FALSE(fs::exists(home_));
}

TEST_F(PamHostUserTest, HomeThatCannotBeMadeFailsTheSessionButIsAudited) {
  fs::remove_all(work_.file("home"));  // no parent directory
  DriverRun r = first_login();
  EXPECT_EQ(r.code("open"), PAM_SESSION_ERR) << r.describe();
  EXPECT_TRUE(r.logged("home directory of 'mid-alice'")) << r.describe();
  EXPECT_EQ(audit("session.open").size(), 1u);
}

// --- leaks -------------------------------------------------------------------

TEST_F(PamTest, ThousandLoginsLeakNothing) {
  // Each cycle is two logins in fresh handles. The first: an account check
  // that keeps its decision, a session that sees one more certificate and
  // so replaces it, open, close, pam_end. The second: an account check
  // that refuses. Valgrind counts what was never freed (sanitizer builds:
  // LeakSanitizer, as the driver exits); the driver counts descriptors.
  std::string first = auth_info(bot("ci")), both = first + auth_info(bot("ci2"));
  std::vector<std::string> prefix;
  if (!testing::kSanitized)
    prefix = {kValgrind, "--quiet", "--leak-check=full",
              "--errors-for-leak-kinds=definite,possible", "--error-exitcode=99"};
  DriverRun r =
      drive({"--cycles", std::to_string(kLeakCycles), "--keep-loaded", kModule, "--rhost",
             "127.0.0.1", "machineid", "root", kAuthInfo + first, "account", kAuthInfo + both,
             "open", "env", "close", "new", kAuthInfo + auth_info(bot("locked")), "account"},
            prefix, kValgrindTimeout);
  EXPECT_EQ(r.status, 0) << r.describe();
  ASSERT_EQ(r.codes.size(), 4u) << r.describe();
  EXPECT_EQ(r.codes[0].second, PAM_SUCCESS);
  EXPECT_EQ(r.codes[1].second, PAM_SUCCESS);
  EXPECT_EQ(r.codes[2].second, PAM_SUCCESS);
  EXPECT_EQ(r.codes[3].second, PAM_PERM_DENIED);
  EXPECT_EQ(r.env["TELEPORT_LOGIN"], "root");
  EXPECT_EQ(audit("session.close").size(), static_cast<std::size_t>(kLeakCycles));
}

}  // namespace
}  // namespace machineid
