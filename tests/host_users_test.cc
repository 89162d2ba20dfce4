// The daemon's host-user allocator (verifierd/host_users.h) against a
// users.db and /etc/passwd and /etc/group stand-ins in a temporary
// directory: which uid a login gets, that it keeps it, and what is refused.
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../verifierd/host_users.h"
#include "fixtures.h"
#include "machineid/userdb.h"

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
    config.uid_min = 61000;
    config.uid_max = 61009;
    config.home = "/home/{login}";
    config.shell = "/bin/sh";
  }

  HostUsers open() {
    HostUsers h(db(), dir.file("passwd"), dir.file("group"));
    auto loaded = h.load();
    EXPECT_TRUE(loaded.ok()) << loaded.error().message;
    return h;
  }
  std::string db() const { return dir.file("state/users.db"); }

  std::uint32_t grant(HostUsers& h, const std::string& login, std::vector<std::string> groups = {},
                      std::optional<std::string> trait = std::nullopt, std::int64_t now = kNow) {
    auto g = h.grant(GrantRequest{login, std::move(groups), std::move(trait), "ci"}, config, now);
    EXPECT_TRUE(g.ok()) << g.error().message;
    EXPECT_TRUE(g.ok() && g->uid) << login << " got no host user";
    return g.ok() && g->uid ? *g->uid : 0;
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

TEST_F(HostUsersTest, FirstHostUserGetsTheLowestFreeUidOfTheRange) {
  HostUsers h = open();
  EXPECT_EQ(grant(h, "bot-ci"), 61000u);
  const auto* u = on_disk("bot-ci");
  ASSERT_NE(u, nullptr);
  EXPECT_FALSE(u->pending);
  EXPECT_EQ(u->home, "/home/bot-ci");
  EXPECT_EQ(u->shell, "/bin/sh");
  EXPECT_EQ(u->bot, "ci");
  EXPECT_EQ(u->first_login, kNow);
}

TEST_F(HostUsersTest, UidsAndGidsInEtcPasswdAndGroupAreSkipped) {
  HostUsers h = open();
  EXPECT_EQ(grant(h, "a"), 61000u);
  EXPECT_EQ(grant(h, "b"), 61002u) << "61001 is alice's in passwd";
  EXPECT_EQ(grant(h, "c"), 61004u) << "61003 is the ops group's gid";
}

TEST_F(HostUsersTest, LoginInEtcPasswdGetsNoHostUserAndIsNeverShadowed) {
  HostUsers h = open();
  auto g = h.grant(GrantRequest{"alice", {}, std::nullopt, ""}, config, kNow);
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->uid);
  EXPECT_FALSE(h.reserve("alice", config, kNow).found);
  EXPECT_EQ(on_disk("alice"), nullptr);
}

TEST_F(HostUsersTest, LoginNamedLikeAGroupInEtcGroupIsRefused) {
  HostUsers h = open();
  auto g = h.grant(GrantRequest{"docker", {}, std::nullopt, ""}, config, kNow);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message.find("group named 'docker'"), std::string::npos) << g.error().message;
}

TEST_F(HostUsersTest, UidIsTheSameAfterTheDaemonRestarts) {
  std::uint32_t first;
  {
    HostUsers h = open();
    first = grant(h, "bot-ci");
    grant(h, "bot-two");
  }
  HostUsers again = open();
  EXPECT_EQ(grant(again, "bot-ci", {}, std::nullopt, kNow + 3600), first);
  EXPECT_EQ(grant(again, "bot-three"), 61004u);
}

TEST_F(HostUsersTest, HostUserUidTraitIsUsedWhenFree) {
  HostUsers h = open();
  EXPECT_EQ(grant(h, "bot-ci", {}, "70000"), 70000u);
  // Taken now: the next login asking for it gets one from the range.
  auto g = h.grant(GrantRequest{"bot-two", {}, "70000", ""}, config, kNow);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g->uid, 61000u);
  EXPECT_NE(g->note.find("taken"), std::string::npos) << g->note;
}

TEST_F(HostUsersTest, HostUserUidTraitNamingRootOrASystemOrLocalUidIsNotUsed) {
  HostUsers h = open();
  for (const char* trait : {"0", "999", "65534", "61001", "-5", "70000x", "4294967295"}) {
    auto g = h.grant(
        GrantRequest{
            "bot-" + std::string(trait[0] == '-' ? "neg" : trait).substr(0, 12), {}, trait, ""},
        config, kNow);
    ASSERT_TRUE(g.ok()) << trait << ": " << g.error().message;
    EXPECT_GE(*g->uid, config.uid_min) << trait;
    EXPECT_LE(*g->uid, config.uid_max) << trait;
    EXPECT_FALSE(g->note.empty()) << trait;
  }
}

TEST_F(HostUsersTest, FullRangeIsAClearErrorAndNeverWrapsAround) {
  config.uid_min = 61000;
  config.uid_max = 61002;  // 61001 is alice's: two free uids
  HostUsers h = open();
  EXPECT_EQ(grant(h, "one"), 61000u);
  EXPECT_EQ(grant(h, "two"), 61002u);
  ASSERT_TRUE(h.forget("one", kNow).ok());  // 61000 retired, not free
  auto g = h.grant(GrantRequest{"three", {}, std::nullopt, ""}, config, kNow);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message.find("no free uid in [61000, 61002]"), std::string::npos)
      << g.error().message;
  EXPECT_FALSE(h.reserve("three", config, kNow).found);
  EXPECT_EQ(on_disk("three"), nullptr);
}

TEST_F(HostUsersTest, RangeEndingAtTheLargestUidDoesNotOverflow) {
  config.uid_min = machineid::kMaxHostUid - 1;
  config.uid_max = machineid::kMaxHostUid;
  HostUsers h = open();
  EXPECT_EQ(grant(h, "one"), machineid::kMaxHostUid - 1);
  EXPECT_EQ(grant(h, "two"), machineid::kMaxHostUid);
  EXPECT_FALSE(h.grant(GrantRequest{"three", {}, std::nullopt, ""}, config, kNow).ok());
}

TEST_F(HostUsersTest, ForgottenUserIsRetiredAndItsUidNeverGivenAgain) {
  HostUsers h = open();
  std::uint32_t old = grant(h, "bot-ci");
  ASSERT_TRUE(h.forget("bot-ci", kNow).ok());
  EXPECT_EQ(on_disk("bot-ci"), nullptr);
  ASSERT_EQ(disk.retired.size(), 1u);
  EXPECT_EQ(disk.retired[0].uid, old);
  // The same login coming back is a new account with a new uid.
  std::uint32_t again = grant(h, "bot-ci");
  EXPECT_NE(again, old);
  EXPECT_NE(grant(h, "bot-other"), old);
  EXPECT_FALSE(h.forget("never-was", kNow).ok());
}

TEST_F(HostUsersTest, ReservationIsPendingUntilGrantedAndKeepsItsUid) {
  HostUsers h = open();
  auto r = h.reserve("bot-ci", config, kNow);
  ASSERT_TRUE(r.found) << r.message;
  EXPECT_EQ(r.uid, 61000u);
  EXPECT_EQ(r.gid, 61000u);
  EXPECT_EQ(r.home, "/home/bot-ci");
  const auto* pending = on_disk("bot-ci");
  ASSERT_NE(pending, nullptr);
  EXPECT_TRUE(pending->pending);
  // Asked again, the same reservation.
  EXPECT_EQ(h.reserve("bot-ci", config, kNow + 1).uid, 61000u);
  // sshd already holds 61000: the grant keeps it, whatever the trait says.
  auto g = h.grant(GrantRequest{"bot-ci", {}, "70000", ""}, config, kNow + 2);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g->uid, 61000u);
  EXPECT_NE(g->note.find("sshd already holds"), std::string::npos) << g->note;
  EXPECT_FALSE(on_disk("bot-ci")->pending);
}

TEST_F(HostUsersTest, ReservationSurvivesARestartOfTheDaemon) {
  {
    HostUsers h = open();
    EXPECT_EQ(h.reserve("first", config, kNow).uid, 61000u);
    EXPECT_EQ(h.reserve("second", config, kNow).uid, 61002u);
  }
  HostUsers again = open();
  EXPECT_EQ(grant(again, "second", {}, std::nullopt, kNow + 10), 61002u);
}

TEST_F(HostUsersTest, LapsedReservationFreesItsUid) {
  HostUsers h = open();
  EXPECT_EQ(h.reserve("guess", config, kNow).uid, 61000u);
  EXPECT_EQ(h.reservation_count(kNow), 1u);
  std::int64_t later = kNow + kReservationSeconds;
  EXPECT_EQ(h.reservation_count(later), 0u);
  EXPECT_EQ(grant(h, "bot-ci", {}, std::nullopt, later), 61000u);
  EXPECT_EQ(on_disk("guess"), nullptr);
}

TEST_F(HostUsersTest, ReservationsAreBoundedInNumber) {
  config.uid_max = 64999;
  HostUsers h = open();
  for (std::size_t i = 0; i < kMaxReservations; ++i)
    ASSERT_TRUE(h.reserve("guess" + std::to_string(i), config, kNow).found) << i;
  auto refused = h.reserve("one-more", config, kNow);
  EXPECT_FALSE(refused.found);
  EXPECT_NE(refused.message.find("reservations are pending"), std::string::npos) << refused.message;
  // Granting is not bounded by them, and lapsed ones make room again.
  EXPECT_NE(grant(h, "bot-ci"), 0u);
  EXPECT_TRUE(h.reserve("one-more", config, kNow + kReservationSeconds).found);
}

TEST_F(HostUsersTest, NamesThatAreNotValidLoginsAreRefused) {
  HostUsers h = open();
  for (const char* bad :
       {"", "-rf", "../etc", "a:b", "a b", "1234", "x23456789012345678901234567890123"}) {
    EXPECT_FALSE(h.reserve(bad, config, kNow).found) << bad;
    EXPECT_FALSE(h.grant(GrantRequest{bad, {}, std::nullopt, ""}, config, kNow).ok()) << bad;
  }
  auto db = machineid::read_userdb(this->db());
  ASSERT_TRUE(db.ok());
  EXPECT_TRUE(db->users.empty());
}

TEST_F(HostUsersTest, GroupsComeFromEtcGroupOrAreMadeOnceAndSharedByMembers) {
  HostUsers h = open();
  grant(h, "bot-ci", {"docker", "builders", "bot-ci", "docker"});
  const auto* ci = on_disk("bot-ci");
  ASSERT_NE(ci, nullptr);
  ASSERT_EQ(disk.groups.size(), 1u);
  EXPECT_EQ(disk.groups[0].name, "builders");
  std::uint32_t builders = disk.groups[0].gid;
  EXPECT_EQ(builders, 61002u) << "the next free id after bot-ci's 61000 and alice's 61001";
  EXPECT_EQ(ci->gids, (std::vector<std::uint32_t>{999, builders}));
  grant(h, "bot-two", {"builders"});
  EXPECT_EQ(on_disk("bot-two")->gids, (std::vector<std::uint32_t>{builders}));
  EXPECT_EQ(disk.groups.size(), 1u);
  // A later login with other roles: the groups follow the roles.
  grant(h, "bot-ci", {"ops"}, std::nullopt, kNow + 10);
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
  grant(h, "bot-ci", {}, std::nullopt, kNow + kLastLoginResolution - 1);
  EXPECT_EQ(inode(), first);
  EXPECT_EQ(std::filesystem::last_write_time(db()), before);
  grant(h, "bot-ci", {}, std::nullopt, kNow + kLastLoginResolution);
  EXPECT_NE(inode(), first);
  EXPECT_EQ(on_disk("bot-ci")->last_login, kNow + kLastLoginResolution);
}

TEST_F(HostUsersTest, CorruptDatabaseMakesHostUsersUnavailableAndIsNeverOverwritten) {
  {
    HostUsers h = open();
    grant(h, "bot-ci");
  }
  std::string bytes = machineid::testing::read_file(db());
  bytes[bytes.size() / 2] ^= 1;
  write_file(db(), bytes);
  HostUsers h(db(), dir.file("passwd"), dir.file("group"));
  EXPECT_FALSE(h.load().ok());
  EXPECT_FALSE(h.available());
  EXPECT_NE(h.error().find("checksum"), std::string::npos) << h.error();
  EXPECT_FALSE(h.reserve("bot-two", config, kNow).found);
  EXPECT_FALSE(h.grant(GrantRequest{"bot-two", {}, std::nullopt, ""}, config, kNow).ok());
  EXPECT_EQ(machineid::testing::read_file(db()), bytes);
}

TEST_F(HostUsersTest, ListNamesUsersGroupsReservationsAndRetiredUids) {
  HostUsers h = open();
  grant(h, "bot-ci", {"docker", "builders"});
  grant(h, "gone");
  ASSERT_TRUE(h.forget("gone", kNow).ok());
  h.reserve("guess", config, kNow);
  auto j = nlohmann::json::parse(h.list_json(kNow));
  ASSERT_EQ(j["users"].size(), 1u);
  EXPECT_EQ(j["users"][0]["login"], "bot-ci");
  EXPECT_EQ(j["users"][0]["uid"], 61000);
  EXPECT_EQ(j["users"][0]["groups"], nlohmann::json({"docker", "builders"}));
  EXPECT_EQ(j["users"][0]["bot"], "ci");
  EXPECT_EQ(j["users"][0]["first_login"], kNow);
  EXPECT_EQ(j["reservations"].size(), 1u);
  ASSERT_EQ(j["retired"].size(), 1u);
  EXPECT_EQ(j["retired"][0]["login"], "gone");
}

}  // namespace
}  // namespace verifierd
