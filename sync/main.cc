// machineid-sync [--config FILE] [--once] | --help | --version
//
// Keeps sync.dir current from the cluster: the user CA, roles and locks,
// each on its own interval (locks the shortest), with jitter, and with a
// backoff that starts at a few seconds after a failure. SIGHUP re-reads the
// configuration and polls everything at once; SIGTERM stops it between
// fetches.
#include <getopt.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <random>
#include <string>

#include "machineid/config.h"
#include "machineid/log.h"
#include "machineid/sync.h"

namespace {

using machineid::Priority;
using machineid::Stream;
using Clock = std::chrono::steady_clock;

constexpr const char* kProgram = "machineid-sync";
constexpr std::chrono::seconds kFirstRetry{5};

void log(Priority priority, const std::string& message) { machineid::log_as(kProgram, priority, message); }

constexpr const char* kHelp =
    "usage: machineid-sync [--config FILE] [--once]\n"
    "\n"
    "Fetch the Teleport cluster's user CA, roles and locks over HTTPS into the directory\n"
    "machineid-verifierd reads ([sync] dir), each on its own interval.\n"
    "\n"
    "options:\n"
    "  --config FILE   the configuration (default /etc/machineid/verifierd.toml)\n"
    "  --once          fetch every configured stream once and exit\n"
    "  -h, --help      print this help and exit\n"
    "  --version       print the version and exit\n"
    "\n"
    "exit status: 0 every stream synced (or stopped on request), 1 a stream failed (--once) or the\n"
    "configuration does not load, 2 usage error\n";

struct Args {
  std::string config = std::string(machineid::kDefaultConfigPath);
  bool once = false;
};

// -1 to go on, else the exit status.
int parse_args(int argc, char** argv, Args& args) {
  enum { kConfig = 256, kOnce, kVersion };
  static const option kOptions[] = {{"config", required_argument, nullptr, kConfig},
                                    {"once", no_argument, nullptr, kOnce},
                                    {"help", no_argument, nullptr, 'h'},
                                    {"version", no_argument, nullptr, kVersion},
                                    {nullptr, 0, nullptr, 0}};
  opterr = 0;
  for (int c; (c = getopt_long(argc, argv, ":h", kOptions, nullptr)) != -1;) {
    switch (c) {
      case kConfig: args.config = optarg; break;
      case kOnce: args.once = true; break;
      case 'h': std::fputs(kHelp, stdout); return 0;
      case kVersion: std::printf("%s (machineid-host) %s\n", kProgram, MACHINEID_VERSION); return 0;
      default:
        std::fprintf(stderr, "%s: unknown option or missing value '%s'; try '%s --help'\n", kProgram,
                     argv[optind - 1], kProgram);
        return 2;
    }
  }
  if (optind != argc) {
    std::fprintf(stderr, "%s: unexpected argument '%s'; try '%s --help'\n", kProgram, argv[optind], kProgram);
    return 2;
  }
  return -1;
}

std::int64_t wall_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// One attempt, logged: a change and a recovery at info, a failure at
// warning when it starts or its message changes (a source that stays down
// is not logged every ten seconds).
bool run_one(machineid::Syncer& syncer, Stream stream) {
  std::string name(machineid::stream_name(stream));
  auto before = syncer.state().sources.find(name);
  std::optional<std::string> last_error;
  if (before != syncer.state().sources.end()) last_error = before->second.last_error;
  auto outcome = syncer.sync(stream, wall_now());
  if (!outcome.ok()) {
    if (outcome.error().message != last_error)
      log(Priority::warning, name + ": " + outcome.error().message + " (the last good copy stays)");
    return false;
  }
  if (outcome->changed) log(Priority::info, name + ": replaced, " + outcome->summary);
  if (last_error) log(Priority::notice, name + ": syncs again");
  return true;
}

Clock::duration jittered(std::chrono::seconds base, std::mt19937& rng) {
  // +-10%: a thousand nodes started together spread out within a few polls.
  std::uniform_real_distribution<double> spread(0.9, 1.1);
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(base.count() * spread(rng)));
}

// After `failures` in a row: 5 s, 10 s, 20 s... never longer than the interval.
std::chrono::seconds retry_after(std::uint64_t failures, std::chrono::seconds interval) {
  std::chrono::seconds wait = kFirstRetry;
  for (std::uint64_t i = 1; i < failures && wait < interval; ++i) wait *= 2;
  return std::min(wait, interval);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (int rc = parse_args(argc, argv, args); rc >= 0) return rc;
  auto config = machineid::load_config(args.config);
  if (!config.ok()) {
    log(Priority::error, config.error().message);
    return 1;
  }
  auto syncer = std::make_unique<machineid::Syncer>(std::move(*config));
  if (syncer->streams().empty()) {
    log(Priority::error, args.config + ": names nothing to sync (cluster.user_ca_url, sync.roles_url, sync.locks_url)");
    return 1;
  }
  if (args.once) {
    bool all = true;
    for (Stream s : syncer->streams()) all &= run_one(*syncer, s);
    return all ? 0 : 1;
  }

  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  std::mt19937 rng(std::random_device{}());
  std::map<Stream, Clock::time_point> due;
  for (Stream s : syncer->streams()) due[s] = Clock::now();
  sd_notify(0, "READY=1");
  for (;;) {
    auto next = std::min_element(due.begin(), due.end(), [](auto& a, auto& b) { return a.second < b.second; });
    auto wait = next->second - Clock::now();
    if (wait > Clock::duration::zero()) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
      timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      int sig = sigtimedwait(&signals, nullptr, &ts);
      if (sig == SIGHUP) {
        auto fresh = machineid::load_config(args.config);
        if (!fresh.ok()) {
          log(Priority::error, fresh.error().message + " (keeping the configuration in force)");
          continue;
        }
        syncer = std::make_unique<machineid::Syncer>(std::move(*fresh));
        due.clear();
        for (Stream s : syncer->streams()) due[s] = Clock::now();
        if (due.empty()) {
          log(Priority::error, args.config + ": names nothing to sync any more; stopping");
          return 1;
        }
        log(Priority::info, "configuration reloaded (SIGHUP): syncing every stream now");
        continue;
      }
      if (sig == SIGTERM || sig == SIGINT) {
        sd_notify(0, "STOPPING=1");
        return 0;
      }
      if (sig < 0) continue;  // the time is up (EAGAIN) or EINTR: look again
    }
    Stream stream = next->first;
    bool ok = run_one(*syncer, stream);
    auto failures = syncer->state().sources.at(std::string(machineid::stream_name(stream))).failures;
    auto interval = syncer->interval(stream);
    next->second = Clock::now() + jittered(ok ? interval : retry_after(failures, interval), rng);
  }
}
