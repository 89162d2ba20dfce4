// Host users at fleet scale: for a users.db of N host users (10 to
// 1 000 000), the daemon's load time and RSS, the time of a grant that
// makes a new host user and of one that updates an existing one, and the
// file's size. Prints one JSON object per N on stdout (scripts/bench
// collects them). Run through make bench: MID_BENCH_DIR holds the files.
//
// usage: hostusers_bench N...
#include <sys/resource.h>
#include <cstdio>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "../verifierd/host_users.h"
#include "machineid/io.h"
#include "machineid/userdb.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "hostusers_bench: %s\n", what.c_str());
  std::exit(2);
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

}  // namespace

// Loads users.db at `path` (n users) and times sshd's provisional lookup
// and the grants; prints one JSON line.
void measure(const std::string& path, std::size_t n, const std::string& base,
             const machineid::Config::HostUsers& config, std::int64_t now) {
  long rss_before = rss_kib();
  auto t0 = Clock::now();
  verifierd::HostUsers h(path, verifierd::file_accounts(base + "/hu.passwd", base + "/hu.group"));
  if (auto s = h.load(); !s.ok()) die(s.error().message);
  double load_ms = micros(Clock::now() - t0) / 1000;
  long rss_after = rss_kib();

  // New host users: sshd's provisional lookup, then the grant. The same
  // number at every size; the first few right after the load are also
  // reported apart, as a daemon's first grants after a start.
  const int reps = 200, first = 30;
  std::vector<double> fresh, update, provisional;
  for (int r = 0; r < reps; ++r) {
    std::string login = "new" + std::to_string(r) + "x" + std::to_string(n);
    auto p0 = Clock::now();
    auto reply = h.provisional(login, config);
    provisional.push_back(micros(Clock::now() - p0));
    if (!reply.found) die("provisional " + login + ": " + reply.message);
    verifierd::GrantRequest req{login, {}, std::nullopt, "ci", true};
    auto g0 = Clock::now();
    auto g = h.grant(req, config, now);
    fresh.push_back(micros(Clock::now() - g0));
    if (!g.ok() || !g->uid) die("grant " + login + ": " + (g.ok() ? "no uid" : g.error().message));
  }
  // Existing host users logging in again later: last_login rewritten.
  for (int r = 0; r < reps; ++r) {
    std::string login = "bot" + std::to_string((static_cast<std::size_t>(r) * 7919) % n);
    verifierd::GrantRequest req{login, {}, std::nullopt, login, true};
    auto g0 = Clock::now();
    auto g = h.grant(req, config, now + 120 * r);  // past last_login's resolution: a write each
    update.push_back(micros(Clock::now() - g0));
    if (!g.ok() || !g->uid) die("regrant " + login);
  }
  std::uint64_t file = 0;
  if (auto bytes = machineid::read_file(path, 1ull << 32); bytes.ok()) file = bytes->size();
  std::printf(
      "{\"users\": %zu, \"load_ms\": %.3f, \"rss_kib\": %ld, \"rss_delta_kib\": %ld, "
      "\"provisional_us\": %.2f, \"grant_new_us\": %.2f, \"grant_new_first_us\": %.2f, "
      "\"grant_existing_us\": %.2f, "
      "\"file_bytes\": %llu, \"status_users\": %zu}\n",
      n, load_ms, rss_after, rss_after - rss_before, median(provisional), median(fresh),
      median({fresh.begin(), fresh.begin() + first}), median(update), static_cast<unsigned long long>(file), h.user_count());
  std::fflush(stdout);
}

int main(int argc, char** argv) {
  const char* dir = std::getenv("MID_BENCH_DIR");
  if (dir == nullptr) die("run it through make bench (MID_BENCH_DIR)");
  std::string base = dir;
  if (auto s = machineid::write_file_atomic(base + "/hu.passwd", "root:x:0:0:root:/root:/bin/sh\n");
      !s.ok())
    die(s.error().message);
  if (auto s = machineid::write_file_atomic(base + "/hu.group", "root:x:0:\n"); !s.ok())
    die(s.error().message);

  machineid::Config::HostUsers config;
  config.uid_min = 100000;
  config.uid_max = 2000000000;
  config.home = "/home/{login}";
  config.shell = "/bin/sh";
  const std::int64_t now = 1767225600;

  for (int a = 1; a < argc; ++a) {
    std::size_t n = std::strtoul(argv[a], nullptr, 10);
    std::string path = base + "/hu-users.db." + std::to_string(n);
    // The fixture is built in a child of its own, as a daemon's start only
    // loads: the blocks it frees would otherwise fill this process's malloc
    // lists, and the first allocations after the load would pay to sort
    // them (about 2 ms each for the first ~70 grants at a million users).
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
      machineid::UserDb db;
      db.users.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        machineid::HostUser u;
        u.login = "bot" + std::to_string(i);
        u.uid = static_cast<std::uint32_t>(config.uid_min + i);
        u.home = "/home/" + u.login;
        u.shell = "/bin/sh";
        u.bot = "bot" + std::to_string(i);
        u.first_login = u.last_login = now - 86400;
        db.users.push_back(std::move(u));
      }
      // Ids of the provisional sequences must not collide with these: the
      // new logins below take whatever is free after their hash.
      if (auto s = machineid::write_userdb(path, db); !s.ok()) die(s.error().message);
      std::_Exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      die("building the fixture failed");
    // Measured in a child too, so that no size's freed heap is left to the next.
    child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
      measure(path, n, base, config, now);
      std::_Exit(0);
    }
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      die("measuring " + std::to_string(n) + " users failed");
    // Kept for the fresh-process NSS comparison: this users.db, and a
    // passwd file of the same users for nss_files.
    std::string passwd = "root:x:0:0:root:/root:/bin/sh\n";
    for (std::size_t i = 0; i < n; ++i) {
      std::string login = "bot" + std::to_string(i), uid = std::to_string(config.uid_min + i);
      passwd += login + ":x:" + uid + ":" + uid + "::/home/" + login + ":/bin/sh\n";
    }
    if (auto s = machineid::write_file_atomic(base + "/nss-passwd." + std::to_string(n), passwd); !s.ok())
      die(s.error().message);
    if (rename(path.c_str(), (base + "/nss-users.db." + std::to_string(n)).c_str()) != 0)
      die("cannot keep " + path);
  }
  return 0;
}
