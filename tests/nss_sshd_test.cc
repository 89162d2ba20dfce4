// Host users end to end (SPEC §6): a bot logs in through a real sshd as a
// host user the daemon makes for it, with the uid and groups the module
// gives the session; the uid survives restarts, and a daemon killed in the
// middle of allocations loses none it answered.
//
// sshd resolves users through this machine's real NSS here, not through
// nss_wrapper: nss_wrapper's initgroups consults only its files backend, so
// a session under it would never get the module's supplementary groups.
// SystemNss puts the module into /etc/nsswitch.conf for the test and puts
// the file back byte for byte afterwards.
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "machineid/client.h"
#include "machineid/protocol.h"
#include "machineid/userdb.h"
#include "sshd_harness.h"

namespace machineid {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::CertSpec;
using testing::CommandResult;
using testing::SshdHarness;

const std::string kModule = std::string(MID_BIN_DIR) + "/../lib/libnss_machineid.so.2";
constexpr const char* kNsswitch = "/etc/nsswitch.conf";
// The original, kept beside it while a test runs, so that a run killed
// before it could restore the file is repaired by the next one.
constexpr const char* kNsswitchBackup = "/etc/nsswitch.conf.machineid-test";

// Held while the module is in the system's NSS: test processes running at
// the same time take turns (flock ends with the process, however it ends).
constexpr const char* kLock = "/run/machineid-nss-test.lock";

// The module in this machine's NSS for as long as the object lives.
class SystemNss {
 public:
  SystemNss() : lock_(open(kLock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (lock_ < 0 || flock(lock_, LOCK_EX) != 0)
      ADD_FAILURE() << kLock << ": " << std::strerror(errno);
    if (fs::exists(kNsswitchBackup)) fs::rename(kNsswitchBackup, kNsswitch);
    original_ = testing::read_file(kNsswitch);
    testing::write_file(kNsswitchBackup, original_);
    Dl_info info{};
    dladdr(reinterpret_cast<void*>(&getpwnam), &info);
    installed_ = fs::path(info.dli_fname).parent_path() / "libnss_machineid.so.2";
    if (fs::exists(installed_)) fs::rename(installed_, aside());
    fs::copy_file(kModule, installed_.string() + ".new", fs::copy_options::overwrite_existing);
    fs::rename(installed_.string() + ".new", installed_);

    std::istringstream in(original_);
    std::string changed;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("passwd:", 0) == 0 || line.rfind("group:", 0) == 0) {
        auto files = line.find(" files");
        if (files == std::string::npos) {
          line += " machineid";
        } else {
          line.insert(files + 6, " machineid");
        }
      }
      changed += line + "\n";
    }
    replace(changed);
  }
  ~SystemNss() {
    replace(original_);
    std::error_code ec;
    fs::remove(installed_, ec);
    if (fs::exists(aside())) fs::rename(aside(), installed_, ec);
    fs::remove(kNsswitchBackup, ec);
    if (lock_ >= 0) close(lock_);
  }
  SystemNss(const SystemNss&) = delete;
  SystemNss& operator=(const SystemNss&) = delete;

 private:
  std::string aside() const { return installed_.string() + ".machineid-test"; }
  // Whole or not at all, for the other processes reading it meanwhile.
  static void replace(const std::string& content) {
    std::string staged = std::string(kNsswitch) + ".new";
    testing::write_file(staged, content);
    fs::permissions(staged, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                fs::perms::others_read);
    fs::rename(staged, kNsswitch);
  }

  int lock_;
  std::string original_;
  fs::path installed_;
};

// Gives bots their own login and a host user for it, in builders too.
constexpr const char* kBotsRole = R"(kind: role
version: v7
metadata:
  name: bots
spec:
  options:
    create_host_user_mode: keep
  allow:
    logins: ['{{internal.logins}}']
    node_labels: {'*': '*'}
    host_groups: [builders]
)";

constexpr const char* kHostUsersToml =
    "[host_users]\nuid_min = 61000\nuid_max = 61999\ngroups = [\"users\"]\n";

// A bot certificate whose only principal (and login trait) is `login`.
CertSpec bot_cert(SshdHarness& h, const std::string& key, const std::string& bot,
                  const std::string& login) {
  CertSpec spec{.ca = h.ca(), .key = key + ".pub"};
  spec.identity = "bot-" + bot;
  spec.principals = {login};
  spec.options = {R"(extension:teleport-roles={"version":"v1","roles":["bots"]})",
                  R"(extension:teleport-traits={"logins":[")" + login + R"("]})",
                  "extension:impersonator=bot-" + bot};
  return spec;
}

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.status) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

std::set<unsigned> numbers(const std::string& text) {
  std::istringstream in(text);
  std::set<unsigned> out;
  for (unsigned n; in >> n;) out.insert(n);
  return out;
}

const HostUser* find(const UserDb& db, const std::string& login) {
  for (const auto& u : db.users)
    if (u.login == login) return &u;
  return nullptr;
}

class HostUserLoginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root: sshd and the system's NSS configuration";
    ASSERT_TRUE(fs::exists("/usr/sbin/sshd")) << "needs sshd";
    nss = std::make_unique<SystemNss>();
    // sshd's environment is fixed before the harness makes its directory:
    // it names links here, pointed at the harness's files once it exists.
    testing::HarnessOptions options;
    options.daemon_toml = kHostUsersToml;
    options.sshd_env = {"MACHINEID_NSS_DB=" + links.file("users.db"),
                        "MACHINEID_NSS_SOCKET=" + links.file("verifierd.sock")};
    h = std::make_unique<SshdHarness>(MID_BIN_DIR, options);
    fs::create_symlink(h->file("state/users.db"), links.file("users.db"));
    fs::create_symlink(h->socket(), links.file("verifierd.sock"));
    h->write_role("bots", kBotsRole);
    ASSERT_TRUE(h->start());
    key = h->keygen().make_key("bot");
  }
  void TearDown() override {
    if (HasFailure() && h) std::cerr << h->logs_since({});
    h.reset();
    nss.reset();
  }

  UserDb db() {
    auto read = read_userdb(h->file("state/users.db"));
    EXPECT_TRUE(read.ok()) << read.error().message;
    return read.ok() ? *read : UserDb{};
  }
  CommandResult login(const std::string& bot, const std::string& login,
                      const std::string& command) {
    return h->ssh(key, h->keygen().sign(bot_cert(*h, key, bot, login)), login, command);
  }
  testing::RunResult ctl(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(MID_BIN_DIR) + "/machineidctl");
    args.insert(args.end(), {"--socket", h->socket()});
    return testing::run(args);
  }

  testing::TempDir links;
  std::unique_ptr<SystemNss> nss;
  std::unique_ptr<SshdHarness> h;
  std::string key;
};

TEST_F(HostUserLoginTest, BotLogsInAsItsOwnHostUserWithItsGroups) {
  CommandResult r = login("ci", "bot-ci", "id -u; id -g; id -G");
  ASSERT_EQ(r.status, 0) << describe(r);
  UserDb state = db();
  const HostUser* u = find(state, "bot-ci");
  ASSERT_NE(u, nullptr);
  EXPECT_FALSE(u->pending);
  EXPECT_EQ(u->bot, "ci");
  ASSERT_EQ(state.groups.size(), 1u);
  EXPECT_EQ(state.groups[0].name, "builders");
  std::istringstream out(r.out);
  std::string uid, gid, groups;
  std::getline(out, uid);
  std::getline(out, gid);
  std::getline(out, groups);
  EXPECT_EQ(uid, std::to_string(u->uid));
  EXPECT_EQ(gid, std::to_string(u->uid)) << "the primary group has the user's id";
  EXPECT_GE(u->uid, 61000u);
  EXPECT_LE(u->uid, 61999u);
  // Its own group, the role's host_groups (made by the daemon), and
  // [host_users] groups ("users", from /etc/group).
  group* users = getgrnam("users");
  ASSERT_NE(users, nullptr);
  EXPECT_EQ(numbers(groups), (std::set<unsigned>{u->uid, users->gr_gid, state.groups[0].gid}))
      << r.out;
}

TEST_F(HostUserLoginTest, UidIsTheSameAfterTheDaemonRestarts) {
  CommandResult first = login("ci", "bot-ci", "id -u");
  ASSERT_EQ(first.status, 0) << describe(first);
  h->stop_daemon();
  ASSERT_TRUE(h->start_daemon());
  login("other", "bot-other", "true");  // another host user in between
  CommandResult again = login("ci", "bot-ci", "id -u");
  ASSERT_EQ(again.status, 0) << describe(again);
  EXPECT_EQ(again.out, first.out);
  EXPECT_NE(login("other", "bot-other", "id -u").out, first.out);
}

TEST_F(HostUserLoginTest, LoginTheCertificateDoesNotAllowLeavesOnlyALapsingReservation) {
  CommandResult r = login("ci", "bot-ci", "true");
  ASSERT_EQ(r.status, 0) << describe(r);
  // bot-ci's certificate does not name bot-intruder: sshd looks the name up
  // (a reservation), the daemon denies, nothing becomes permanent.
  std::string cert = h->keygen().sign(bot_cert(*h, key, "ci", "bot-ci"));
  CommandResult denied = h->ssh(key, cert, "bot-intruder", "true");
  EXPECT_EQ(denied.status, 255) << describe(denied);
  UserDb state = db();
  const HostUser* reserved = find(state, "bot-intruder");
  ASSERT_NE(reserved, nullptr);
  EXPECT_TRUE(reserved->pending);
}

TEST_F(HostUserLoginTest, MachineidctlListsHostUsersAndForgetRetiresTheUidForGood) {
  CommandResult r = login("ci", "bot-ci", "id -u");
  ASSERT_EQ(r.status, 0) << describe(r);
  std::string old_uid = r.out;

  auto list = ctl({"users"});
  ASSERT_EQ(list.status, 0) << list.output;
  EXPECT_NE(list.output.find("bot-ci"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find(old_uid.substr(0, old_uid.size() - 1)), std::string::npos)
      << list.output;
  EXPECT_NE(list.output.find("builders"), std::string::npos) << list.output;

  auto json = ctl({"users", "--json"});
  ASSERT_EQ(json.status, 0) << json.output;
  auto j = nlohmann::json::parse(json.output);
  ASSERT_EQ(j["users"].size(), 1u);
  EXPECT_EQ(j["users"][0]["login"], "bot-ci");
  EXPECT_EQ(j["users"][0]["bot"], "ci");
  EXPECT_GT(j["users"][0]["first_login"].get<long>(), 0);
  EXPECT_EQ(j["users"][0]["first_login"], j["users"][0]["last_login"]);

  auto forget = ctl({"users", "--forget", "bot-ci"});
  ASSERT_EQ(forget.status, 0) << forget.output;
  EXPECT_EQ(ctl({"users", "--forget", "bot-ci"}).status, 1) << "already forgotten";
  j = nlohmann::json::parse(ctl({"users", "--json"}).output);
  EXPECT_TRUE(j["users"].empty());
  ASSERT_EQ(j["retired"].size(), 1u);
  EXPECT_EQ(std::to_string(j["retired"][0]["uid"].get<unsigned>()) + "\n", old_uid);

  // Back again, it is a new account: the old uid is never given again.
  CommandResult again = login("ci", "bot-ci", "id -u");
  ASSERT_EQ(again.status, 0) << describe(again);
  EXPECT_NE(again.out, old_uid);
}

// ---- durability -----------------------------------------------------------

constexpr int kAllocations = 1000;
constexpr int kPrincipalsPerCert = 250;  // below the 256 a certificate may carry

std::string base64_of(const std::string& cert_path) {
  std::istringstream in(testing::read_file(cert_path));
  std::string type, b64;
  in >> type >> b64;
  return b64;
}

TEST(HostUserDurabilityTest, KillNineDuringAThousandAllocationsLosesNoAnsweredAllow) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: the harness lives under /run";
  testing::HarnessOptions options;
  options.daemon_toml = "[host_users]\nuid_min = 61000\nuid_max = 62999\n";
  SshdHarness h(MID_BIN_DIR, options);
  h.write_role("bots", kBotsRole);
  std::string key = h.keygen().make_key("bot");
  std::vector<std::string> logins, certs;
  for (int i = 0; i < kAllocations; ++i) logins.push_back("bot-" + std::to_string(10000 + i));
  for (int first = 0; first < kAllocations; first += kPrincipalsPerCert) {
    std::vector<std::string> batch(logins.begin() + first,
                                   logins.begin() + first + kPrincipalsPerCert);
    CertSpec spec{.ca = h.ca(), .key = key + ".pub"};
    spec.identity = "bot-load";
    spec.principals = batch;
    std::string traits;
    for (const auto& l : batch) traits += (traits.empty() ? "\"" : ",\"") + l + "\"";
    spec.options = {R"(extension:teleport-roles={"roles":["bots"]})",
                    "extension:teleport-traits={\"logins\":[" + traits + "]}"};
    certs.push_back(base64_of(h.keygen().sign(spec)));
  }

  std::map<std::string, std::uint32_t> uids;  // every login answered allowed, and its uid on disk
  std::mt19937 random(42);
  int next = 0, kills = 0;
  while (next < kAllocations) {
    ASSERT_TRUE(h.start_daemon());
    // Killed at a random moment while allocations stream in, writes and
    // all; the last round runs to the end.
    bool kill = kills < 4;
    std::thread killer([&, delay = std::chrono::milliseconds(100 + random() % 400)] {
      if (!kill) return;
      std::this_thread::sleep_for(delay);
      h.signal_daemon(SIGKILL);
    });
    while (next < kAllocations) {
      DecideRequest request{Asker::cli, logins[next], "ssh-ed25519-cert-v01@openssh.com",
                            certs[next / kPrincipalsPerCert], ""};
      auto reply = call_daemon(h.socket(), encode(request), 2000);
      if (!reply.ok()) break;  // the daemon is gone; this one was not answered
      auto decision = decode_decide_reply(*reply);
      ASSERT_TRUE(decision.ok() && decision->allowed && decision->host_user)
          << logins[next] << ": " << (decision.ok() ? decision->detail : decision.error().message);
      uids.emplace(logins[next], 0);
      ++next;
    }
    killer.join();
    kills += kill;
    h.stop_daemon();

    auto read = read_userdb(h.file("state/users.db"));
    ASSERT_TRUE(read.ok()) << read.error().message;
    std::set<std::uint32_t> seen;
    for (auto& [login, uid] : uids) {
      const HostUser* u = find(*read, login);
      ASSERT_NE(u, nullptr) << login
                            << " was answered allowed but is not in users.db after kill -9";
      ASSERT_FALSE(u->pending) << login;
      if (uid != 0) {
        ASSERT_EQ(u->uid, uid) << login << " changed uid across a crash";
      }
      uid = u->uid;
      ASSERT_TRUE(seen.insert(uid).second) << "uid " << uid << " given twice";
    }
  }
  EXPECT_EQ(kills, 4);
  EXPECT_EQ(uids.size(), static_cast<std::size_t>(kAllocations));
  // The restarts swept away the temporaries the kills left.
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(h.file("state")))
    files.push_back(entry.path().filename());
  EXPECT_EQ(files, (std::vector<std::string>{"users.db"}));
}

}  // namespace
}  // namespace machineid
