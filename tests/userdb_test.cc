// users.db: what the daemon writes is what the NSS module reads; a lookup
// reads only its own slots and record; a change writes only its own record
// and slots and survives kill -9 at any point; a torn or corrupt file is
// never taken for a database; version 1 and 2 files are migrated.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>

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

// Users by login and taken ids by id: the file keeps them in hash order.
UserDb sorted(UserDb db) {
  std::sort(db.users.begin(), db.users.end(),
            [](const auto& a, const auto& b) { return a.login < b.login; });
  std::sort(db.taken.begin(), db.taken.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return db;
}

// Appends fixed-layout records and strings to a zero-filled buffer.
class Builder {
 public:
  Builder() : bytes_(sizeof(mid_userdb_header), '\0') {}

  // Starts an 8-byte aligned section and returns its offset.
  std::uint32_t begin_section() {
    bytes_.resize((bytes_.size() + 7) / 8 * 8, '\0');
    return static_cast<std::uint32_t>(bytes_.size());
  }
  template <class T>
  void put(const T& record) {
    bytes_.append(reinterpret_cast<const char*>(&record), sizeof record);
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

// Deduplicated NUL-terminated strings; offset 0 is "".
class Strings {
 public:
  Strings() : pool_(1, '\0') {}
  std::uint32_t add(const std::string& s) {
    if (s.empty()) return 0;
    auto [it, added] = offsets_.try_emplace(s, static_cast<std::uint32_t>(pool_.size()));
    if (added) pool_.append(s).push_back('\0');
    return it->second;
  }
  const std::string& pool() const { return pool_; }

 private:
  std::string pool_;
  std::map<std::string, std::uint32_t> offsets_;
};

// A version 2 file of `db`, as the previous daemon wrote it.
std::string version2_bytes(const UserDb& db) {
  std::vector<std::uint32_t> users(db.users.size()), groups(db.groups.size());
  std::iota(users.begin(), users.end(), 0);
  std::iota(groups.begin(), groups.end(), 0);
  std::sort(users.begin(), users.end(),
            [&](auto a, auto b) { return db.users[a].login < db.users[b].login; });
  std::sort(groups.begin(), groups.end(),
            [&](auto a, auto b) { return db.groups[a].name < db.groups[b].name; });
  std::vector<std::uint32_t> position(db.users.size());  // index in db.users -> index in the file
  for (std::uint32_t i = 0; i < users.size(); ++i) position[users[i]] = i;

  Strings strings;
  std::vector<std::uint32_t> ids;
  mid_userdb_header h{};
  std::memcpy(h.magic, MID_USERDB_MAGIC, sizeof h.magic);
  h.version = 2;
  h.byte_order = MID_USERDB_BYTE_ORDER;

  Builder b;
  h.users = {b.begin_section(), static_cast<std::uint32_t>(users.size())};
  for (auto i : users) {
    const HostUser& u = db.users[i];
    mid_userdb_user r{};
    r.uid = u.uid;
    r.flags = 0;
    r.name = strings.add(u.login);
    r.gecos = strings.add(u.gecos);
    r.home = strings.add(u.home);
    r.shell = strings.add(u.shell);
    r.bot = strings.add(u.bot);
    r.gids = static_cast<std::uint32_t>(ids.size());
    r.ngids = static_cast<std::uint32_t>(u.gids.size());
    ids.insert(ids.end(), u.gids.begin(), u.gids.end());
    r.first_login = u.first_login;
    r.last_login = u.last_login;
    b.put(r);
  }
  std::vector<std::uint32_t> by_uid(users.size());
  std::iota(by_uid.begin(), by_uid.end(), 0);
  std::sort(by_uid.begin(), by_uid.end(),
            [&](auto a, auto b) { return db.users[users[a]].uid < db.users[users[b]].uid; });
  h.users_by_uid = {b.begin_section(), static_cast<std::uint32_t>(by_uid.size())};
  for (auto i : by_uid) b.put(i);

  h.groups = {b.begin_section(), static_cast<std::uint32_t>(groups.size())};
  for (auto i : groups) {
    const HostGroup& g = db.groups[i];
    mid_userdb_group r{};
    r.gid = g.gid;
    r.name = strings.add(g.name);
    r.members = static_cast<std::uint32_t>(ids.size());
    for (auto u : users)
      if (std::count(db.users[u].gids.begin(), db.users[u].gids.end(), g.gid) > 0)
        ids.push_back(position[u]);
    r.nmembers = static_cast<std::uint32_t>(ids.size()) - r.members;
    b.put(r);
  }
  std::vector<std::uint32_t> by_gid(groups.size());
  std::iota(by_gid.begin(), by_gid.end(), 0);
  std::sort(by_gid.begin(), by_gid.end(),
            [&](auto a, auto b) { return db.groups[groups[a]].gid < db.groups[groups[b]].gid; });
  h.groups_by_gid = {b.begin_section(), static_cast<std::uint32_t>(by_gid.size())};
  for (auto i : by_gid) b.put(i);

  std::vector<RetiredUser> retired = db.retired;
  std::sort(retired.begin(), retired.end(),
            [](const auto& a, const auto& b) { return a.uid < b.uid; });
  h.retired = {b.begin_section(), static_cast<std::uint32_t>(retired.size())};
  for (const auto& r : retired) {
    mid_userdb_retired rec{};
    rec.uid = r.uid;
    rec.name = strings.add(r.login);
    rec.retired_at = r.retired_at;
    b.put(rec);
  }

  h.ids = {b.begin_section(), static_cast<std::uint32_t>(ids.size())};
  for (auto id : ids) b.put(id);
  h.strings = {b.begin_section(), static_cast<std::uint32_t>(strings.pool().size())};
  b.bytes() += strings.pool();

  std::vector<TakenId> taken = db.taken;
  std::sort(taken.begin(), taken.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  h.taken = {b.begin_section(), static_cast<std::uint32_t>(taken.size())};
  for (const auto& t : taken) {
    mid_userdb_taken rec{};
    rec.id = t.id;
    rec.kind = static_cast<std::uint32_t>(t.kind);
    rec.since = t.since;
    b.put(rec);
  }
  b.begin_section();  // pads the file to a multiple of 8

  std::string& out = b.bytes();
  h.size = out.size();
  std::memcpy(out.data(), &h, sizeof h);
  h.checksum = mid_userdb_checksum(out.data() + 16, out.size() - 16);
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

// The version 1 and 2 reader over a copy of `bytes` kept aligned.
struct Opened {
  std::vector<std::uint64_t> storage;
  mid_userdb db{};
  int rc = 0;
  explicit Opened(const std::string& bytes) : storage((bytes.size() + 7) / 8) {
    std::memcpy(storage.data(), bytes.data(), bytes.size());
    rc = mid_userdb_open(&db, storage.data(), bytes.size());
  }
};

// A file of `bytes` read as the NSS module reads it: pread, piece by piece.
struct File {
  TempDir dir;
  int fd = -1;
  mid_userdb_header3 h{};
  int rc = 0;
  std::vector<std::uint64_t> buf = std::vector<std::uint64_t>(MID_USERDB_MAX_RECORD / 8);
  explicit File(const std::string& bytes) {
    testing::write_file(dir.file("users.db"), bytes);
    fd = open(dir.file("users.db").c_str(), O_RDONLY | O_CLOEXEC);
    rc = mid_userdb_read_header(fd, &h);
  }
  ~File() { close(fd); }
  int by_name(const char* name, mid_userdb_entry& e) {
    return mid_userdb_find(fd, &h, 1, name, 0, buf.data(), &e);
  }
  int by_id(std::uint32_t id, mid_userdb_entry& e) {
    return mid_userdb_find(fd, &h, 0, nullptr, id, buf.data(), &e);
  }
};

// Bytes this process has read through read(2) and pread(2) so far.
long long bytes_read() {
  std::ifstream io("/proc/self/io");
  std::string key;
  long long value = 0;
  while (io >> key >> value)
    if (key == "rchar:") return value;
  return -1;
}

TEST(UserDbTest, WhatIsWrittenReadsBackTheSame) {
  UserDb db = sample();
  auto read = parse_userdb(bytes_of(db));
  ASSERT_TRUE(read.ok()) << read.error().message;
  UserDb back = sorted(*read);
  ASSERT_EQ(back.users.size(), 3u);
  EXPECT_EQ(back.users[0].login, "alice");
  const HostUser& ci = back.users[1];
  EXPECT_EQ(ci.login, "bot-ci");
  EXPECT_EQ(ci.uid, 61001u);
  EXPECT_EQ(ci.gids, (std::vector<std::uint32_t>{27, 61003}));
  EXPECT_EQ(ci.home, "/home/bot-ci");
  EXPECT_EQ(ci.shell, "/bin/sh");
  EXPECT_EQ(ci.bot, "ci");
  EXPECT_EQ(ci.first_login, 1700000000);
  EXPECT_EQ(ci.last_login, 1700000100);
  ASSERT_EQ(back.groups.size(), 1u);
  EXPECT_EQ(back.groups[0].name, "builders");
  ASSERT_EQ(back.retired.size(), 1u);
  EXPECT_EQ(back.retired[0].uid, 60999u);
  EXPECT_EQ(back.retired[0].login, "gone");
  EXPECT_EQ(back.retired[0].retired_at, 1690000000);
  // Every id, with its kind and time.
  ASSERT_EQ(back.taken.size(), 6u);
  EXPECT_EQ(back.taken[0].id, 60999u);
  EXPECT_EQ(back.taken[0].since, 1680000000);
  EXPECT_EQ(back.taken[4].kind, TakenId::Kind::group);
  EXPECT_EQ(back.taken[5].id, 61004u);
  EXPECT_EQ(back.taken[5].kind, TakenId::Kind::other);
  EXPECT_EQ(back.taken[5].since, 1700000200);
}

// A version 1 file, as the reservation-era daemon wrote it: same records,
// a shorter header, and pending users. Made from a version 2 file of the
// same users, its taken section left as stray bytes version 1 ignores.
std::string version1_with_pending(const UserDb& db, const std::string& pending) {
  std::string bytes = version2_bytes(db);
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
  auto read = parse_userdb(v1);
  ASSERT_TRUE(read.ok()) << read.error().message;
  auto back = std::make_optional(sorted(*read));
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
  std::string bytes = version2_bytes(sample());
  mid_userdb_header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  std::uint32_t pending = MID_USERDB_PENDING;
  std::memcpy(bytes.data() + h.users.offset + offsetof(mid_userdb_user, flags), &pending, sizeof pending);
  h.checksum = mid_userdb_checksum(bytes.data() + 16, bytes.size() - 16);
  std::memcpy(bytes.data(), &h, sizeof h);
  EXPECT_EQ(Opened(bytes).rc, MID_USERDB_E_LAYOUT);
}

TEST(UserDbTest, VersionTwoFileIsMigratedToVersionThreeWhenTheStoreOpensIt) {
  TempDir dir;
  std::string path = dir.file("users.db");
  testing::write_file(path, version2_bytes(sample()));
  auto store = UserStore::open(path);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->users(), 3u);
  EXPECT_EQ((*store)->retired(), 1u);
  EXPECT_EQ((*store)->foreign(), 1u);
  std::string bytes = testing::read_file(path);
  File f(bytes);
  ASSERT_EQ(f.rc, MID_USERDB_OK) << "now a version 3 file: " << mid_userdb_strerror(f.rc);
  auto back = parse_userdb(bytes);
  ASSERT_TRUE(back.ok()) << back.error().message;
  UserDb want = sorted(sample()), got = sorted(*back);
  ASSERT_EQ(got.users.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got.users[i].login, want.users[i].login);
    EXPECT_EQ(got.users[i].uid, want.users[i].uid);
    EXPECT_EQ(got.users[i].gids, want.users[i].gids);
  }
  ASSERT_EQ(got.taken.size(), want.taken.size());
  for (std::size_t i = 0; i < got.taken.size(); ++i) {
    EXPECT_EQ(got.taken[i].id, want.taken[i].id);
    EXPECT_EQ(got.taken[i].kind, want.taken[i].kind);
  }
}

TEST(UserDbTest, ReaderFindsUsersByNameAndUidAndGroupsByNameAndGid) {
  File f(bytes_of(sample()));
  ASSERT_EQ(f.rc, MID_USERDB_OK);
  mid_userdb_entry e;
  ASSERT_EQ(f.by_name("bot-ci", e), 1);
  EXPECT_EQ(e.kind, MID_USERDB_REC_USER);
  EXPECT_EQ(e.id, 61001u);
  EXPECT_STREQ(e.home, "/home/bot-ci");
  EXPECT_STREQ(e.bot, "ci");
  ASSERT_EQ(e.count, 2u);
  EXPECT_EQ(mid_userdb_gid(&e, 0), 27u);
  EXPECT_EQ(mid_userdb_gid(&e, 1), 61003u);
  ASSERT_EQ(f.by_id(61002, e), 1);
  EXPECT_STREQ(e.name, "deploy");
  EXPECT_EQ(f.by_name("nobody-here", e), 0);
  EXPECT_EQ(f.by_id(12345, e), 0);
  ASSERT_EQ(f.by_id(60999, e), 1);
  EXPECT_EQ(e.kind, MID_USERDB_REC_RETIRED) << "a retired uid is nobody's user";
  EXPECT_EQ(f.by_name("gone", e), 0) << "a retired login is no name";
  ASSERT_EQ(f.by_name("builders", e), 1);
  EXPECT_EQ(e.kind, MID_USERDB_REC_GROUP);
  EXPECT_EQ(e.id, 61003u);
  ASSERT_EQ(f.by_id(61004, e), 1);
  EXPECT_EQ(e.kind, MID_USERDB_REC_TAKEN);
  EXPECT_EQ(e.count, MID_USERDB_TAKEN_OTHER);
}

// The first lookup reads the header, a few slots and one record: a few
// hundred bytes of a file of many megabytes.
TEST(UserDbTest, LookupReadsOnlyItsOwnSlotsAndRecordAmongHundredThousandUsers) {
  UserDb db;
  for (std::uint32_t i = 0; i < 100000; ++i)
    db.users.push_back(user("u" + std::to_string(i), 100000 + i));
  std::string bytes = bytes_of(db);
  ASSERT_GT(bytes.size(), 8u << 20);
  File f(bytes);
  ASSERT_EQ(f.rc, MID_USERDB_OK);
  for (std::uint32_t i : {0u, 1u, 4242u, 99999u}) {
    mid_userdb_entry e;
    long long before = bytes_read();
    ASSERT_EQ(f.by_name(("u" + std::to_string(i)).c_str(), e), 1);
    EXPECT_EQ(e.id, 100000 + i);
    ASSERT_EQ(f.by_id(100000 + i, e), 1);
    EXPECT_EQ(e.name, "u" + std::to_string(i));
    long long read = bytes_read() - before;
    EXPECT_LE(read, 4 * (MID_USERDB_MAX_RECORD + 64 * 16)) << "of " << bytes.size();
  }
  mid_userdb_entry e;
  long long before = bytes_read();
  EXPECT_EQ(f.by_name("u100000", e), 0);
  EXPECT_LE(bytes_read() - before, 64 * 16 + 2 * MID_USERDB_MAX_RECORD);
}

TEST(UserDbTest, EveryFlippedByteIsRejected) {
  std::string good = bytes_of(sample());
  for (std::size_t at = 0; at < good.size(); ++at) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x20);
    EXPECT_FALSE(parse_userdb(bad).ok()) << "flipped byte " << at << " of " << good.size();
  }
}

// The reader of one lookup: every byte of the record it answers from, and
// of the slots it walks, is checked.
TEST(UserDbTest, FlippedByteInALookupsRecordIsNeverAnswered) {
  std::string good = bytes_of(sample());
  File clean(good);
  mid_userdb_entry e;
  ASSERT_EQ(clean.by_name("bot-ci", e), 1);
  std::size_t length = e.length;
  // The record's offset: the one live name slot whose record is bot-ci's.
  std::uint64_t offset = 0;
  for (std::uint32_t i = 0; i < clean.h.nslots && offset == 0; ++i) {
    mid_userdb_slot s;
    if (mid_userdb_read_slot(clean.fd, &clean.h, MID_USERDB_TABLE_NAMES, i, &s) == 1 &&
        mid_userdb_read_record(clean.fd, s.offset, clean.buf.data(), &e) == MID_USERDB_OK &&
        std::string(e.name) == "bot-ci")
      offset = s.offset;
  }
  ASSERT_NE(offset, 0u);
  for (std::size_t at = offset; at < offset + length; ++at) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    File f(bad);
    int rc = f.by_name("bot-ci", e);
    EXPECT_LT(rc, 0) << "flipped byte " << at - offset << " of the record";
  }
}

TEST(UserDbTest, EveryTruncationIsRejectedAndATornAppendIsIgnored) {
  std::string good = bytes_of(sample());
  for (std::size_t size = 0; size < good.size(); ++size) {
    auto parsed = parse_userdb(good.substr(0, size));
    ASSERT_FALSE(parsed.ok()) << "truncated to " << size;
  }
  // Half a record appended (a crash mid-append) is not part of the database.
  auto longer = parse_userdb(good + std::string(20, '\x7f'));
  ASSERT_TRUE(longer.ok()) << longer.error().message;
  EXPECT_EQ(longer->users.size(), 3u);
}

TEST(UserDbTest, WrongMagicOrVersionIsRejectedNamingWhy) {
  std::string good = bytes_of(sample());
  std::string other_magic = good;
  other_magic[0] = 'X';
  EXPECT_EQ(File(other_magic).rc, MID_USERDB_E_MAGIC);
  std::string other_version = good;
  other_version[16] = 4;  // version, right after magic and checksum
  EXPECT_EQ(File(other_version).rc, MID_USERDB_E_VERSION);
  auto parsed = parse_userdb(other_version);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("version"), std::string::npos) << parsed.error().message;
  // The snapshot reader takes only the versions it knows.
  EXPECT_EQ(Opened(good).rc, MID_USERDB_E_VERSION);
}

TEST(UserDbTest, ConsistentChecksumDoesNotMakeABadLayoutAcceptable) {
  // A writer bug, not corruption: a record whose name is no login, under a
  // valid checksum.
  UserDb db;
  db.users = {user("alice", 61000)};
  std::string bytes = bytes_of(db);
  mid_userdb_header3 h;
  std::memcpy(&h, bytes.data(), sizeof h);
  std::size_t at = h.heap;
  bytes[at + sizeof(mid_userdb_record) + 1] = ':';  // "a:ice"
  std::uint64_t sum = mid_userdb_checksum(bytes.data() + at + 8, bytes.size() - at - 8);
  std::memcpy(bytes.data() + at, &sum, sizeof sum);
  EXPECT_FALSE(parse_userdb(bytes).ok());
  File f(bytes);
  mid_userdb_entry e;
  EXPECT_EQ(f.by_id(61000, e), MID_USERDB_E_LAYOUT);
}

TEST(UserDbTest, DuplicateNamesOrIdsAreNeverWritten) {
  UserDb names;
  names.users = {user("same", 61000), user("same", 61001)};
  EXPECT_FALSE(serialize_userdb(names).ok());
  UserDb uids;
  uids.users = {user("one", 61000), user("two", 61000)};
  EXPECT_FALSE(serialize_userdb(uids).ok());
  UserDb group;
  group.users = {user("one", 61000)};
  group.groups = {HostGroup{"one", 61001}};
  EXPECT_FALSE(serialize_userdb(group).ok()) << "a user's name is its primary group's";
  UserDb retired;
  retired.users = {user("one", 61000)};
  retired.retired = {RetiredUser{"old", 61000, 1}};
  EXPECT_FALSE(serialize_userdb(retired).ok()) << "a retired uid is never given again";
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

// ---- UserStore -------------------------------------------------------------

// The 16-byte blocks (slots, in the tables) of `a` that `b` changed.
std::vector<std::size_t> changes(const std::string& a, const std::string& b) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); i += 16) {
    std::size_t n = std::min<std::size_t>(16, std::min(a.size(), b.size()) - i);
    if (a.compare(i, n, b, i, n) != 0) out.push_back(i);
  }
  return out;
}

TEST(UserStoreTest, ChangeWritesOnlyItsOwnRecordAndSlots) {
  TempDir dir;
  std::string path = dir.file("users.db");
  UserDb db;
  for (std::uint32_t i = 0; i < 2000; ++i) db.users.push_back(user("u" + std::to_string(i), 100000 + i));
  ASSERT_TRUE(write_userdb(path, db).ok());
  auto opened = UserStore::open(path);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  UserStore& store = **opened;
  EXPECT_EQ(store.users(), 2000u);

  // A new user: one record appended, one id slot and one name slot written.
  std::string before = testing::read_file(path);
  ASSERT_TRUE(store.put_user(user("newcomer", 200000, {27}), 1700000000).ok());
  std::string after = testing::read_file(path);
  ASSERT_GT(after.size(), before.size());
  EXPECT_LE(after.size() - before.size(), 128u) << "one record";
  auto diff = changes(before, after);
  EXPECT_EQ(diff.size(), 2u) << "an id slot and a name slot, nothing else";
  EXPECT_EQ(store.users(), 2001u);

  // An update: the same, and the old record is left as it was.
  before = after;
  HostUser changed = user("u7", 100007, {27, 28});
  ASSERT_TRUE(store.put_user(changed, 0).ok());
  after = testing::read_file(path);
  diff = changes(before, after);
  EXPECT_EQ(diff.size(), 2u);
  EXPECT_EQ(store.users(), 2001u);

  File f(after);
  mid_userdb_entry e;
  ASSERT_EQ(f.by_name("u7", e), 1);
  EXPECT_EQ(e.count, 2u);
  ASSERT_EQ(f.by_id(200000, e), 1);
  EXPECT_STREQ(e.name, "newcomer");
  auto whole = parse_userdb(after);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  EXPECT_EQ(whole->users.size(), 2001u);
}

TEST(UserStoreTest, RetiredUidIsNobodysAndNeverGivenAgain) {
  TempDir dir;
  std::string path = dir.file("users.db");
  auto opened = UserStore::open(path);
  ASSERT_TRUE(opened.ok());
  UserStore& store = **opened;
  EXPECT_FALSE(std::filesystem::exists(path)) << "made on the first change, not before";
  ASSERT_TRUE(store.put_user(user("alice", 61000), 1700000000).ok());
  ASSERT_TRUE(store.retire("alice", 1700000500).ok());
  EXPECT_EQ(store.users(), 0u);
  EXPECT_EQ(store.retired(), 1u);
  auto taken = store.taken(61000);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->since, 1700000500);
  EXPECT_FALSE(store.put_user(user("bob", 61000), 1700000600).ok()) << "a retired uid";
  ASSERT_TRUE(store.put_user(user("alice", 61001), 1700000600).ok()) << "the login may come back";
  File f(testing::read_file(path));
  mid_userdb_entry e;
  ASSERT_EQ(f.by_id(61000, e), 1);
  EXPECT_EQ(e.kind, MID_USERDB_REC_RETIRED);
  ASSERT_EQ(f.by_name("alice", e), 1);
  EXPECT_EQ(e.id, 61001u);
}

TEST(UserStoreTest, TablesGrowAndEveryEntryStaysFound) {
  TempDir dir;
  std::string path = dir.file("users.db");
  auto opened = UserStore::open(path);
  ASSERT_TRUE(opened.ok());
  UserStore& store = **opened;
  for (std::uint32_t i = 0; i < 300; ++i) {
    ASSERT_TRUE(store.put_user(user("u" + std::to_string(i), 70000 + i), 1).ok()) << i;
    if (i % 10 == 0) {
      ASSERT_TRUE(store.put_taken(TakenId{80000 + i, TakenId::Kind::other, 1}).ok());
    }
  }
  EXPECT_GE(store.slots(), 512u);
  EXPECT_EQ(store.foreign(), 30u);
  File f(testing::read_file(path));
  for (std::uint32_t i = 0; i < 300; ++i) {
    mid_userdb_entry e;
    ASSERT_EQ(f.by_name(("u" + std::to_string(i)).c_str(), e), 1) << i;
    EXPECT_EQ(e.id, 70000 + i);
  }
  auto reopened = UserStore::open(path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->users(), 300u);
  EXPECT_EQ((*reopened)->foreign(), 30u);
}

// A writer killed with SIGKILL at arbitrary points, again and again: every
// change it acknowledged is there, the file always opens (repaired if a
// kill fell between an update's two slot writes), and the reader never
// sees a torn entry.
TEST(UserStoreTest, EveryAcknowledgedChangeSurvivesKill9AtAnyPoint) {
  TempDir dir;
  std::string path = dir.file("users.db");
  std::map<std::uint32_t, std::int64_t> acked;  // user index -> last_login acknowledged
  std::uint32_t next = 0;
  for (int round = 0; round < 12; ++round) {
    int ack[2];
    ASSERT_EQ(pipe(ack), 0);
    pid_t child = fork();
    if (child == 0) {
      close(ack[0]);
      auto store = UserStore::open(path);
      if (!store.ok()) _exit(3);
      for (std::uint32_t i = next;; ++i) {
        // New users, and updates of earlier ones.
        std::uint32_t who = i % 3 == 2 && i > 0 ? i / 2 : i;
        if (who != i && !(*store)->has_user("k" + std::to_string(who))) who = i;
        HostUser u = user("k" + std::to_string(who), 90000 + who, {27});
        u.last_login = 1700000000 + i;
        if (!(*store)->put_user(u, 1).ok()) _exit(4);
        std::uint32_t msg[2] = {who, i};
        if (write(ack[1], msg, sizeof msg) != sizeof msg) _exit(5);
      }
    }
    close(ack[1]);
    std::uint32_t msg[2];
    int seen = 0;
    // Let it acknowledge a varying number of changes, then kill it mid-flight.
    while (seen < 5 + round * 3 && read(ack[0], msg, sizeof msg) == sizeof msg) {
      acked[msg[0]] = 1700000000 + msg[1];
      next = std::max(next, msg[1] + 1);
      ++seen;
    }
    kill(child, SIGKILL);
    // Acknowledgements written before the kill count too.
    while (read(ack[0], msg, sizeof msg) == sizeof msg) {
      acked[msg[0]] = 1700000000 + msg[1];
      next = std::max(next, msg[1] + 1);
    }
    close(ack[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer failed on its own: " << status;

    // The reader, before any repair: every acknowledged user as acknowledged.
    File f(testing::read_file(path));
    ASSERT_EQ(f.rc, MID_USERDB_OK);
    for (auto [who, last] : acked) {
      mid_userdb_entry e;
      ASSERT_EQ(f.by_id(90000 + who, e), 1) << "round " << round << ": user " << who;
      EXPECT_EQ(e.kind, MID_USERDB_REC_USER);
      EXPECT_GE(e.last_login, last) << "round " << round << ": user " << who;
    }
    auto store = UserStore::open(path);
    ASSERT_TRUE(store.ok()) << "round " << round << ": " << store.error().message;
    EXPECT_GE((*store)->users(), acked.size());
    for (auto [who, last] : acked) {
      auto u = (*store)->user("k" + std::to_string(who));
      ASSERT_TRUE(u.ok() && u->has_value()) << "round " << round << ": user " << who;
      EXPECT_GE((*u)->last_login, last);
    }
    auto whole = parse_userdb(testing::read_file(path));
    ASSERT_TRUE(whole.ok()) << whole.error().message;
  }
}

}  // namespace
}  // namespace machineid
