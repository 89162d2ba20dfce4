// Host users end to end (SPEC §6): a bot logs in through a real sshd as a
// host user the daemon makes for it, with the uid and groups the module
// gives the session; the uid survives restarts, and a daemon killed in the
// middle of allocations loses none it answered.
//
// sshd resolves users through this machine's real NSS here, not through
// nss_wrapper: nss_wrapper's initgroups consults only its files backend, so
// a session under it would never get the module's supplementary groups.
// SystemNss puts the module into /etc/nsswitch.conf for the test — the last
// source but for a stand-in directory (libnss_midstub) some tests list after
// it — and puts the file back byte for byte afterwards.
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
#include <atomic>
#include <optional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "machineid/client.h"
#include "machineid/protocol.h"
#include "machineid/userdb.h"
#include "machineid/userdb_format.h"
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

// The stand-in directory's entries (tests/support/nss_stub.c).
constexpr const char* kStubFile = "/run/machineid-nss-stub";

// The module in this machine's NSS for as long as the object lives: last on
// the passwd: and group: lines, as packaging puts it, or followed by the
// stand-in directory when `directory_after` is set.
class SystemNss {
 public:
  explicit SystemNss(bool directory_after = false)
      : lock_(open(kLock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (lock_ < 0 || flock(lock_, LOCK_EX) != 0)
      ADD_FAILURE() << kLock << ": " << std::strerror(errno);
    if (fs::exists(kNsswitchBackup)) fs::rename(kNsswitchBackup, kNsswitch);
    original_ = testing::read_file(kNsswitch);
    testing::write_file(kNsswitchBackup, original_);
    Dl_info info{};
    dladdr(reinterpret_cast<void*>(&getpwnam), &info);
    libdir_ = fs::path(info.dli_fname).parent_path();
    install(kModule, "libnss_machineid.so.2");
    if (directory_after) install(MID_NSS_STUB, "libnss_midstub.so.2");
    std::error_code ec;
    fs::remove(kStubFile, ec);

    std::string sources = directory_after ? " machineid midstub" : " machineid";
    std::istringstream in(original_);
    std::string changed;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("passwd:", 0) == 0 || line.rfind("group:", 0) == 0) line += sources;
      changed += line + "\n";
    }
    replace(changed);
  }
  ~SystemNss() {
    replace(original_);
    std::error_code ec;
    for (const auto& name : installed_) {
      fs::path path = libdir_ / name;
      fs::remove(path, ec);
      if (fs::exists(aside(path))) fs::rename(aside(path), path, ec);
    }
    fs::remove(kStubFile, ec);
    fs::remove(kNsswitchBackup, ec);
    if (lock_ >= 0) close(lock_);
  }
  SystemNss(const SystemNss&) = delete;
  SystemNss& operator=(const SystemNss&) = delete;

 private:
  static std::string aside(const fs::path& p) { return p.string() + ".machineid-test"; }
  void install(const std::string& from, const std::string& name) {
    fs::path path = libdir_ / name;
    if (fs::exists(path)) fs::rename(path, aside(path));
    fs::copy_file(from, path.string() + ".new", fs::copy_options::overwrite_existing);
    fs::rename(path.string() + ".new", path);
    installed_.push_back(name);
  }
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
  fs::path libdir_;
  std::vector<std::string> installed_;
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
    "[host_users]\nuid_min = 70000\nuid_max = 70999\ngroups = [\"users\"]\n";

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

// The host users in the file, or -1 when it does not parse.
long records_in(const std::string& path) {
  if (!fs::exists(path)) return 0;
  auto db = parse_userdb(testing::read_file(path));
  return db.ok() ? static_cast<long>(db->users.size()) : -1;
}

const HostUser* find(const UserDb& db, const std::string& login) {
  for (const auto& u : db.users)
    if (u.login == login) return &u;
  return nullptr;
}

class HostUserLoginTest : public ::testing::Test {
 protected:
  // Whether a stand-in directory follows machineid on the nsswitch lines.
  virtual bool directory_after() const { return false; }
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root: sshd and the system's NSS configuration";
    ASSERT_TRUE(fs::exists("/usr/sbin/sshd")) << "needs sshd";
    nss = std::make_unique<SystemNss>(directory_after());
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
  // `command` with the module pointed at this harness, as root.
  testing::RunResult as_root(std::vector<std::string> command, std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {"/usr/bin/env", "MACHINEID_NSS_DB=" + h->file("state/users.db"),
                                     "MACHINEID_NSS_SOCKET=" + h->socket()};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.insert(argv.end(), command.begin(), command.end());
    return testing::run(argv);
  }
  // The provisional entry sshd would be given, asked as the NSS module asks.
  std::optional<std::uint32_t> provisional(const std::string& login) {
    auto reply = call_daemon(h->socket(), encode(UserRequest{login}, MessageKind::provisional_user), 2000);
    if (!reply.ok()) return std::nullopt;
    auto entry = decode_host_user_reply(*reply);
    if (!entry.ok() || !entry->found) return std::nullopt;
    return entry->uid;
  }
  DecideReply decide(const std::string& bot, const std::string& login) {
    std::string cert = h->keygen().sign(bot_cert(*h, key, bot, login));
    std::istringstream in(testing::read_file(cert));
    std::string type, b64;
    in >> type >> b64;
    auto reply = call_daemon(h->socket(), encode(DecideRequest{Asker::cli, login, type, b64, ""}), 2000);
    EXPECT_TRUE(reply.ok());
    auto decision = reply.ok() ? decode_decide_reply(*reply) : Result<DecideReply>(reply.error());
    EXPECT_TRUE(decision.ok());
    return decision.ok() ? *decision : DecideReply{};
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
  EXPECT_GE(u->uid, 70000u);
  EXPECT_LE(u->uid, 70999u);
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

TEST_F(HostUserLoginTest, LoginTheCertificateDoesNotAllowLeavesNothingBehind) {
  CommandResult r = login("ci", "bot-ci", "true");
  ASSERT_EQ(r.status, 0) << describe(r);
  // bot-ci's certificate does not name bot-intruder: sshd looks the name up
  // (a provisional entry), the daemon denies, nothing is stored.
  std::string cert = h->keygen().sign(bot_cert(*h, key, "ci", "bot-ci"));
  CommandResult denied = h->ssh(key, cert, "bot-intruder", "true");
  EXPECT_EQ(denied.status, 255) << describe(denied);
  UserDb state = db();
  EXPECT_EQ(find(state, "bot-intruder"), nullptr);
  EXPECT_EQ(records_in(h->file("state/users.db")), 1) << "something was stored for bot-intruder";
}

TEST_F(HostUserLoginTest, UnauthenticatedFloodStoresNothingAndABotStillLogsIn) {
  // Hundreds of names nobody authenticates for, as an attacker sends them:
  // sshd looks each up before asking for any key.
  constexpr int kNames = 300, kParallel = 4;
  auto marks = h->log_marks();
  std::vector<std::thread> clients;
  std::atomic<int> next{0};
  for (int t = 0; t < kParallel; ++t)
    clients.emplace_back([&] {
      for (int i; (i = next++) < kNames;)
        testing::run({"/usr/bin/ssh", "-F", "/dev/null", "-p", std::to_string(h->port()), "-o",
                      "PreferredAuthentications=none", "-o", "BatchMode=yes", "-o",
                      "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
                      "LogLevel=ERROR", "-o", "ConnectTimeout=5",
                      "x-" + std::to_string(i) + "@127.0.0.1", "true"});
    });
  for (auto& c : clients) c.join();
  EXPECT_FALSE(fs::exists(h->file("state/users.db")))
      << "a lookup before authentication was stored";
  // sshd was answered (a provisional entry), not told the names are invalid.
  std::string logs = h->logs_since(marks);
  EXPECT_EQ(logs.find("Invalid user x-"), std::string::npos) << logs.substr(0, 2000);
  // Nothing is used up: a bot with a valid certificate logs in.
  CommandResult r = login("ci", "bot-ci", "id -u");
  ASSERT_EQ(r.status, 0) << describe(r);
  UserDb state = db();
  ASSERT_EQ(state.users.size(), 1u);
  EXPECT_EQ(r.out, std::to_string(state.users[0].uid) + "\n");
}

TEST_F(HostUserLoginTest, RootToolsAndSetuidProgramsSeeNoProvisionalEntry) {
  // What sshd would be given for the name...
  ASSERT_TRUE(provisional("bot-new").has_value());
  // ...no root tool gets: getent, chown, id all say there is no such user.
  EXPECT_EQ(as_root({"getent", "passwd", "bot-new"}).status, 2);
  std::string file = h->file("owned");
  testing::write_file(file, "");
  EXPECT_NE(as_root({"chown", "bot-new", file}).status, 0) << "chown found a phantom user";
  EXPECT_NE(as_root({"id", "bot-new"}).status, 0);
  // A setuid program run by nobody: effective root, nobody's real uid.
  std::string sudo_like = h->file("getent-setuid");
  fs::copy_file("/usr/bin/getent", sudo_like);
  ASSERT_EQ(chmod(sudo_like.c_str(), 04755), 0);
  auto setuid_run = as_root({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             sudo_like, "passwd", "bot-new"},
                            {"MACHINEID_NSS_SSHD=" + sudo_like});
  EXPECT_EQ(setuid_run.status, 2) << setuid_run.output;
  // The control: the same getent, named as sshd and run by root, is answered.
  EXPECT_EQ(as_root({"getent", "passwd", "bot-new"}, {"MACHINEID_NSS_SSHD=/usr/bin/getent"}).status, 0);
  EXPECT_FALSE(fs::exists(h->file("state/users.db")));
}

// A directory source (libnss_midstub) listed *after* machineid.
class HostUserDirectoryTest : public HostUserLoginTest {
 protected:
  bool directory_after() const override { return true; }
};

TEST_F(HostUserDirectoryTest, NamesAndIdsOfALaterSourceAreNeverAnsweredOrAllocated) {
  auto held = provisional("bot-ci");
  ASSERT_TRUE(held.has_value());
  // The directory has a user of its own, with exactly the uid bot-ci would get.
  testing::write_file(kStubFile, "passwd dir-user " + std::to_string(*held) + "\n");
  auto entry = as_root({"getent", "passwd", "dir-user"}, {"MACHINEID_NSS_SSHD=/usr/bin/getent"});
  ASSERT_EQ(entry.status, 0) << entry.output;
  EXPECT_EQ(entry.output, "dir-user:*:" + std::to_string(*held) + ":" + std::to_string(*held) +
                              "::/home/directory/dir-user:/bin/sh\n")
      << "machineid answered a name the directory has";
  auto now_held = provisional("bot-ci");
  ASSERT_TRUE(now_held.has_value());
  EXPECT_NE(*now_held, *held) << "the directory's uid was answered";
  // The first login finds the uid in the directory and records it (sshd may
  // have looked bot-ci up before the directory had it): denied once.
  CommandResult first = login("ci", "bot-ci", "id -u");
  EXPECT_EQ(first.status, 255) << describe(first);
  CommandResult again = login("ci", "bot-ci", "id -u");
  ASSERT_EQ(again.status, 0) << describe(again);
  EXPECT_EQ(again.out, std::to_string(*now_held) + "\n");
  UserDb state = db();
  ASSERT_NE(find(state, "bot-ci"), nullptr);
  EXPECT_EQ(find(state, "bot-ci")->uid, *now_held);
  bool recorded = false;
  for (const auto& t : state.taken) recorded |= t.id == *held && t.kind == TakenId::Kind::other;
  EXPECT_TRUE(recorded) << "users.db does not mark the directory's uid taken";
}

TEST_F(HostUserDirectoryTest, UidTakenByAnotherSourceBetweenLookupAndAllowDeniesThenTheNextAttemptWorks) {
  // sshd's lookup...
  auto held = provisional("bot-ci");
  ASSERT_TRUE(held.has_value());
  // ...then the directory gives that uid to someone...
  testing::write_file(kStubFile, "passwd late " + std::to_string(*held) + "\n");
  // ...then the allow: the session would run with the directory user's uid.
  DecideReply denied = decide("ci", "bot-ci");
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.reason, "role");
  EXPECT_NE(denied.detail.find("known to another NSS source"), std::string::npos) << denied.detail;
  // The next attempt: a new lookup skips the recorded uid, and is allowed with it.
  auto next = provisional("bot-ci");
  ASSERT_TRUE(next.has_value());
  EXPECT_NE(*next, *held);
  CommandResult r = login("ci", "bot-ci", "id -u");
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(r.out, std::to_string(*next) + "\n");
}

TEST_F(HostUserLoginTest, UnknownLoginGrantedOnlyWithoutCreateHostUserModeIsDenied) {
  h->write_role("plain", R"(kind: role
version: v7
metadata:
  name: plain
spec:
  allow:
    logins: ['{{internal.logins}}']
    node_labels: {'*': '*'}
)");
  std::this_thread::sleep_for(500ms);  // the daemon reloads on its own
  CertSpec spec = bot_cert(*h, key, "plain", "bot-plain");
  spec.options[0] = R"(extension:teleport-roles={"version":"v1","roles":["plain"]})";
  std::istringstream in(testing::read_file(h->keygen().sign(spec)));
  std::string type, b64;
  in >> type >> b64;
  auto reply = call_daemon(h->socket(), encode(DecideRequest{Asker::cli, "bot-plain", type, b64, ""}), 2000);
  ASSERT_TRUE(reply.ok());
  auto decision = decode_decide_reply(*reply);
  ASSERT_TRUE(decision.ok());
  EXPECT_FALSE(decision->allowed);
  EXPECT_EQ(decision->reason, "role");
  EXPECT_NE(decision->detail.find("create_host_user_mode"), std::string::npos) << decision->detail;
  EXPECT_EQ(find(db(), "bot-plain"), nullptr);
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

  // Back again at once: a connection that resolved bot-ci before the
  // forget may still hold the old uid, so no new account is made yet
  // (once the provisional window has passed, it gets a new uid: see
  // HostUsersTest.ForgottenUserIsRetiredAndItsUidNeverGivenAgain).
  CommandResult again = login("ci", "bot-ci", "id -u");
  EXPECT_EQ(again.status, 255) << describe(again);
  EXPECT_NE(again.out, old_uid);
  EXPECT_TRUE(nlohmann::json::parse(ctl({"users", "--json"}).output)["users"].empty());
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
  // A wide range: with a thousand new logins in a few seconds, a narrow one
  // would make some collide with another's fresh uid, which denies them
  // (see host_users.h); this test is about crashes.
  options.daemon_toml = "[host_users]\nuid_min = 100000\nuid_max = 2000000000\n";
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
