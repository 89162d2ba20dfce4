// The policy at fleet scale: roles 10 -> 10 000, locks 10 -> 100 000, KRL
// serials 10 -> 1 000 000. For each point: how long loading takes, the heap
// it holds (bytes per role, lock or KRL entry), and a whole decision's time
// with that policy in force. Each point is measured in a child process of
// its own, so one point's heap does not count for the next. Files come from
// the benchmark's directory: the CA and certificate of scripts/bench
// ($MID_BENCH_DIR), KRLs written by the real ssh-keygen.
// usage: policy_scale roles|locks|krl N...   (one JSON object per line)
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "machineid/decision.h"
#include "machineid/io.h"
#include "machineid/resources.h"

namespace {

using namespace machineid;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr std::int64_t kNow = 1767227400;  // inside the fixture certificate's validity

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "policy_scale: %s\n", what.c_str());
  std::exit(2);
}

std::string bench_dir() {
  const char* dir = std::getenv("MID_BENCH_DIR");
  if (dir == nullptr) die("set MID_BENCH_DIR (run it through make bench)");
  return dir;
}

std::size_t heap_bytes() { return mallinfo2().uordblks + mallinfo2().hblkhd; }

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) die("cannot write " + path.string());
}

// A role as `tctl get roles` prints one: several logins, labels, options.
std::string role_yaml(const std::string& name) {
  return "kind: role\nversion: v7\nmetadata:\n  name: " + name +
         "\n  labels:\n    team: platform\nspec:\n  allow:\n    logins: ['{{internal.logins}}', deploy-" + name +
         ", ubuntu]\n    node_labels:\n      env: [prod, staging]\n      group: '^" + name +
         "-.*$'\n    host_groups: [docker]\n  deny:\n    logins: [postgres]\n  options:\n    max_session_ttl: 8h0m0s\n"
         "    forward_agent: false\n    port_forwarding: false\n    create_host_user_mode: keep\n";
}

// A lock as `tctl get locks` prints one.
std::string lock_yaml(std::size_t i) {
  std::string target = i % 10 == 0 ? "role: role-" + std::to_string(i) : "user: bot-" + std::to_string(i);
  return "kind: lock\nversion: v2\nmetadata:\n  name: lock-" + std::to_string(i) +
         "\nspec:\n  message: runner " + std::to_string(i) + " compromised\n  target:\n    " + target +
         "\n  created_at: \"2026-12-01T10:00:00Z\"\n  created_by: alice\n";
}

// The node and certificate of decision_bench: roles ci and ops, which grant.
constexpr const char* kGrantingRoles = R"(
kind: role
version: v7
metadata: {name: ci}
spec:
  allow:
    logins: ['root', '{{internal.logins}}']
    node_labels: {env: prod, 'group': '^api-.*$'}
---
kind: role
version: v7
metadata: {name: ops}
spec:
  allow:
    logins: [ops]
    node_labels: {'*': '*'}
)";

struct Point {
  std::string what;
  std::size_t n;
};

// Runs in the child: loads the point's policy, then decides.
void measure(const Point& p, const fs::path& dir) {
  const std::string bench = bench_dir();
  NodePolicy np;
  np.config.cluster.name = "example.teleport.sh";
  np.config.node.name = "api-1";
  np.config.node.labels = {{"env", "prod"}, {"group", "api-east"}};
  auto cas = CaSet::parse(*read_file(bench + "/ed25519-ca.pub", 1 << 20), "ca", "");
  auto blob = certificate_blob_from_text(*read_file(bench + "/ed25519-cert.pub", 1 << 20));
  if (!cas.ok() || !blob.ok()) die("fixtures");
  np.cas = std::move(*cas);

  std::size_t heap_before = heap_bytes();
  long rss_before = rss_kib();
  auto start = Clock::now();
  if (p.what == "krl") {
    auto krl = Krl::load((dir / "revoked.krl").string());
    if (!krl.ok()) die(krl.error().message);
    np.krl = std::make_shared<const Krl>(std::move(*krl));
    np.policy = load_policy((dir / "roles.d").string(), (dir / "locks.d").string());
  } else {
    np.policy = load_policy((dir / "roles.d").string(), (dir / "locks.d").string());
  }
  double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::size_t heap_after = heap_bytes();
  long rss_after = rss_kib();
  if (!np.policy.role_errors.empty() || !np.policy.lock_errors.empty())
    die("policy did not load: " + (np.policy.role_errors.empty() ? np.policy.lock_errors : np.policy.role_errors)[0]);

  std::vector<double> times;
  for (int i = 0; i < 2000; ++i) {
    auto t0 = Clock::now();
    Decision d = decide(Request{*blob, "root", std::nullopt, kNow, std::nullopt}, np);
    times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!d.allowed) die("fixture denied at " + p.what + " " + std::to_string(p.n) + ": " + d.detail);
  }
  std::sort(times.begin(), times.end());
  std::size_t items = p.what == "roles" ? np.policy.roles.size() : p.what == "locks" ? np.policy.locks.size() : p.n;
  double heap = static_cast<double>(heap_after - heap_before);
  std::printf("{\"what\": \"%s\", \"n\": %zu, \"load_ms\": %.3f, \"heap_bytes\": %.0f, \"bytes_each\": %.1f, "
              "\"rss_delta_kib\": %ld, \"decision_us\": %.2f}\n",
              p.what.c_str(), p.n, load_ms, heap, heap / static_cast<double>(std::max<std::size_t>(items, 1)),
              rss_after - rss_before, times[times.size() / 2]);
  std::fflush(stdout);
}

// Writes the point's files: N roles (besides the two that grant), N locks
// (none naming the fixture), or a KRL of N serials from the real ssh-keygen.
void prepare(const Point& p, const fs::path& dir) {
  fs::remove_all(dir);
  fs::create_directories(dir / "roles.d");
  fs::create_directories(dir / "locks.d");
  write(dir / "roles.d" / "granting.yaml", kGrantingRoles);
  if (p.what == "roles") {
    // A file per role, as policy import writes them.
    for (std::size_t i = 0; i < p.n; ++i)
      write(dir / "roles.d" / ("role-" + std::to_string(i) + ".yaml"), role_yaml("role-" + std::to_string(i)));
  } else if (p.what == "locks") {
    // Files of at most 10 000 locks: 100 000 in one file would pass the
    // loader's 16 MiB bound on a file and be refused as a whole.
    constexpr std::size_t kLocksPerFile = 10000;
    for (std::size_t first = 0; first < p.n; first += kLocksPerFile) {
      std::string all;
      for (std::size_t i = first; i < std::min(p.n, first + kLocksPerFile); ++i)
        all += (i > first ? "---\n" : "") + lock_yaml(i);
      write(dir / "locks.d" / ("locks-" + std::to_string(first / kLocksPerFile) + ".yaml"), all);
    }
  } else {
    // Serials far apart, so the KRL holds a list rather than ranges or a
    // bitmap (OpenSSH refuses bitmaps over 2 KiB, as this parser does);
    // the fixture's serial (7) is not among them.
    std::string spec;
    for (std::size_t i = 0; i < p.n; ++i) spec += "serial: " + std::to_string(1000 + 1000 * i) + "\n";
    write(dir / "krl.spec", spec);
    std::string cmd = "ssh-keygen -q -k -f '" + (dir / "revoked.krl").string() + "' -s '" + bench_dir() +
                      "/ed25519-ca.pub' '" + (dir / "krl.spec").string() + "'";
    if (std::system(cmd.c_str()) != 0) die("ssh-keygen -k failed");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) die("usage: policy_scale roles|locks|krl N...");
  std::string what = argv[1];
  if (what != "roles" && what != "locks" && what != "krl") die("roles, locks or krl");
  fs::path dir = fs::path(bench_dir()) / ("scale-" + what);
  for (int i = 2; i < argc; ++i) {
    Point p{what, static_cast<std::size_t>(std::strtoull(argv[i], nullptr, 10))};
    prepare(p, dir);
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
      measure(p, dir);
      std::_Exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) die("a point failed");
  }
  // The last point's files stay: scripts/bench reloads the largest KRL in a
  // live daemon, and removes the whole directory when it is done.
  return 0;
}
