// machineid-sync's record of each source (state.json in sync.dir): written
// by the sync service after every attempt, read by verifierd for `status`
// and for lock_mode "strict" (a lock source that has not synced lately
// denies logins), and by machineidctl.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "machineid/config.h"
#include "machineid/result.h"

namespace machineid {

inline constexpr std::size_t kMaxSyncStateBytes = 64 * 1024;
// How far in the future a recorded sync may lie and still count (seconds).
inline constexpr std::int64_t kSyncClockLeeway = 60;

struct SyncSource {
  std::string url;
  // Unix seconds: the last attempt, the last good answer (a new stream or
  // "not modified") and the last time the file was replaced.
  std::optional<std::int64_t> last_attempt, last_success, last_change;
  std::optional<std::string> last_error;  // of the latest attempt
  std::uint64_t failures = 0;             // in a row
  // For the next conditional GET.
  std::string etag, last_modified;
  // The trusted comment's timestamp of the signed stream in force: an older
  // one is a replay and is refused.
  std::optional<std::int64_t> signed_at;
};

struct SyncState {
  std::map<std::string, SyncSource, std::less<>> sources;  // "ca", "roles", "locks"
};

// Bounded (kMaxSyncStateBytes) and strict: Errc::malformed naming `source`.
Result<SyncState> parse_sync_state(std::string_view json, std::string_view source);
std::string format_sync_state(const SyncState& state);
// sync.dir/state.json; a missing file is an empty state, one that others
// could have written (check_policy_file) an error.
Result<SyncState> load_sync_state(const Config& config, uid_t owner);
Result<SyncState> load_sync_state(const Config& config);  // owner: sync_owner(config)

// Under lock_mode "strict" with sync.locks_url set: why the node's view of
// the locks cannot be trusted at `now` (never synced, or last synced longer
// than locks_max_age ago); nullopt when it can, or when neither applies.
std::optional<std::string> stale_lock_view(const Config& config, const Result<SyncState>& state, std::int64_t now);

}  // namespace machineid
