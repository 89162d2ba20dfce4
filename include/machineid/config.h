// verifierd.toml: the node's configuration (SPEC §3).
//
// Every key but cluster.name is optional; the defaults are the member
// initialisers below. Values are checked when parsed:
//   - cluster.name and node.name are non-empty without blanks;
//   - paths (user_ca_file, roles_dir, locks_dir, shell, home, socket,
//     state_dir) are absolute; policy.revoked_keys and audit.file are
//     absolute or "" for none;
//   - host_users.home may hold the placeholder "{login}" and no other braces;
//   - cluster.user_ca_url starts with "https://"; cluster.user_ca_pin is
//     "sha256:" and a SHA-256 digest in hex (64 digits) or base64, and needs
//     user_ca_url;
//   - durations (parse_duration): refresh_interval and max_cert_ttl are
//     positive, clock_skew is at most kMaxClockSkew;
//   - host_users.uid_min <= uid_max, both in [kMinHostUid, kMaxHostUid], and
//     the range holds neither 65534 (nobody) nor 65535 (the 16-bit -1);
//   - daemon.client_user and host_users.groups are user/group names: 1 to 32
//     printable ASCII characters without ':', ',' or blanks, not starting
//     with '-', not all digits;
//   - sync: roles_url and locks_url are https:// URLs; pin is as
//     user_ca_pin and needs one of them; signing_key is a minisign public
//     key; intervals are positive and locks_max_age at least twice
//     locks_interval;
//   - no string holds a NUL or control character.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "machineid/labels.h"
#include "machineid/result.h"

namespace machineid {

inline constexpr std::string_view kDefaultConfigPath = "/etc/machineid/verifierd.toml";
inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;
// Below 1000 are system accounts (Debian's FIRST_UID); 2^32-1 is (uid_t)-1.
inline constexpr std::uint32_t kMinHostUid = 1000;
inline constexpr std::uint32_t kMaxHostUid = 4294967294;
// A larger skew would all but switch off the validity window.
inline constexpr std::chrono::seconds kMaxClockSkew{3600};
// The largest duration Go's time.Duration holds, in whole seconds.
inline constexpr std::chrono::seconds kMaxDuration{9223372036};

enum class PolicyMode { roles, principals };
// What a lock file that does not load does. strict: every login is denied
// until it loads (Teleport's strict locking, which denies when its view of
// the locks cannot be trusted); best_effort: the last good locks stay in
// force (Teleport's best_effort, which keeps going on the locks it has).
enum class LockMode { strict, best_effort };

struct Config {
  std::string path;

  struct Cluster {
    std::string name;
    std::string user_ca_file = "/etc/machineid/user_ca.pub";
    std::optional<std::string> user_ca_url;
    std::optional<std::string> user_ca_pin;
    std::chrono::seconds refresh_interval{600};
  } cluster;

  struct Node {
    std::string name;  // defaults to the host name
    NodeLabels labels;
  } node;

  struct Policy {
    std::string roles_dir = "/etc/machineid/roles.d";
    std::string locks_dir = "/etc/machineid/locks.d";
    std::string revoked_keys = "/etc/machineid/revoked.krl";  // "": no KRL
    PolicyMode mode = PolicyMode::roles;
    LockMode lock_mode = LockMode::strict;
    // A certificate the KRL revokes, or whose CA is no longer trusted, ends
    // its open sessions too (locks always do).
    bool terminate_on_revoke = true;
    std::chrono::seconds max_cert_ttl{24 * 3600};
    std::chrono::seconds clock_skew{60};
  } policy;

  struct HostUsers {
    // Outside every range systemd documents (homed 60001-60513, DynamicUser
    // 61184-65519, nobody 65534, containers from 524288) and below
    // useradd's subordinate ids (SUB_UID_MIN 100000).
    std::uint32_t uid_min = 70000;
    std::uint32_t uid_max = 99999;
    std::string home = "/home/{login}";
    std::string shell = "/bin/sh";
    std::vector<std::string> groups;
  } host_users;

  struct Daemon {
    std::string socket = "/run/machineid/verifierd.sock";
    std::string state_dir = "/var/lib/machineid";
    std::string client_user = "machineid";
  } daemon;

  struct Audit {
    bool journald = true;
    std::string file;  // "": no JSON-lines copy
  } audit;

  // machineid-sync: the only part that talks to the network. It fetches
  // cluster.user_ca_url, roles_url and locks_url into `dir`, which verifierd
  // reads besides its own files (see the sync_* helpers below).
  struct Sync {
    std::string dir = "/var/lib/machineid-sync";
    std::string user = "machineid-sync";  // who owns what is in `dir`
    std::optional<std::string> roles_url, locks_url;
    // The web server of roles_url and locks_url: a pin of its TLS key, or a
    // PEM bundle trusted instead of the system store.
    std::optional<std::string> pin;
    std::string ca_bundle;
    // A minisign public key: every roles and locks stream must then come
    // with URL.minisig, signed by it, whose trusted comment names the cluster.
    std::optional<std::string> signing_key;
    std::chrono::seconds roles_interval{300};
    std::chrono::seconds locks_interval{10};
    // lock_mode "strict": a lock source not synced for this long denies
    // every login and ends open sessions, as Teleport's strict locking does
    // when its view is stale (Teleport's LockMaxStaleness is 5 minutes).
    std::chrono::seconds locks_max_age{300};
  } sync;
};

// What machineid-sync writes into sync.dir.
inline constexpr std::string_view kSyncCaFile = "user_ca.pub";
inline constexpr std::string_view kSyncRolesFile = "roles.yaml";
inline constexpr std::string_view kSyncLocksFile = "locks.yaml";
inline constexpr std::string_view kSyncStateFile = "state.json";
inline std::string sync_path(const Config& c, std::string_view name) { return c.sync.dir + "/" + std::string(name); }
inline bool sync_enabled(const Config& c) {
  return c.cluster.user_ca_url || c.sync.roles_url || c.sync.locks_url;
}

// Parses TOML text of at most kMaxConfigBytes. Unknown sections and keys,
// wrong types and bad values are errors (Errc::config) naming source, line
// and key ("verifierd.toml:12: policy.mode: ..."); TOML syntax errors
// (Errc::malformed) name line and column. `hostname` is node.name's default.
Result<Config> parse_config(std::string_view text, std::string_view source,
                            std::string_view hostname);
// Reads and parses a config file; node.name defaults to gethostname().
// An unreadable file is Errc::io naming the path.
Result<Config> load_config(const std::string& path);

// Go-style durations in whole seconds: one or more decimal integers each
// followed by "h", "m" or "s" ("90s", "10m", "24h", "1h30m"), or a bare "0".
// Signs, fractions, sub-second units ("500ms") and totals above kMaxDuration
// are errors.
Result<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace machineid
