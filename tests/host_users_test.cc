// The daemon's host users (verifierd/host_users.h) against a users.db and
// passwd and group stand-ins for the other NSS sources, in a temporary
// directory: the provisional entry sshd gets before authentication (stored
// nowhere), the account an allowed login makes permanent with that very
// uid, and what is refused or denied.
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../verifierd/host_users.h"
#include "fixtures.h"
#include "machineid/userdb.h"
#include <map>

namespace verifierd {
namespace {

using machineid::Config;
using machineid::testing::TempDir;
using machineid::testing::write_file;

constexpr std::int64_t kNow = 1700000000;

class HostUsersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir.file("passwd"),
               "root:x:0:0:root:/root:/bin/bash\n"
               "alice:x:61001:61001::/home/alice:/bin/bash\n"
               "+nisuser::::::\n");
    write_file(dir.file("group"),
               "root:x:0:\n"
               "docker:x:999:alice\n"
               "ops:x:61003:\n");
    mkdir(dir.file("state").c_str(), 0755);
    config.uid_min = 61000;
    config.uid_max = 61009;
    config.home = "/home/{login}";
    config.shell = "/bin/sh";
  }

  HostUsers open() {
    HostUsers h(db(), file_accounts(dir.file("passwd"), dir.file("group")));
    auto loaded = h.load();
    EXPECT_TRUE(loaded.ok()) << loaded.error().message;
    return h;
  }
  std::string db() const { return dir.file("state/users.db"); }

  // What sshd would be given for `login` right now.
  std::uint32_t looked_up(const HostUsers& h, const std::string& login) {
    auto r = h.provisional(login, config);
    EXPECT_TRUE(r.found) << login << ": " << r.message;
    EXPECT_EQ(r.uid, r.gid);
    return r.found ? r.uid : 0;
  }

  // sshd's lookup, then the allowed login: the uid it is given, which must
  // be the one sshd held. A first attempt whose sequence crosses ids another
  // source knows that users.db does not list yet is denied (they are
  // recorded); the client's next attempt is what counts here.
  std::uint32_t grant(HostUsers& h, const std::string& login, std::vector<std::string> groups = {},
                      std::optional<std::string> trait = std::nullopt, std::int64_t now = kNow) {
    std::uint32_t held = looked_up(h, login);
    GrantRequest request{login, groups, trait, "ci"};
    auto g = h.grant(request, config, now);
    if (!g.ok() && g.error().message.find("known to another NSS source") != std::string::npos) {
      held = looked_up(h, login);
      g = h.grant(request, config, now);
    }
    EXPECT_TRUE(g.ok()) << g.error().message;
    EXPECT_TRUE(g.ok() && g->uid) << login << " got no host user";
    std::uint32_t uid = g.ok() && g->uid ? *g->uid : 0;
    EXPECT_EQ(uid, held) << login << ": the session would run with another uid";
    return uid;
  }

  // The first uid of `login`'s sequence.
  std::uint32_t start_of(const std::string& login) const {
    return config.uid_min + login_hash(login) % (config.uid_max - config.uid_min + 1);
  }
  std::uint32_t after(std::uint32_t uid) const { return uid == config.uid_max ? config.uid_min : uid + 1; }

  // Two distinct valid logins whose sequences start at the same uid.
  std::pair<std::string, std::string> colliding() const {
    std::map<std::uint32_t, std::string> seen;
    for (int i = 0;; ++i) {
      std::string name = "bot-" + std::to_string(i);
      auto [it, fresh] = seen.emplace(start_of(name), name);
      if (!fresh) return {it->second, name};
    }
  }
  // A valid login whose sequence starts at `uid`.
  std::string starting_at(std::uint32_t uid) const {
    for (int i = 0;; ++i)
      if (std::string name = "bot-" + std::to_string(i); start_of(name) == uid) return name;
  }

  const machineid::HostUser* on_disk(const std::string& login) {
    auto read = machineid::read_userdb(db());
    EXPECT_TRUE(read.ok());
    disk = read.ok() ? *read : machineid::UserDb{};
    for (const auto& u : disk.users)
      if (u.login == login) return &u;
    return nullptr;
  }

  TempDir dir;
  Config::HostUsers config;
  machineid::UserDb disk;
};


TEST_F(HostUsersTest, ProvisionalEntryIsAPureFunctionOfTheLoginAndWritesNothing) {
  config.uid_max = 61999;
  HostUsers h = open();
  auto r = h.provisional("bot-ci", config);
  ASSERT_TRUE(r.found) << r.message;
  EXPECT_EQ(r.uid, start_of("bot-ci"));
  EXPECT_EQ(r.gid, r.uid);
  EXPECT_EQ(r.name, "bot-ci");
  EXPECT_EQ(r.home, "/home/bot-ci");
  EXPECT_EQ(r.shell, "/bin/sh");
  EXPECT_EQ(h.provisional("bot-ci", config).uid, r.uid);
  EXPECT_EQ(open().provisional("bot-ci", config).uid, r.uid) << "the same after a restart";
  EXPECT_FALSE(std::filesystem::exists(db()));
}

TEST_F(HostUsersTest, ThousandsOfUnauthenticatedLookupsStoreNothingAndABotStillGetsItsUid) {
  config.uid_max = 61099;  // a hundred uids, far fewer than the names looked up
  HostUsers h = open();
  for (int i = 0; i < 5000; ++i)
    ASSERT_TRUE(h.provisional("x-" + std::to_string(i), config).found) << i;
  EXPECT_FALSE(std::filesystem::exists(db()));
  EXPECT_EQ(h.user_count(), 0u);
  std::uint32_t uid = grant(h, "bot-ci");
  EXPECT_EQ(uid, start_of("bot-ci") == 61001 ? 61002u : start_of("bot-ci"));
  ASSERT_NE(on_disk("bot-ci"), nullptr);
  EXPECT_EQ(disk.users.size(), 1u) << "only the authenticated login is stored";
}

TEST_F(HostUsersTest, AllowedLoginIsMadePermanentWithTheUidSshdWasGiven) {
  config.uid_max = 61999;
  HostUsers h = open();
  std::uint32_t uid = grant(h, "bot-ci");
  const auto* u = on_disk("bot-ci");
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->uid, uid);
  EXPECT_EQ(u->home, "/home/bot-ci");
  EXPECT_EQ(u->shell, "/bin/sh");
  EXPECT_EQ(u->bot, "ci");
  EXPECT_EQ(u->first_login, kNow);
  ASSERT_EQ(disk.taken.size(), 1u);
  EXPECT_EQ(disk.taken[0].id, uid);
  EXPECT_EQ(disk.taken[0].kind, machineid::TakenId::Kind::user);
  // From now on the lookup answers the permanent account.
  EXPECT_EQ(looked_up(h, "bot-ci"), uid);
}

TEST_F(HostUsersTest, IdsOtherSourcesKnowAreSkippedAsUidsAndAsGids) {
  HostUsers h = open();  // [61000, 61009]: alice's uid 61001, the ops group's 61003
  std::string at_alice = starting_at(61001), at_ops = starting_at(61003);
  EXPECT_EQ(looked_up(h, at_alice), 61002u);
  EXPECT_EQ(looked_up(h, at_ops), 61004u);
  // users.db does not list 61003 yet: sshd may have looked the login up
  // before it was another source's, so this attempt is denied and records it.
  EXPECT_FALSE(h.grant(GrantRequest{at_ops, {}, std::nullopt, ""}, config, kNow).ok());
  ASSERT_EQ(on_disk(at_ops), nullptr);
  ASSERT_EQ(disk.taken.size(), 1u);
  EXPECT_EQ(disk.taken[0].id, 61003u);
  EXPECT_EQ(grant(h, at_ops, {}, std::nullopt, kNow + 1), 61004u);

}

TEST_F(HostUsersTest, LoginOrGroupNameAnotherSourceKnowsIsNeverAnsweredOrMade) {
  HostUsers h = open();
  EXPECT_FALSE(h.provisional("alice", config).found);
  auto g = h.grant(GrantRequest{"alice", {}, std::nullopt, ""}, config, kNow);
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->uid) << "alice is another source's account";
  EXPECT_FALSE(h.provisional("docker", config).found);
  auto docker = h.grant(GrantRequest{"docker", {}, std::nullopt, ""}, config, kNow);
  ASSERT_FALSE(docker.ok());
  EXPECT_NE(docker.error().message.find("group named 'docker'"), std::string::npos)
      << docker.error().message;
  EXPECT_FALSE(std::filesystem::exists(db()));
}

TEST_F(HostUsersTest, UidTakenByAnotherSourceBetweenLookupAndAllowDeniesThenTheNextAttemptWorks) {
  HostUsers h = open();
  std::uint32_t held = looked_up(h, "bot-ci");
  // useradd, or a directory, takes that uid while sshd holds it.
  write_file(dir.file("passwd"), machineid::testing::read_file(dir.file("passwd")) +
                                     "late:x:" + std::to_string(held) + ":100::/home/late:/bin/sh\n");
  auto denied = h.grant(GrantRequest{"bot-ci", {}, std::nullopt, "ci"}, config, kNow);
  ASSERT_FALSE(denied.ok()) << "the session would run with another source's uid";
  EXPECT_NE(denied.error().message.find("known to another NSS source"), std::string::npos)
      << denied.error().message;
  ASSERT_EQ(on_disk("bot-ci"), nullptr);
  ASSERT_EQ(disk.taken.size(), 1u);
  EXPECT_EQ(disk.taken[0].id, held);
  EXPECT_EQ(disk.taken[0].kind, machineid::TakenId::Kind::other);
  // The next connection's lookup skips the recorded uid, and it is allowed.
  std::uint32_t next = looked_up(h, "bot-ci");
  EXPECT_NE(next, held);
  EXPECT_EQ(grant(h, "bot-ci", {}, std::nullopt, kNow + 1), next);
}

TEST_F(HostUsersTest, UidGivenToAnotherLoginBetweenLookupAndAllowDenies) {
  config.uid_max = 61099;
  HostUsers h = open();
  auto [first, second] = colliding();
  std::uint32_t held = looked_up(h, second);  // sshd holds this for `second`
  EXPECT_EQ(grant(h, first), held);           // ...when `first` is allowed with it
  auto denied = h.grant(GrantRequest{second, {}, std::nullopt, ""}, config, kNow + 5);
  ASSERT_FALSE(denied.ok()) << "the session would run with " << first << "'s uid";
  EXPECT_NE(denied.error().message.find("may hold it"), std::string::npos) << denied.error().message;
  EXPECT_EQ(on_disk(second), nullptr);
  // Once no connection can still hold it, the next uid is given.
  EXPECT_EQ(grant(h, second, {}, std::nullopt, kNow + kProvisionalSeconds), after(held) == 61001 ? 61002u : after(held));
}

TEST_F(HostUsersTest, ClockMovedFarAheadOrBackLosesNoUidAndLapsesNothing) {
  config.uid_max = 61999;
  HostUsers h = open();
  std::uint32_t held = looked_up(h, "bot-ci");
  constexpr std::int64_t kTenYears = 10 * 365 * 86400;
  EXPECT_EQ(grant(h, "bot-ci", {}, std::nullopt, kNow + kTenYears), held);
  EXPECT_EQ(grant(h, "bot-ci", {}, std::nullopt, kNow - kTenYears), held);
  EXPECT_EQ(looked_up(h, "bot-ci"), held);
  EXPECT_EQ(open().user_count(), 1u);

  // sshd holds a uid for `waiting`; years later (no timeout lapses, there
  // is nothing to lapse) `first` is allowed with that very uid. `waiting`
  // is then denied rather than let in with a uid its session does not have.
  auto [first, waiting] = colliding();
  std::uint32_t waiting_holds = looked_up(h, waiting);
  EXPECT_EQ(grant(h, first, {}, std::nullopt, kNow + kTenYears), waiting_holds);
  auto g = h.grant(GrantRequest{waiting, {}, std::nullopt, ""}, config, kNow + kTenYears + 1);
  EXPECT_FALSE(g.ok() && g->uid && *g->uid != waiting_holds)
      << waiting << " allowed with uid " << *g->uid << " while sshd holds " << waiting_holds;
  EXPECT_FALSE(g.ok());
}

TEST_F(HostUsersTest, UnknownLoginGrantedOnlyWithoutCreateHostUserModeIsDenied) {
  HostUsers h = open();
  GrantRequest request{"bot-ci", {}, std::nullopt, "ci"};
  request.create = false;
  auto g = h.grant(request, config, kNow);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message.find("create_host_user_mode"), std::string::npos) << g.error().message;
  EXPECT_FALSE(std::filesystem::exists(db()));
  // An account that exists is not touched by the mode.
  request.login = "alice";
  EXPECT_TRUE(h.grant(request, config, kNow).ok());
}

TEST_F(HostUsersTest, UidIsTheSameAfterTheDaemonRestarts) {
  config.uid_max = 61999;
  std::uint32_t first;
  {
    HostUsers h = open();
    first = grant(h, "bot-ci");
    grant(h, "bot-two");
  }
  HostUsers again = open();
  EXPECT_EQ(grant(again, "bot-ci", {}, std::nullopt, kNow + 3600), first);
  EXPECT_EQ(looked_up(again, "bot-ci"), first);
}

TEST_F(HostUsersTest, HostUserUidTraitNeverChoosesTheUid) {
  config.uid_max = 61999;
  HostUsers h = open();
  std::uint32_t held = looked_up(h, "bot-ci");
  auto g = h.grant(GrantRequest{"bot-ci", {}, "70000", ""}, config, kNow);
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(*g->uid, held) << "sshd resolved the login before authentication";
  EXPECT_NE(g->note.find("host_user_uid 70000 not used"), std::string::npos) << g->note;
  // The trait naming the very uid sshd holds is no news.
  auto again = h.grant(GrantRequest{"bot-ci", {}, std::to_string(held), ""}, config, kNow + 100);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->note, "");
}

TEST_F(HostUsersTest, FullRangeIsAClearErrorAndNeverGoesOutsideIt) {
  config.uid_min = 61000;
  config.uid_max = 61002;  // 61001 is alice's: two free uids
  HostUsers h = open();
  std::set<std::uint32_t> given = {grant(h, "one"), grant(h, "two", {}, std::nullopt, kNow + kProvisionalSeconds)};
  EXPECT_EQ(given, (std::set<std::uint32_t>{61000, 61002}));
  ASSERT_TRUE(h.forget("one", kNow).ok());  // retired, not free
  EXPECT_FALSE(h.provisional("three", config).found);
  auto g = h.grant(GrantRequest{"three", {}, std::nullopt, ""}, config, kNow + 2 * kProvisionalSeconds);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message.find("no free uid in [61000, 61002]"), std::string::npos)
      << g.error().message;
  EXPECT_EQ(on_disk("three"), nullptr);
}

TEST_F(HostUsersTest, RangeEndingAtTheLargestUidDoesNotOverflow) {
  config.uid_min = machineid::kMaxHostUid - 1;
  config.uid_max = machineid::kMaxHostUid;
  HostUsers h = open();
  std::set<std::uint32_t> given = {grant(h, "one"), grant(h, "two", {}, std::nullopt, kNow + kProvisionalSeconds)};
  EXPECT_EQ(given, (std::set<std::uint32_t>{machineid::kMaxHostUid - 1, machineid::kMaxHostUid}));
  EXPECT_FALSE(h.provisional("three", config).found);
}

TEST_F(HostUsersTest, ForgottenUserIsRetiredAndItsUidNeverGivenAgain) {
  config.uid_max = 61999;
  HostUsers h = open();
  std::uint32_t old = grant(h, "bot-ci");
  ASSERT_TRUE(h.forget("bot-ci", kNow).ok());
  EXPECT_EQ(on_disk("bot-ci"), nullptr);
  ASSERT_EQ(disk.retired.size(), 1u);
  EXPECT_EQ(disk.retired[0].uid, old);
  // The same login coming back is a new account with a new uid.
  EXPECT_NE(looked_up(h, "bot-ci"), old);
  EXPECT_NE(grant(h, "bot-ci", {}, std::nullopt, kNow + kProvisionalSeconds), old);
  EXPECT_FALSE(h.forget("never-was", kNow).ok());
}

TEST_F(HostUsersTest, NamesThatAreNotValidLoginsAreRefused) {
  HostUsers h = open();
  for (const char* bad :
       {"", "-rf", "../etc", "a:b", "a b", "1234", "x23456789012345678901234567890123"}) {
    EXPECT_FALSE(h.provisional(bad, config).found) << bad;
    EXPECT_FALSE(h.grant(GrantRequest{bad, {}, std::nullopt, ""}, config, kNow).ok()) << bad;
  }
  EXPECT_FALSE(std::filesystem::exists(db()));
}

TEST_F(HostUsersTest, GroupsComeFromOtherSourcesOrAreMadeOnceAndSharedByMembers) {
  config.uid_max = 61999;
  HostUsers h = open();
  grant(h, "bot-ci", {"docker", "builders", "bot-ci", "docker"});
  const auto* ci = on_disk("bot-ci");
  ASSERT_NE(ci, nullptr);
  ASSERT_EQ(disk.groups.size(), 1u);
  EXPECT_EQ(disk.groups[0].name, "builders");
  std::uint32_t builders = disk.groups[0].gid;
  EXPECT_GE(builders, config.uid_min);
  EXPECT_LE(builders, config.uid_max);
  EXPECT_NE(builders, ci->uid);
  EXPECT_EQ(ci->gids, (std::vector<std::uint32_t>{999, builders}));
  grant(h, "bot-two", {"builders"}, std::nullopt, kNow + kProvisionalSeconds);
  EXPECT_EQ(on_disk("bot-two")->gids, (std::vector<std::uint32_t>{builders}));
  EXPECT_EQ(disk.groups.size(), 1u);
  // A later login with other roles: the groups follow the roles.
  grant(h, "bot-ci", {"ops"}, std::nullopt, kNow + kProvisionalSeconds + 10);
  EXPECT_EQ(on_disk("bot-ci")->gids, (std::vector<std::uint32_t>{61003}));
}

TEST_F(HostUsersTest, RepeatedLoginWithinAMinuteDoesNotRewriteTheDatabase) {
  HostUsers h = open();
  grant(h, "bot-ci");
  auto before = std::filesystem::last_write_time(db());
  auto inode = [&] {
    struct stat st {};
    stat(db().c_str(), &st);
    return st.st_ino;
  };
  auto first = inode();
  std::string bytes = machineid::testing::read_file(db());
  grant(h, "bot-ci", {}, std::nullopt, kNow + kLastLoginResolution - 1);
  EXPECT_EQ(inode(), first);
  EXPECT_EQ(std::filesystem::last_write_time(db()), before);
  EXPECT_EQ(machineid::testing::read_file(db()), bytes);
  grant(h, "bot-ci", {}, std::nullopt, kNow + kLastLoginResolution);
  EXPECT_EQ(inode(), first) << "a change is written in place, not as a new file";
  EXPECT_NE(machineid::testing::read_file(db()), bytes);
  EXPECT_EQ(on_disk("bot-ci")->last_login, kNow + kLastLoginResolution);
}

// In a child with its own mount namespace, the state directory becomes a
// tiny full tmpfs; the parent's view (and the machine's) never changes.
TEST_F(HostUsersTest, FullDiskNeverDeniesAnExistingHostUserButDeniesANewOne) {
  config.uid_max = 61999;
  std::uint32_t uid;
  {
    HostUsers h = open();
    uid = grant(h, "bot-ci");
  }
  std::string bytes = machineid::testing::read_file(db());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto fail = [](int code) { _exit(code); };
    if (unshare(CLONE_NEWNS) != 0) fail(10);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail(11);
    std::string state = dir.file("state");
    if (mount("tmpfs", state.c_str(), "tmpfs", 0, "size=8k") != 0) fail(12);
    {
      // Padded to whole pages, so that no record fits in the slack of the
      // file's last one: every write that grows it fails.
      std::ofstream out(db(), std::ios::binary);
      out << bytes << std::string((4096 - bytes.size() % 4096) % 4096, '\0');
    }
    {
      std::ofstream filler(state + "/filler", std::ios::binary);
      std::string block(4096, 'x');
      for (int i = 0; i < 64 && filler; ++i) filler << block;
    }
    HostUsers h(db(), file_accounts(dir.file("passwd"), dir.file("group")));
    if (!h.load().ok()) fail(13);
    auto again = h.grant(GrantRequest{"bot-ci", {}, std::nullopt, "ci"}, config, kNow + 3600);
    if (!again.ok() || !again->uid || *again->uid != uid) fail(14);
    if (again->note.find("last login not recorded") == std::string::npos) fail(15);
    auto fresh = h.grant(GrantRequest{"bot-new", {}, std::nullopt, "ci"}, config, kNow + 3600);
    if (fresh.ok()) fail(16);  // a new account that is not on disk is no account
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the fail() codes in the child";
  EXPECT_EQ(machineid::testing::read_file(db()), bytes) << "the parent's state dir is untouched";
}

TEST_F(HostUsersTest, CorruptDatabaseMakesHostUsersUnavailableAndIsNeverOverwritten) {
  {
    HostUsers h = open();
    grant(h, "bot-ci");
  }
  std::string bytes = machineid::testing::read_file(db());
  bytes[bytes.size() / 2] ^= 1;
  write_file(db(), bytes);
  HostUsers h(db(), file_accounts(dir.file("passwd"), dir.file("group")));
  EXPECT_FALSE(h.load().ok());
  EXPECT_FALSE(h.available());
  EXPECT_NE(h.error().find("checksum"), std::string::npos) << h.error();
  EXPECT_FALSE(h.provisional("bot-two", config).found);
  EXPECT_FALSE(h.grant(GrantRequest{"bot-two", {}, std::nullopt, ""}, config, kNow).ok());
  // Another source's account needs no users.db: alice still logs in.
  auto alice = h.grant(GrantRequest{"alice", {}, std::nullopt, ""}, config, kNow);
  ASSERT_TRUE(alice.ok()) << alice.error().message;
  EXPECT_FALSE(alice->uid);
  EXPECT_EQ(machineid::testing::read_file(db()), bytes);
}

TEST_F(HostUsersTest, ListNamesUsersGroupsRetiredAndForeignIds) {
  config.uid_max = 61999;
  HostUsers h = open();
  grant(h, "bot-ci", {"builders"});
  grant(h, "gone", {}, std::nullopt, kNow + kProvisionalSeconds);
  ASSERT_TRUE(h.forget("gone", kNow).ok());
  for (int i = 0; i < 100; ++i) h.provisional("guess" + std::to_string(i), config);
  auto j = nlohmann::json::parse(h.list_json());
  ASSERT_EQ(j["users"].size(), 1u);
  EXPECT_EQ(j["users"][0]["login"], "bot-ci");
  EXPECT_EQ(j["users"][0]["groups"], nlohmann::json({"builders"}));
  EXPECT_EQ(j["users"][0]["bot"], "ci");
  EXPECT_EQ(j["users"][0]["first_login"], kNow);
  EXPECT_FALSE(j.contains("reservations"));
  ASSERT_EQ(j["retired"].size(), 1u);
  EXPECT_EQ(j["retired"][0]["login"], "gone");
  EXPECT_TRUE(j["taken_by_other_sources"].empty());
}

// At fleet scale a grant touches only its own record: the new account is
// one record appended and two 16-byte slots rewritten in a file of
// thousands, and the counters status reads follow.
TEST_F(HostUsersTest, GrantAmongThousandsOfHostUsersWritesOnlyItsOwnRecordAndSlots) {
  config.uid_max = 99999;
  machineid::UserDb many;
  for (std::uint32_t i = 0; i < 3000; ++i) {
    machineid::HostUser u;
    u.login = "fleet" + std::to_string(i);
    u.uid = 70000 + i;
    u.home = "/home/" + u.login;
    u.shell = "/bin/sh";
    u.first_login = u.last_login = kNow - 86400;
    many.users.push_back(std::move(u));
  }
  ASSERT_TRUE(machineid::write_userdb(db(), many).ok());
  HostUsers h = open();
  EXPECT_EQ(h.user_count(), 3000u);
  std::string before = machineid::testing::read_file(db());
  std::uint32_t uid = grant(h, "bot-new");
  std::string after = machineid::testing::read_file(db());
  ASSERT_GT(after.size(), before.size());
  EXPECT_LE(after.size() - before.size(), 128u) << "one record appended";
  int changed = 0;
  for (std::size_t i = 0; i < before.size(); i += 16) {
    std::size_t n = std::min<std::size_t>(16, before.size() - i);
    changed += before.compare(i, n, after, i, n) != 0;
  }
  EXPECT_EQ(changed, 2) << "its id slot and its name slot, nothing else";
  EXPECT_EQ(h.user_count(), 3001u);
  ASSERT_NE(on_disk("bot-new"), nullptr);
  EXPECT_EQ(on_disk("bot-new")->uid, uid);
  EXPECT_EQ(disk.users.size(), 3001u);
}

}  // namespace
}  // namespace verifierd
