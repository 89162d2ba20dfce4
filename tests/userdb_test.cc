// users.db: what the daemon writes is what the NSS module reads, replaced
// atomically, and a torn or corrupt file is never taken for a database.
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "fixtures.h"
#include "machineid/userdb.h"
#include "machineid/userdb_format.h"

namespace machineid {
namespace {

using testing::TempDir;

HostUser user(const std::string& login, std::uint32_t uid, std::vector<std::uint32_t> gids = {}) {
  HostUser u;
  u.login = login;
  u.uid = uid;
  u.gids = std::move(gids);
  u.home = "/home/" + login;
  u.shell = "/bin/sh";
  u.first_login = 1700000000;
  u.last_login = 1700000100;
  return u;
}

UserDb sample() {
  UserDb db;
  db.users = {user("bot-ci", 61001, {27, 61003}), user("alice", 61000, {61003}),
              user("deploy", 61002)};
  HostUser pending = user("guess", 61004);
  pending.pending = true;
  pending.first_login = pending.last_login = 0;
  pending.expires = 1700000400;
  db.users.push_back(pending);
  db.users[0].bot = "ci";
  db.groups = {HostGroup{"builders", 61003}};
  db.retired = {RetiredUser{"gone", 60999, 1690000000}};
  return db;
}

std::string bytes_of(const UserDb& db) {
  auto bytes = serialize_userdb(db);
  EXPECT_TRUE(bytes.ok()) << bytes.error().message;
  return bytes.ok() ? *bytes : "";
}

// The C reader over a copy of `bytes` kept aligned as mmap would.
struct Opened {
  std::vector<std::uint64_t> storage;
  mid_userdb db{};
  int rc = 0;
  explicit Opened(const std::string& bytes) : storage((bytes.size() + 7) / 8) {
    std::memcpy(storage.data(), bytes.data(), bytes.size());
    rc = mid_userdb_open(&db, storage.data(), bytes.size());
  }
};

TEST(UserDbTest, WhatIsWrittenReadsBackTheSame) {
  UserDb db = sample();
  auto back = parse_userdb(bytes_of(db));
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->users.size(), 4u);
  // Stored sorted by name.
  EXPECT_EQ(back->users[0].login, "alice");
  const HostUser& ci = back->users[1];
  EXPECT_EQ(ci.login, "bot-ci");
  EXPECT_EQ(ci.uid, 61001u);
  EXPECT_EQ(ci.gids, (std::vector<std::uint32_t>{27, 61003}));
  EXPECT_EQ(ci.home, "/home/bot-ci");
  EXPECT_EQ(ci.shell, "/bin/sh");
  EXPECT_EQ(ci.bot, "ci");
  EXPECT_EQ(ci.first_login, 1700000000);
  EXPECT_EQ(ci.last_login, 1700000100);
  EXPECT_FALSE(ci.pending);
  EXPECT_TRUE(back->users[3].pending);
  EXPECT_EQ(back->users[3].expires, 1700000400);
  ASSERT_EQ(back->groups.size(), 1u);
  EXPECT_EQ(back->groups[0].name, "builders");
  ASSERT_EQ(back->retired.size(), 1u);
  EXPECT_EQ(back->retired[0].uid, 60999u);
  EXPECT_EQ(back->retired[0].login, "gone");
}

TEST(UserDbTest, ReaderFindsUsersByNameAndUidAndGroupsByNameAndGid) {
  Opened f(bytes_of(sample()));
  ASSERT_EQ(f.rc, MID_USERDB_OK);
  const mid_userdb_user* ci = mid_userdb_user_by_name(&f.db, "bot-ci");
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ci->uid, 61001u);
  EXPECT_EQ(mid_userdb_user_by_uid(&f.db, 61002), mid_userdb_user_by_name(&f.db, "deploy"));
  EXPECT_EQ(mid_userdb_user_by_name(&f.db, "nobody-here"), nullptr);
  EXPECT_EQ(mid_userdb_user_by_uid(&f.db, 60999), nullptr) << "retired uids are nobody's";
  const mid_userdb_group* g = mid_userdb_group_by_name(&f.db, "builders");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(mid_userdb_group_by_gid(&f.db, 61003), g);
  // Members: the active users that hold the group, not the pending one.
  std::vector<std::string> members;
  for (std::uint32_t i = 0; i < g->nmembers; ++i)
    members.push_back(mid_userdb_string(&f.db, f.db.users[f.db.ids[g->members + i]].name));
  EXPECT_EQ(members, (std::vector<std::string>{"alice", "bot-ci"}));
}

TEST(UserDbTest, HundredThousandUsersAreFoundByBinarySearch) {
  UserDb db;
  for (std::uint32_t i = 0; i < 100000; ++i)
    db.users.push_back(user("u" + std::to_string(i), 100000 + i));
  Opened f(bytes_of(db));
  ASSERT_EQ(f.rc, MID_USERDB_OK);
  for (std::uint32_t i : {0u, 1u, 4242u, 99999u}) {
    const mid_userdb_user* u = mid_userdb_user_by_name(&f.db, ("u" + std::to_string(i)).c_str());
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->uid, 100000 + i);
    EXPECT_EQ(mid_userdb_user_by_uid(&f.db, 100000 + i), u);
  }
}

TEST(UserDbTest, EveryFlippedByteIsRejected) {
  std::string good = bytes_of(sample());
  for (std::size_t at = 0; at < good.size(); ++at) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x20);
    EXPECT_FALSE(parse_userdb(bad).ok()) << "flipped byte " << at << " of " << good.size();
  }
}

TEST(UserDbTest, EveryTruncationAndAnAppendedByteAreRejected) {
  std::string good = bytes_of(sample());
  for (std::size_t size = 0; size < good.size(); ++size) {
    auto parsed = parse_userdb(good.substr(0, size));
    ASSERT_FALSE(parsed.ok()) << "truncated to " << size;
  }
  auto longer = parse_userdb(good + '\0');
  ASSERT_FALSE(longer.ok());
  EXPECT_NE(longer.error().message.find("size"), std::string::npos) << longer.error().message;
}

TEST(UserDbTest, WrongMagicOrVersionIsRejectedNamingWhy) {
  std::string good = bytes_of(sample());
  std::string other_magic = good;
  other_magic[0] = 'X';
  EXPECT_EQ(Opened(other_magic).rc, MID_USERDB_E_MAGIC);
  std::string other_version = good;
  other_version[16] = 2;  // version, right after magic and checksum
  EXPECT_EQ(Opened(other_version).rc, MID_USERDB_E_VERSION);
}

TEST(UserDbTest, ConsistentChecksumDoesNotMakeABadLayoutAcceptable) {
  // A writer bug, not corruption: an index out of range under a valid checksum.
  std::string bytes = bytes_of(sample());
  mid_userdb_header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  std::uint32_t bogus = 1000;
  std::memcpy(bytes.data() + h.users_by_uid.offset, &bogus, sizeof bogus);
  h.checksum = mid_userdb_checksum(bytes.data() + 16, bytes.size() - 16);
  std::memcpy(bytes.data(), &h, sizeof h);
  EXPECT_EQ(Opened(bytes).rc, MID_USERDB_E_LAYOUT);
}

TEST(UserDbTest, DuplicateNamesOrUidsAreNeverWritten) {
  UserDb names;
  names.users = {user("same", 61000), user("same", 61001)};
  EXPECT_FALSE(serialize_userdb(names).ok());
  UserDb uids;
  uids.users = {user("one", 61000), user("two", 61000)};
  EXPECT_FALSE(serialize_userdb(uids).ok());
  UserDb invalid;
  invalid.users = {user("bad:name", 61000)};
  EXPECT_FALSE(serialize_userdb(invalid).ok());
}

TEST(UserDbTest, LoginsThatCannotNameAHostUserAreInvalid) {
  for (const char* ok : {"bot-ci", "a", "_svc", "Deploy.2", "x234567890123456789012345678901z"})
    EXPECT_TRUE(valid_host_login(ok)) << ok;
  for (const char* bad : {"", "-x", ".x", "1abc", "a:b", "a/b", "a b", "a\nb", "root$",
                          "x2345678901234567890123456789012z"})
    EXPECT_FALSE(valid_host_login(bad)) << bad;
  EXPECT_FALSE(valid_host_login(std::string("a\0b", 3)));
}

TEST(UserDbTest, MissingFileIsAnEmptyDatabaseButAnUnreadableOneIsAnError) {
  TempDir dir;
  auto empty = read_userdb(dir.file("users.db"));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->users.empty());
  testing::write_file(dir.file("users.db"), "not a database");
  auto bad = read_userdb(dir.file("users.db"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(dir.file("users.db")), std::string::npos)
      << bad.error().message;
}

TEST(UserDbTest, WriteReplacesTheFileAtomicallyAndLeavesNoTemporaries) {
  TempDir dir;
  std::string path = dir.file("users.db"), stop = dir.file("stop");
  UserDb small;
  small.users = {user("alice", 61000)};
  UserDb large = sample();
  ASSERT_TRUE(write_userdb(path, small).ok());

  // A reader in another process opening the path over and over must only
  // ever see one complete version or the other.
  pid_t reader = fork();
  if (reader == 0) {
    while (access(stop.c_str(), F_OK) != 0) {
      auto db = read_userdb(path);
      if (!db.ok() || (db->users.size() != 1 && db->users.size() != 4)) _exit(1);
    }
    _exit(0);
  }
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(write_userdb(path, i % 2 ? small : large).ok());
  testing::write_file(stop, "");
  int status = 0;
  waitpid(reader, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the reader saw a partial file";

  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"stop", "users.db"}));
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                std::filesystem::perms::group_read | std::filesystem::perms::others_read);
}

}  // namespace
}  // namespace machineid
