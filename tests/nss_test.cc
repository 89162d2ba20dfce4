// libnss_machineid (SPEC §6) as glibc sees it: through nss_wrapper for
// getent and id in child processes, and through its entry points, loaded
// with dlopen, for what only a direct caller can check (buffer sizes,
// errno, initgroups_dyn, threads, the question to the daemon).
#include <dlfcn.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <gtest/gtest.h>

#include "fixtures.h"
#include "machineid/client.h"
#include "machineid/protocol.h"
#include "machineid/userdb.h"
#include "sshd_harness.h"

namespace machineid {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

const std::string kModule = std::string(MID_BIN_DIR) + "/../lib/libnss_machineid.so.2";

// The module's entry points, from one dlopen for the whole test binary.
struct Module {
  using PwNam = nss_status (*)(const char*, passwd*, char*, size_t, int*);
  using PwUid = nss_status (*)(uid_t, passwd*, char*, size_t, int*);
  using GrNam = nss_status (*)(const char*, group*, char*, size_t, int*);
  using GrGid = nss_status (*)(gid_t, group*, char*, size_t, int*);
  using SetEnt = nss_status (*)(int);
  using EndEnt = nss_status (*)();
  using PwEnt = nss_status (*)(passwd*, char*, size_t, int*);
  using GrEnt = nss_status (*)(group*, char*, size_t, int*);
  using Initgroups = nss_status (*)(const char*, gid_t, long*, long*, gid_t**, long, int*);

  Module() : handle(dlopen(kModule.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    if (handle == nullptr) return;
    getpwnam_r = sym<PwNam>("getpwnam_r");
    getpwuid_r = sym<PwUid>("getpwuid_r");
    getgrnam_r = sym<GrNam>("getgrnam_r");
    getgrgid_r = sym<GrGid>("getgrgid_r");
    setpwent = sym<SetEnt>("setpwent");
    endpwent = sym<EndEnt>("endpwent");
    getpwent_r = sym<PwEnt>("getpwent_r");
    setgrent = sym<SetEnt>("setgrent");
    endgrent = sym<EndEnt>("endgrent");
    getgrent_r = sym<GrEnt>("getgrent_r");
    initgroups_dyn = sym<Initgroups>("initgroups_dyn");
  }
  template <class F>
  F sym(const char* name) {
    return reinterpret_cast<F>(dlsym(handle, ("_nss_machineid_" + std::string(name)).c_str()));
  }
  bool loaded() const {
    return handle && getpwnam_r && getpwuid_r && getgrnam_r && getgrgid_r && setpwent && endpwent &&
           getpwent_r && setgrent && endgrent && getgrent_r && initgroups_dyn;
  }

  void* handle;
  PwNam getpwnam_r = nullptr;
  PwUid getpwuid_r = nullptr;
  GrNam getgrnam_r = nullptr;
  GrGid getgrgid_r = nullptr;
  SetEnt setpwent = nullptr, setgrent = nullptr;
  EndEnt endpwent = nullptr, endgrent = nullptr;
  PwEnt getpwent_r = nullptr;
  GrEnt getgrent_r = nullptr;
  Initgroups initgroups_dyn = nullptr;
};

Module& module() {
  static Module m;
  return m;
}

HostUser user(const std::string& login, std::uint32_t uid, std::vector<std::uint32_t> gids = {}) {
  HostUser u;
  u.login = login;
  u.uid = uid;
  u.gids = std::move(gids);
  u.home = "/home/" + login;
  u.shell = "/bin/sh";
  u.first_login = u.last_login = 1700000000;
  return u;
}

// bot-ci and bot-two, both in the made group builders; bot-ci also in the
// local group 27 (sudo); a retired uid; an id another source has.
UserDb sample() {
  UserDb db;
  db.users = {user("bot-ci", 61000, {27, 61002}), user("bot-two", 61001, {61002})};
  db.groups = {HostGroup{"builders", 61002}};
  db.retired = {RetiredUser{"gone", 60999, 1690000000}};
  db.taken = {TakenId{60999, TakenId::Kind::user, 1680000000},
              TakenId{61000, TakenId::Kind::user, 1700000000},
              TakenId{61001, TakenId::Kind::user, 1700000000},
              TakenId{61002, TakenId::Kind::group, 1700000000},
              TakenId{61003, TakenId::Kind::other, 1700000000}};
  return db;
}

// This test binary, as the module's list of sshd executables names it.
std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

std::string pw_line(const passwd& p) {
  std::ostringstream s;
  s << p.pw_name << ":" << p.pw_passwd << ":" << p.pw_uid << ":" << p.pw_gid << ":" << p.pw_gecos
    << ":" << p.pw_dir << ":" << p.pw_shell;
  return s.str();
}

std::string gr_line(const group& g) {
  std::string s = std::string(g.gr_name) + ":" + g.gr_passwd + ":" + std::to_string(g.gr_gid) + ":";
  for (char** m = g.gr_mem; *m != nullptr; ++m) s += (m == g.gr_mem ? "" : ",") + std::string(*m);
  return s;
}

class NssTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(module().loaded()) << kModule << ": " << dlerror();
    db_path = dir.file("users.db");
    setenv("MACHINEID_NSS_DB", db_path.c_str(), 1);
    // This process is not sshd: the module never asks a daemon unless a
    // test names this binary as sshd (MACHINEID_NSS_SSHD).
    unsetenv("MACHINEID_NSS_SSHD");
    unsetenv("MACHINEID_NSS_BYPASS_DAEMON");
    write(sample());
    testing::write_file(dir.file("passwd"), testing::read_file("/etc/passwd"));
    testing::write_file(dir.file("group"), testing::read_file("/etc/group"));
  }
  void TearDown() override {
    unsetenv("MACHINEID_NSS_DB");
    unsetenv("MACHINEID_NSS_SOCKET");
    unsetenv("MACHINEID_NSS_BYPASS_DAEMON");
    unsetenv("MACHINEID_NSS_SSHD");
  }

  void write(const UserDb& db) {
    auto s = write_userdb(db_path, db);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  // `command` under nss_wrapper, with this system's accounts as its files
  // and the module behind them.
  testing::RunResult wrapped(std::vector<std::string> command) {
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "LD_PRELOAD=libnss_wrapper.so",
                                     "NSS_WRAPPER_PASSWD=" + dir.file("passwd"),
                                     "NSS_WRAPPER_GROUP=" + dir.file("group"),
                                     "NSS_WRAPPER_MODULE_SO_PATH=" + kModule,
                                     "NSS_WRAPPER_MODULE_FN_PREFIX=machineid"};
    argv.insert(argv.end(), command.begin(), command.end());
    return testing::run(argv);
  }

  nss_status pwnam(const char* name, passwd& p, int& e) {
    static thread_local char buf[1024];
    return module().getpwnam_r(name, &p, buf, sizeof buf, &e);
  }

  TempDir dir;
  std::string db_path;
};

TEST_F(NssTest, ModuleNeedsOnlyLibcAndExportsOnlyNssEntryPoints) {
  std::string needed = testing::run_ok({"readelf", "-d", kModule});
  std::istringstream lines(needed);
  std::vector<std::string> libs;
  for (std::string line; std::getline(lines, line);)
    if (line.find("(NEEDED)") != std::string::npos) libs.push_back(line.substr(line.find('[')));
  EXPECT_EQ(libs, (std::vector<std::string>{"[libc.so.6]"})) << needed;
  EXPECT_NE(needed.find("Library soname: [libnss_machineid.so.2]"), std::string::npos) << needed;

  std::istringstream symbols(testing::run_ok({"nm", "-D", "--defined-only", kModule}));
  std::set<std::string> exported;
  for (std::string line; std::getline(symbols, line);) {
    std::string name = line.substr(line.rfind(' ') + 1);
    EXPECT_EQ(name.rfind("_nss_machineid_", 0), 0u) << "exports " << name;
    exported.insert(name);
  }
  for (const char* fn :
       {"getpwnam_r", "getpwuid_r", "setpwent", "getpwent_r", "endpwent", "getgrnam_r",
        "getgrgid_r", "setgrent", "getgrent_r", "endgrent", "initgroups_dyn"})
    EXPECT_TRUE(exported.count("_nss_machineid_" + std::string(fn))) << fn;
}

// users.db changed in place (a restore with cat, a truncation) while
// threads look users up: no lookup faults or answers a garbled entry; each
// finds the user, or fails cleanly while the file is half-written.
TEST_F(NssTest, DatabaseChangedInPlaceNeverCrashesOrGarblesALookup) {
  const std::string good = testing::read_file(db_path);
  std::atomic<bool> stop{false};
  std::atomic<int> found{0}, garbled{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      while (!stop) {
        passwd p{};
        int e = 0;
        if (pwnam("bot-ci", p, e) == NSS_STATUS_SUCCESS) {
          if (std::string(p.pw_name) != "bot-ci" || p.pw_uid != 61000) ++garbled;
          ++found;
        }
      }
    });
  for (int round = 0; round < 200; ++round) {
    int fd = open(db_path.c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    std::size_t cut = (round * 97) % good.size();
    ASSERT_EQ(::write(fd, good.data(), cut), static_cast<ssize_t>(cut));  // half a file, for a moment
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    ASSERT_EQ(::write(fd, good.data() + cut, good.size() - cut), static_cast<ssize_t>(good.size() - cut));
    close(fd);
    if (round % 10 == 0) truncate(db_path.c_str(), 0);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  testing::write_file(db_path, good);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(garbled, 0);
  EXPECT_GT(found, 0);
  passwd p{};
  int e = 0;
  EXPECT_EQ(pwnam("bot-ci", p, e), NSS_STATUS_SUCCESS);
}

TEST_F(NssTest, GetentFindsHostUsersByNameAndUid) {
  auto r = wrapped({"getent", "passwd", "bot-ci"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output, "bot-ci:*:61000:61000::/home/bot-ci:/bin/sh\n");
  r = wrapped({"getent", "passwd", "61001"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output, "bot-two:*:61001:61001::/home/bot-two:/bin/sh\n");
  // Local accounts still come from files, first.
  EXPECT_EQ(wrapped({"getent", "passwd", "root"}).output.rfind("root:x:0:0:", 0), 0u);
}

TEST_F(NssTest, GetentGroupShowsPrimaryGroupsAndMadeGroupsWithTheirMembers) {
  EXPECT_EQ(wrapped({"getent", "group", "bot-ci"}).output, "bot-ci:*:61000:\n");
  EXPECT_EQ(wrapped({"getent", "group", "61001"}).output, "bot-two:*:61001:\n");
  EXPECT_EQ(wrapped({"getent", "group", "builders"}).output, "builders:*:61002:bot-ci,bot-two\n");
  EXPECT_EQ(wrapped({"getent", "group", "61002"}).output, "builders:*:61002:bot-ci,bot-two\n");
}

TEST_F(NssTest, EnumerationListsLocalAccountsThenHostUsers) {
  auto passwd = wrapped({"getent", "passwd"});
  ASSERT_EQ(passwd.status, 0);
  std::string local = testing::read_file("/etc/passwd");
  EXPECT_EQ(passwd.output.rfind("root:", 0), 0u);
  // Host users come after every local account, in the database's (hash) order.
  std::string users = passwd.output.substr(passwd.output.find("\nbot-") + 1);
  EXPECT_TRUE(users == "bot-ci:*:61000:61000::/home/bot-ci:/bin/sh\n"
                       "bot-two:*:61001:61001::/home/bot-two:/bin/sh\n" ||
              users == "bot-two:*:61001:61001::/home/bot-two:/bin/sh\n"
                       "bot-ci:*:61000:61000::/home/bot-ci:/bin/sh\n")
      << passwd.output;
  auto group = wrapped({"getent", "group"});
  std::istringstream lines(group.output.substr(group.output.find("\nbot-") + 1));
  std::vector<std::string> ours;
  for (std::string line; std::getline(lines, line);) ours.push_back(line);
  std::sort(ours.begin(), ours.end());
  EXPECT_EQ(ours, (std::vector<std::string>{"bot-ci:*:61000:", "bot-two:*:61001:",
                                            "builders:*:61002:bot-ci,bot-two"}))
      << group.output;
}

TEST_F(NssTest, IdShowsTheHostUserAndTheGroupsListingIt) {
  auto r = wrapped({"id", "bot-ci"});
  EXPECT_EQ(r.status, 0);
  // nss_wrapper computes the list from groups' members, as glibc's files
  // module does; initgroups_dyn is checked directly below.
  EXPECT_EQ(r.output, "uid=61000(bot-ci) gid=61000(bot-ci) groups=61000(bot-ci),61002(builders)\n");
}

TEST_F(NssTest, RetiredAndForeignIdsAreNobodys) {
  EXPECT_EQ(wrapped({"getent", "passwd", "61003"}).status, 2);
  EXPECT_EQ(wrapped({"getent", "group", "61003"}).status, 2);
  EXPECT_EQ(wrapped({"getent", "passwd", "60999"}).status, 2);
  EXPECT_EQ(wrapped({"getent", "passwd", "gone"}).status, 2);
}

TEST_F(NssTest, BypassVariableMakesTheModuleAnswerNothing) {
  // The daemon's own process: its lookups must see only the other sources.
  setenv("MACHINEID_NSS_BYPASS_DAEMON", "1", 1);
  passwd p{};
  group g{};
  char buf[1024];
  int e = 0;
  EXPECT_EQ(pwnam("bot-ci", p, e), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(e, ENOENT);
  EXPECT_EQ(module().getpwuid_r(61000, &p, buf, sizeof buf, &e), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(module().getgrnam_r("builders", &g, buf, sizeof buf, &e), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(module().getgrgid_r(61002, &g, buf, sizeof buf, &e), NSS_STATUS_NOTFOUND);
  module().setpwent(0);
  EXPECT_EQ(module().getpwent_r(&p, buf, sizeof buf, &e), NSS_STATUS_NOTFOUND);
  module().endpwent();
  EXPECT_EQ(wrapped({"getent", "passwd", "bot-ci"}).status, 2);
  unsetenv("MACHINEID_NSS_BYPASS_DAEMON");
  EXPECT_EQ(pwnam("bot-ci", p, e), NSS_STATUS_SUCCESS);
}

TEST_F(NssTest, UnknownNameIsNotFoundWithEnoentAndErrnoKept) {
  passwd p{};
  int e = 0;
  errno = 1234;
  EXPECT_EQ(pwnam("nobody-here", p, e), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(e, ENOENT);
  EXPECT_EQ(errno, 1234);
  char buf[256];
  e = 0;
  EXPECT_EQ(module().getpwuid_r(4242, &p, buf, sizeof buf, &e), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(e, ENOENT);
  group g{};
  EXPECT_EQ(module().getgrnam_r("nobody-here", &g, buf, sizeof buf, &e), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(module().getgrgid_r(27, &g, buf, sizeof buf, &e), NSS_STATUS_NOTFOUND)
      << "local groups are files'";
}

TEST_F(NssTest, MissingDatabaseIsNotFoundButACorruptOneIsUnavailable) {
  passwd p{};
  int e = 0;
  unlink(db_path.c_str());
  EXPECT_EQ(pwnam("bot-ci", p, e), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(e, ENOENT);

  write(sample());
  std::string bytes = testing::read_file(db_path);
  // A lookup checks what it reads: bot-ci's own record, here.
  bytes[bytes.find("bot-ci") + 2] ^= 1;
  testing::write_file(db_path + ".new", bytes);
  ASSERT_EQ(rename((db_path + ".new").c_str(), db_path.c_str()), 0);
  e = 0;
  EXPECT_EQ(pwnam("bot-ci", p, e), NSS_STATUS_UNAVAIL) << "a corrupt file is never served";
  EXPECT_EQ(e, EIO);
  EXPECT_EQ(pwnam("bot-ci", p, e), NSS_STATUS_UNAVAIL) << "nor on the next lookup";
  EXPECT_EQ(wrapped({"getent", "passwd", "bot-ci"}).status, 2);

  write(sample());
  EXPECT_EQ(pwnam("bot-ci", p, e), NSS_STATUS_SUCCESS) << "a repaired file is served again";
}

TEST_F(NssTest, TruncatedDatabaseIsUnavailable) {
  std::string bytes = testing::read_file(db_path);
  testing::write_file(db_path + ".new", bytes.substr(0, bytes.size() / 2));
  ASSERT_EQ(rename((db_path + ".new").c_str(), db_path.c_str()), 0);
  passwd p{};
  int e = 0;
  EXPECT_EQ(pwnam("bot-ci", p, e), NSS_STATUS_UNAVAIL);
}

// Calls `lookup(buffer, size, &errno)` with every size from 0 up: each too
// small gives TRYAGAIN with ERANGE, then one succeeds. Returns that size;
// the entry stays in `buf`.
template <class F>
std::size_t smallest_buffer(std::vector<char>& buf, F lookup) {
  for (std::size_t size = 0; size < 4096; ++size) {
    buf.assign(size + 1, '\0');
    int e = 0;
    nss_status s = lookup(buf.data(), size, &e);
    if (s == NSS_STATUS_SUCCESS) return size;
    EXPECT_EQ(s, NSS_STATUS_TRYAGAIN) << "size " << size;
    EXPECT_EQ(e, ERANGE) << "size " << size;
    if (s != NSS_STATUS_TRYAGAIN) return 0;
  }
  ADD_FAILURE() << "no size up to 4096 was enough";
  return 0;
}

TEST_F(NssTest, TinyBuffersGiveErangeThenTheEntry) {
  std::vector<char> buf;
  passwd p{};
  group g{};
  EXPECT_GT(
      smallest_buffer(buf, [&](char* b, size_t n,
                               int* e) { return module().getpwnam_r("bot-ci", &p, b, n, e); }),
      0u);
  EXPECT_EQ(pw_line(p), "bot-ci:*:61000:61000::/home/bot-ci:/bin/sh");
  EXPECT_GT(smallest_buffer(buf, [&](char* b, size_t n,
                                     int* e) { return module().getpwuid_r(61001, &p, b, n, e); }),
            0u);
  EXPECT_EQ(pw_line(p), "bot-two:*:61001:61001::/home/bot-two:/bin/sh");
  EXPECT_GT(
      smallest_buffer(buf, [&](char* b, size_t n,
                               int* e) { return module().getgrnam_r("builders", &g, b, n, e); }),
      0u);
  EXPECT_EQ(gr_line(g), "builders:*:61002:bot-ci,bot-two");
  EXPECT_GT(smallest_buffer(buf, [&](char* b, size_t n,
                                     int* e) { return module().getgrgid_r(61000, &g, b, n, e); }),
            0u);
  EXPECT_EQ(gr_line(g), "bot-ci:*:61000:");
}

TEST_F(NssTest, GroupMembersArePackedAlignedAtAnyBufferOffset) {
  alignas(8) char buf[512];
  group g{};
  int e = 0;
  for (int offset = 0; offset < 8; ++offset) {
    ASSERT_EQ(module().getgrnam_r("builders", &g, buf + offset, sizeof buf - 8, &e),
              NSS_STATUS_SUCCESS);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(g.gr_mem) % alignof(char*), 0u);
    EXPECT_EQ(gr_line(g), "builders:*:61002:bot-ci,bot-two");
  }
}

TEST_F(NssTest, EnumerationRetriesTheSameEntryAfterErangeAndSkipsNone) {
  std::vector<std::string> users, groups;
  module().setpwent(0);
  for (;;) {
    passwd p{};
    int e = 0;
    char tiny[8];
    nss_status s = module().getpwent_r(&p, tiny, sizeof tiny, &e);
    if (s == NSS_STATUS_NOTFOUND) break;
    ASSERT_EQ(s, NSS_STATUS_TRYAGAIN);
    ASSERT_EQ(e, ERANGE);
    char buf[512];
    ASSERT_EQ(module().getpwent_r(&p, buf, sizeof buf, &e), NSS_STATUS_SUCCESS);
    users.push_back(p.pw_name);
  }
  module().endpwent();
  std::sort(users.begin(), users.end());
  EXPECT_EQ(users, (std::vector<std::string>{"bot-ci", "bot-two"}));

  module().setgrent(0);
  for (;;) {
    group g{};
    int e = 0;
    char tiny[8];
    nss_status s = module().getgrent_r(&g, tiny, sizeof tiny, &e);
    if (s == NSS_STATUS_NOTFOUND) break;
    ASSERT_EQ(s, NSS_STATUS_TRYAGAIN);
    char buf[512];
    ASSERT_EQ(module().getgrent_r(&g, buf, sizeof buf, &e), NSS_STATUS_SUCCESS);
    groups.push_back(gr_line(g));
  }
  module().endgrent();
  std::sort(groups.begin(), groups.end());
  EXPECT_EQ(groups, (std::vector<std::string>{
                        "bot-ci:*:61000:", "bot-two:*:61001:", "builders:*:61002:bot-ci,bot-two"}));
}

TEST_F(NssTest, EnumerationStartedBeforeAReplacementFinishesOnTheOldDatabase) {
  char buf[512];
  passwd p{};
  int e = 0;
  module().setpwent(0);
  ASSERT_EQ(module().getpwent_r(&p, buf, sizeof buf, &e), NSS_STATUS_SUCCESS);
  std::string first = p.pw_name;
  ASSERT_TRUE(first == "bot-ci" || first == "bot-two") << first;
  UserDb other;
  other.users = {user("zeta", 62000)};
  write(other);
  // A lookup in between sees the new file...
  EXPECT_EQ(pwnam("zeta", p, e), NSS_STATUS_SUCCESS);
  // ...while the enumeration carries on where it was.
  ASSERT_EQ(module().getpwent_r(&p, buf, sizeof buf, &e), NSS_STATUS_SUCCESS);
  EXPECT_EQ(std::string(p.pw_name), first == "bot-ci" ? "bot-two" : "bot-ci");
  EXPECT_EQ(module().getpwent_r(&p, buf, sizeof buf, &e), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(e, ENOENT);
  EXPECT_EQ(module().getpwent_r(&p, buf, sizeof buf, &e), NSS_STATUS_NOTFOUND)
      << "ended until setpwent";
  module().setpwent(0);
  ASSERT_EQ(module().getpwent_r(&p, buf, sizeof buf, &e), NSS_STATUS_SUCCESS);
  EXPECT_STREQ(p.pw_name, "zeta");
  module().endpwent();
}

TEST_F(NssTest, InitgroupsAppendsSupplementaryGidsWithoutDuplicatesWithinTheLimit) {
  long start = 1, size = 1;
  auto* groups = static_cast<gid_t*>(std::malloc(sizeof(gid_t)));
  groups[0] = 61000;
  int e = 0;
  ASSERT_EQ(module().initgroups_dyn("bot-ci", 61000, &start, &size, &groups, 0, &e),
            NSS_STATUS_SUCCESS);
  EXPECT_EQ(std::vector<gid_t>(groups, groups + start), (std::vector<gid_t>{61000, 27, 61002}));
  EXPECT_GE(size, start);
  // Again: nothing twice.
  ASSERT_EQ(module().initgroups_dyn("bot-ci", 61000, &start, &size, &groups, 0, &e),
            NSS_STATUS_SUCCESS);
  EXPECT_EQ(start, 3);
  std::free(groups);

  // The caller's limit is never passed.
  start = 1, size = 1;
  groups = static_cast<gid_t*>(std::malloc(sizeof(gid_t)));
  groups[0] = 61000;
  ASSERT_EQ(module().initgroups_dyn("bot-ci", 61000, &start, &size, &groups, 2, &e),
            NSS_STATUS_SUCCESS);
  EXPECT_EQ(start, 2);
  EXPECT_EQ(size, 2);
  std::free(groups);

  start = 0, size = 0;
  groups = nullptr;
  EXPECT_EQ(module().initgroups_dyn("root", 0, &start, &size, &groups, 0, &e), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(start, 0);
  std::free(groups);
}

TEST_F(NssTest, ReplacedDatabaseIsSeenByTheNextLookup) {
  passwd p{};
  int e = 0;
  EXPECT_EQ(pwnam("bot-three", p, e), NSS_STATUS_NOTFOUND);
  UserDb db = sample();
  db.users.push_back(user("bot-three", 61004));
  write(db);
  ASSERT_EQ(pwnam("bot-three", p, e), NSS_STATUS_SUCCESS);
  EXPECT_EQ(p.pw_uid, 61004u);
}

TEST_F(NssTest, SixteenThreadsLookUpWhileTheDaemonReplacesTheFile) {
  // Both versions hold the same 50 users; the second also 50 others.
  UserDb a, b;
  for (std::uint32_t i = 0; i < 50; ++i)
    a.users.push_back(user("stable-" + std::to_string(i), 62000 + i, {61999}));
  a.groups = {HostGroup{"shared", 61999}};
  b = a;
  for (std::uint32_t i = 0; i < 50; ++i)
    b.users.push_back(user("churn-" + std::to_string(i), 63000 + i));
  write(a);

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<long> lookups{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      char buf[4096];
      for (std::uint32_t i = t; !stop; i = (i + 7) % 50) {
        passwd p{};
        group g{};
        int e = 0;
        std::string name = "stable-" + std::to_string(i);
        bool ok =
            module().getpwnam_r(name.c_str(), &p, buf, sizeof buf, &e) == NSS_STATUS_SUCCESS &&
            p.pw_uid == 62000 + i && name == p.pw_name;
        ok = ok && module().getpwuid_r(62000 + i, &p, buf, sizeof buf, &e) == NSS_STATUS_SUCCESS &&
             name == p.pw_name;
        ok = ok && module().getgrgid_r(61999, &g, buf, sizeof buf, &e) == NSS_STATUS_SUCCESS &&
             std::string(g.gr_name) == "shared";
        if (t == 0) {  // one thread enumerates in between
          module().setpwent(0);
          int n = 0;
          while (module().getpwent_r(&p, buf, sizeof buf, &e) == NSS_STATUS_SUCCESS) ++n;
          module().endpwent();
          ok = ok && (n == 50 || n == 100);
        }
        if (!ok) ++failures;
        ++lookups;
      }
    });
  }
  for (int i = 0; i < 200; ++i) write(i % 2 ? a : b);
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0) << "of " << lookups << " lookups";
  EXPECT_GT(lookups, 1000);
}

// The first lookup in a process reads the header, the slots of its probe
// and one record: a few KiB of a users.db of 100 000 users (about 16 MiB),
// never the whole file.
TEST_F(NssTest, FirstLookupReadsOnlyItsSlotsAndRecordAmongHundredThousandUsers) {
  UserDb db;
  for (std::uint32_t i = 0; i < 100000; ++i) db.users.push_back(user("u" + std::to_string(i), 100000 + i));
  write(db);
  ASSERT_GT(std::filesystem::file_size(db_path), 8u << 20);
  auto read_so_far = [] {
    std::ifstream io("/proc/self/io");
    std::string key;
    long long value = 0;
    while (io >> key >> value)
      if (key == "rchar:") return value;
    return -1LL;
  };
  for (std::uint32_t i : {0u, 4242u, 99999u}) {
    passwd p{};
    int e = 0;
    long long before = read_so_far();
    std::string name = "u" + std::to_string(i);
    ASSERT_EQ(pwnam(name.c_str(), p, e), NSS_STATUS_SUCCESS);
    EXPECT_EQ(p.pw_uid, 100000 + i);
    char buf[1024];
    ASSERT_EQ(module().getpwuid_r(100000 + i, &p, buf, sizeof buf, &e), NSS_STATUS_SUCCESS);
    EXPECT_EQ(name, p.pw_name);
    long long read = read_so_far() - before;
    EXPECT_LE(read, 16 * 1024) << "bytes read for two lookups";
  }
  passwd p{};
  int e = 0;
  long long before = read_so_far();
  EXPECT_EQ(pwnam("u100000", p, e), NSS_STATUS_NOTFOUND);
  EXPECT_LE(read_so_far() - before, 16 * 1024);
}

// ---- the question to the daemon ------------------------------------------

constexpr const char* kHostUserRole = R"(kind: role
version: v7
metadata:
  name: host-users
spec:
  options:
    create_host_user_mode: keep
  allow:
    logins: ['{{internal.logins}}']
    node_labels: {'*': '*'}
)";

constexpr const char* kLiteralRole = R"(kind: role
version: v7
metadata:
  name: bot-ci-only
spec:
  options:
    create_host_user_mode: keep
  allow:
    logins: [bot-ci]
    node_labels: {'*': '*'}
)";

class NssDaemonTest : public NssTest {
 protected:
  void start(const char* role) {
    ASSERT_EQ(geteuid(), 0u) << "provisional entries are sshd's, as root: run as root";
    h = std::make_unique<testing::SshdHarness>(
        MID_BIN_DIR,
        testing::HarnessOptions{.daemon_toml = "[host_users]\nuid_min = 61000\nuid_max = 61099\n"});
    h->write_role("host-users", role);
    ASSERT_TRUE(h->start_daemon());
    db_path = h->file("state/users.db");
    setenv("MACHINEID_NSS_DB", db_path.c_str(), 1);
    setenv("MACHINEID_NSS_SOCKET", h->socket().c_str(), 1);
    unsetenv("MACHINEID_NSS_BYPASS_DAEMON");
    // This very process plays sshd.
    setenv("MACHINEID_NSS_SSHD", self_exe().c_str(), 1);
  }

  // getpwnam_r of `name` in a child that first takes these real and
  // effective uids (a setuid program: real = its caller's, effective = 0).
  nss_status pwnam_as(uid_t real, uid_t effective, const char* name) {
    pid_t pid = fork();
    if (pid == 0) {
      if (setresuid(real, effective, effective) != 0) _exit(100);
      passwd p{};
      int e = 0;
      _exit(static_cast<int>(pwnam(name, p, e)) + 10);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return static_cast<nss_status>(WEXITSTATUS(status) - 10);
  }

  std::unique_ptr<testing::SshdHarness> h;
};

TEST_F(NssDaemonTest, SshdLookupOfAnUnknownLoginIsAProvisionalEntryThatStoresNothing) {
  start(kHostUserRole);
  passwd p{};
  int e = 0;
  ASSERT_EQ(pwnam("bot-new", p, e), NSS_STATUS_SUCCESS);
  uid_t uid = p.pw_uid;
  EXPECT_GE(uid, 61000u);
  EXPECT_LE(uid, 61099u);
  EXPECT_EQ(pw_line(p), "bot-new:*:" + std::to_string(uid) + ":" + std::to_string(uid) +
                            "::/home/bot-new:/bin/sh");
  // Asked again, or a thousand other names: the same answer, nothing stored.
  for (int i = 0; i < 1000; ++i) {
    std::string name = "x-" + std::to_string(i);
    ASSERT_EQ(pwnam(name.c_str(), p, e), NSS_STATUS_SUCCESS) << name;
  }
  ASSERT_EQ(pwnam("bot-new", p, e), NSS_STATUS_SUCCESS);
  EXPECT_EQ(p.pw_uid, uid);
  EXPECT_FALSE(std::filesystem::exists(db_path)) << "a lookup before authentication wrote users.db";
  // No other process sees it: not getent, by name or by uid.
  EXPECT_EQ(wrapped({"getent", "passwd", "bot-new"}).status, 2);
  EXPECT_EQ(wrapped({"getent", "passwd", std::to_string(uid)}).status, 2);
}

TEST_F(NssDaemonTest, RootToolsSeeNoProvisionalEntry) {
  start(kHostUserRole);
  unsetenv("MACHINEID_NSS_SSHD");  // back to the real sshd paths: this binary is a root tool
  passwd p{};
  int e = 0;
  EXPECT_EQ(pwnam("bot-new", p, e), NSS_STATUS_NOTFOUND);
  // Through glibc, as useradd and chown ask (as root).
  EXPECT_EQ(wrapped({"getent", "passwd", "bot-new"}).status, 2);
  std::string file = dir.file("owned");
  testing::write_file(file, "");
  EXPECT_NE(wrapped({"chown", "bot-new", file}).status, 0) << "chown found a phantom user";
  // The same getent, named as sshd, is given the provisional entry.
  EXPECT_EQ(wrapped({"env", "MACHINEID_NSS_SSHD=/usr/bin/getent", "getent", "passwd", "bot-new"})
                .status,
            0);
  EXPECT_FALSE(std::filesystem::exists(db_path));
}

TEST_F(NssDaemonTest, SetuidProgramSeesNoProvisionalEntry) {
  start(kHostUserRole);
  // Effective root with its caller's real uid, as chfn run by nobody; even
  // named as sshd (which a real setuid program would not take from its
  // caller's environment).
  EXPECT_EQ(pwnam_as(65534, 0, "bot-new"), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(pwnam_as(1000, 0, "x-1"), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(pwnam_as(0, 0, "bot-new"), NSS_STATUS_SUCCESS) << "the control: sshd itself, as root";
  EXPECT_FALSE(std::filesystem::exists(db_path));
}

TEST_F(NssDaemonTest, UnprivilegedLookupNeverAsksTheDaemon) {
  start(kHostUserRole);
  EXPECT_EQ(pwnam_as(65534, 65534, "bot-new"), NSS_STATUS_NOTFOUND);
  EXPECT_FALSE(std::filesystem::exists(db_path));
}

TEST_F(NssDaemonTest, OnlyLoginsSomeRoleCanGrantAreAnswered) {
  start(kLiteralRole);
  passwd p{};
  int e = 0;
  EXPECT_EQ(pwnam("random-guess", p, e), NSS_STATUS_NOTFOUND);
  EXPECT_EQ(pwnam("bad:name", p, e), NSS_STATUS_NOTFOUND);
  ASSERT_EQ(pwnam("bot-ci", p, e), NSS_STATUS_SUCCESS);
  EXPECT_GE(p.pw_uid, 61000u);
  EXPECT_LE(p.pw_uid, 61099u);
}

TEST_F(NssDaemonTest, OnlyRootMayAskOrForgetWhileTheClientUserMayList) {
  start(kHostUserRole);
  pid_t pid = fork();
  if (pid == 0) {
    // The harness's client_user.
    if (setresuid(65534, 65534, 65534) != 0) _exit(100);
    auto ask = [&](const ByteVector& request) { return call_daemon(h->socket(), request, 2000); };
    auto reserve = ask(encode(UserRequest{"bot-new"}, MessageKind::provisional_user));
    auto forget = ask(encode(UserRequest{"bot-new"}, MessageKind::forget_user));
    auto list = ask(encode_simple(MessageKind::users));
    bool refused =
        reserve.ok() && decode_error(*reserve).ok() && forget.ok() && decode_error(*forget).ok();
    bool listed = list.ok() && decode_status_reply(*list).ok();
    _exit((refused ? 0 : 1) | (listed ? 0 : 2));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status) & 1, 0) << "an unprivileged peer was answered or forgot a host user";
  EXPECT_EQ(WEXITSTATUS(status) & 2, 0) << "the client user could not list host users";
  auto db = read_userdb(db_path);
  ASSERT_TRUE(db.ok());
  EXPECT_TRUE(db->users.empty());
}

TEST_F(NssDaemonTest, CorruptDatabaseIsReportedAndNeverOverwritten) {
  h = std::make_unique<testing::SshdHarness>(MID_BIN_DIR);
  h->write_role("host-users", kHostUserRole);
  std::string path = h->file("state/users.db");
  testing::write_file(path, "torn");
  ASSERT_TRUE(h->start_daemon());
  setenv("MACHINEID_NSS_DB", path.c_str(), 1);
  setenv("MACHINEID_NSS_SOCKET", h->socket().c_str(), 1);
  unsetenv("MACHINEID_NSS_BYPASS_DAEMON");
  setenv("MACHINEID_NSS_SSHD", self_exe().c_str(), 1);
  passwd p{};
  int e = 0;
  EXPECT_EQ(pwnam("bot-new", p, e), NSS_STATUS_UNAVAIL);
  auto status = testing::run(
      {std::string(MID_BIN_DIR) + "/machineidctl", "status", "--json", "--socket", h->socket()});
  EXPECT_EQ(status.status, 1) << status.output;
  EXPECT_NE(status.output.find("\"host_users\":\"" + path), std::string::npos) << status.output;
  EXPECT_EQ(testing::read_file(path), "torn");
}

TEST_F(NssDaemonTest, StoppedDaemonLeavesHostUsersResolvingAndUnknownNamesNotFoundAtOnce) {
  start(kHostUserRole);
  passwd p{};
  int e = 0;
  UserDb db;
  db.users = {user("bot-ci", 61050)};
  write(db);
  h->stop_daemon();
  auto begin = std::chrono::steady_clock::now();
  EXPECT_EQ(pwnam("bot-unknown", p, e), NSS_STATUS_NOTFOUND);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 20ms);
  ASSERT_EQ(pwnam("bot-ci", p, e), NSS_STATUS_SUCCESS);
  EXPECT_EQ(p.pw_uid, 61050u);
}

TEST_F(NssDaemonTest, FrozenDaemonCostsTheLookupAtMostItsDeadline) {
  start(kHostUserRole);
  h->signal_daemon(SIGSTOP);
  passwd p{};
  int e = 0;
  auto begin = std::chrono::steady_clock::now();
  nss_status s = pwnam("bot-unknown", p, e);
  auto took = std::chrono::steady_clock::now() - begin;
  h->signal_daemon(SIGCONT);
  EXPECT_EQ(s, NSS_STATUS_NOTFOUND);
  EXPECT_GE(took, 90ms);
  EXPECT_LT(took, 200ms);
}

}  // namespace
}  // namespace machineid
