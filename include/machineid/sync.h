// machineid-sync's work, one stream at a time: fetch the cluster's user CA,
// roles and locks over HTTPS into sync.dir, where verifierd reads them.
//
// Nothing partial ever lands: a stream that does not load with the
// daemon's own parser, holds resources of the other kind, fails its
// signature, names another cluster or is older than the one in force is
// refused whole and the last good file stays. Each attempt is recorded in
// sync.dir/state.json (sync_state.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "machineid/config.h"
#include "machineid/minisign.h"
#include "machineid/result.h"
#include "machineid/sync_state.h"

namespace machineid {

enum class Stream { ca, roles, locks };
std::string_view stream_name(Stream stream);

struct SyncReport {
  bool changed = false;       // the file was replaced
  bool not_modified = false;  // the server said 304
  std::string summary;        // what is in force now, for the log
};

class Syncer {
 public:
  // Takes over the validators and signature times saved in state.json, so
  // a restart neither refetches everything nor accepts a replay.
  explicit Syncer(Config config);

  // The streams the config names, and how often each is polled.
  std::vector<Stream> streams() const;
  std::chrono::seconds interval(Stream stream) const;

  // One attempt at `stream`; the state file is rewritten either way.
  Result<SyncReport> sync(Stream stream, std::int64_t now);
  const SyncState& state() const { return state_; }
  const Config& config() const { return config_; }

 private:
  Result<SyncReport> attempt(Stream stream, SyncSource& source);
  // The signature of a roles or locks stream; returns its time, if it says.
  Result<std::optional<std::int64_t>> check_signature(const std::string& url, std::string_view body,
                                                      const SyncSource& source);

  Config config_;
  std::optional<MinisignKey> key_;
  SyncState state_;
};

}  // namespace machineid
