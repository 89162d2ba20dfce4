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
  db.users[0].bot = "ci";
  db.groups = {HostGroup{"builders", 61003}};
  db.retired = {RetiredUser{"gone", 60999, 1690000000}};
  db.taken = {TakenId{61004, TakenId::Kind::other, 1700000200},
              TakenId{60999, TakenId::Kind::user, 1680000000},
              TakenId{61000, TakenId::Kind::user, 1700000000},
              TakenId{61001, TakenId::Kind::user, 1700000000},
              TakenId{61002, TakenId::Kind::user, 1700000000},
              TakenId{61003, TakenId::Kind::group, 1700000000}};
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
  ASSERT_EQ(back->users.size(), 3u);
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
  ASSERT_EQ(back->groups.size(), 1u);
  EXPECT_EQ(back->groups[0].name, "builders");
  ASSERT_EQ(back->retired.size(), 1u);
  EXPECT_EQ(back->retired[0].uid, 60999u);
  EXPECT_EQ(back->retired[0].login, "gone");
  // Sorted by id, kind and time kept.
  ASSERT_EQ(back->taken.size(), 6u);
  EXPECT_EQ(back->taken[0].id, 60999u);
  EXPECT_EQ(back->taken[5].id, 61004u);
  EXPECT_EQ(back->taken[5].kind, TakenId::Kind::other);
  EXPECT_EQ(back->taken[5].since, 1700000200);
}

// A version 1 file, as the reservation-era daemon wrote it: same records,
// a shorter header, and pending users. Made from a version 2 file of the
// same users, its taken section left as stray bytes version 1 ignores.
std::string version1_with_pending(const UserDb& db, const std::string& pending) {
  std::string bytes = bytes_of(db);
  mid_userdb_header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  h.version = 1;
  for (std::uint32_t i = 0; i < h.users.count; ++i) {
    mid_userdb_user u;
    std::size_t at = h.users.offset + i * sizeof u;
    std::memcpy(&u, bytes.data() + at, sizeof u);
    if (pending == bytes.data() + h.strings.offset + u.name) {
      u.flags = MID_USERDB_PENDING;
      u.unused = 1700000400;  // its expiry
    }
    std::memcpy(bytes.data() + at, &u, sizeof u);
  }
  std::memset(&h.taken, 0xff, sizeof h.taken);  // not part of a version 1 header
  std::memcpy(bytes.data(), &h, sizeof h);
  h.checksum = mid_userdb_checksum(bytes.data() + 16, bytes.size() - 16);
  std::memcpy(bytes.data(), &h, MID_USERDB_HEADER_V1_SIZE);
  return bytes;
}

TEST(UserDbTest, VersionOneFileReadsWithoutItsReservations) {
  std::string v1 = version1_with_pending(sample(), "deploy");
  Opened f(v1);
  ASSERT_EQ(f.rc, MID_USERDB_OK) << mid_userdb_strerror(f.rc);
  EXPECT_EQ(f.db.ntaken, 0u);
  const mid_userdb_user* deploy = mid_userdb_user_by_name(&f.db, "deploy");
  ASSERT_NE(deploy, nullptr);
  EXPECT_EQ(deploy->flags, MID_USERDB_PENDING) << "the NSS module serves no pending entry";
  auto back = parse_userdb(v1);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->users.size(), 2u) << "the reservation is gone";
  EXPECT_EQ(back->users[0].login, "alice");
  EXPECT_EQ(back->users[1].login, "bot-ci");
  // Every id the file gave (not the pending one's) is taken, since ever.
  std::vector<std::uint32_t> taken;
  for (const auto& t : back->taken) {
    taken.push_back(t.id);
    EXPECT_EQ(t.since, 0);
  }
  EXPECT_EQ(taken, (std::vector<std::uint32_t>{60999, 61000, 61001, 61003}));
}

TEST(UserDbTest, PendingUserInAVersionTwoFileIsRejected) {
  std::string bytes = bytes_of(sample());
  mid_userdb_header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  std::uint32_t pending = MID_USERDB_PENDING;
  std::memcpy(bytes.data() + h.users.offset + offsetof(mid_userdb_user, flags), &pending, sizeof pending);
  h.checksum = mid_userdb_checksum(bytes.data() + 16, bytes.size() - 16);
  std::memcpy(bytes.data(), &h, sizeof h);
  EXPECT_EQ(Opened(bytes).rc, MID_USERDB_E_LAYOUT);
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
  // Members: the users that hold the group.
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
  other_version[16] = 3;  // version, right after magic and checksum
  EXPECT_EQ(Opened(other_version).rc, MID_USERDB_E_VERSION);
  other_version[16] = 0;
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
      if (!db.ok() || (db->users.size() != 1 && db->users.size() != 3)) _exit(1);
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
