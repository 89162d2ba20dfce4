// Refreshing user_ca_file from the cluster's proxy (SPEC §3 user_ca_url).
//
// The proxy's /webapi/auth/export?type=user answer is fetched over HTTPS and
// written over user_ca_file only when it is a usable CA set; anything else
// keeps the last good file. The daemon notices the new file by itself.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include "machineid/ca.h"
#include "machineid/result.h"

namespace machineid {

inline constexpr std::chrono::seconds kCaFetchConnectTimeout{10};
inline constexpr std::chrono::seconds kCaFetchTotalTimeout{30};
// Longer intervals wait this long: a wait near the configurable maximum
// would overflow the steady clock and end at once, every time.
inline constexpr std::chrono::hours kMaxCaRefreshWait{24 * 365};

struct CaFetchOptions {
  std::string url;  // https:// only
  // "sha256:<hex or base64>" of the proxy's SubjectPublicKeyInfo. When set,
  // the pinned key alone authenticates the proxy (a self-signed proxy
  // certificate is fine); when unset, the system trust store does.
  std::optional<std::string> pin;
  std::string ca_bundle;  // a PEM file trusted instead of the system store; "" for the store
  std::chrono::milliseconds connect_timeout = kCaFetchConnectTimeout;
  std::chrono::milliseconds total_timeout = kCaFetchTotalTimeout;
  // The answer must fit where it goes: the CA file's own limit.
  std::size_t max_bytes = kMaxCaFileBytes;
  // A fetch in flight gives up within about a second once a stop is requested.
  std::stop_token stop;
};

// GETs options.url without following redirects and returns the body of a
// 200 answer. Errors name the URL: Errc::config for a URL that is not
// https:// or a malformed pin, Errc::limit for a body over max_bytes,
// Errc::crypto when the TLS peer fails verification or the pin, Errc::io for
// everything else (connection, timeout, stop, another HTTP status).
Result<std::string> fetch_ca_export(const CaFetchOptions& options);

struct CaRefreshOutcome {
  std::size_t keys = 0;  // in the fetched CA set
  bool changed = false;  // whether the file was rewritten
};

// Fetches once and, when the answer parses as a CA set of `cluster` (which
// holds at least one key) and differs from `path`'s content, replaces `path`
// atomically. On any error `path` is left as it was.
Result<CaRefreshOutcome> refresh_ca_file(const CaFetchOptions& options, const std::string& path,
                                         std::string_view cluster);

// refresh_ca_file at once and then every interval, on a thread of its own.
class CaRefresher {
 public:
  struct State {
    // Unix seconds of the last attempt, the last success and the last rewrite.
    std::optional<std::int64_t> last_attempt, last_success, last_change;
    std::optional<std::string> last_error;  // of the latest attempt; cleared by a success
    std::size_t keys = 0;                   // in the last good answer
    std::uint64_t attempts = 0, failures = 0;
  };
  // Told of every failure and every rewrite, from the refresher's thread;
  // a failure's message starts with kFailed.
  static constexpr std::string_view kFailed = "CA refresh failed";
  using Reporter = std::function<void(const std::string& message)>;

  // Starts the thread, which blocks every asynchronous signal: a daemon's
  // signals are for its own loop. `interval` is positive (capped at
  // kMaxCaRefreshWait); `report` may be empty.
  CaRefresher(CaFetchOptions options, std::string path, std::string cluster,
              std::chrono::milliseconds interval, Reporter report);
  CaRefresher(const CaRefresher&) = delete;
  CaRefresher& operator=(const CaRefresher&) = delete;
  // Stops the thread, abandoning a fetch in flight.
  ~CaRefresher() = default;

  // Returns within about a second, a fetch in flight included; idempotent.
  void stop();
  State state() const;
  // What it fetches, as given at construction (a config reload does not change it).
  const CaFetchOptions& options() const { return options_; }

 private:
  void run(std::stop_token stop);

  const CaFetchOptions options_;
  const std::string path_, cluster_;
  const std::chrono::milliseconds interval_;
  const Reporter report_;
  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  State state_;
  std::jthread thread_;  // last: started once everything it uses exists, joined first
};

}  // namespace machineid
