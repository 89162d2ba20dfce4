// verifierd's state: the policy in force, reloads that keep the last good
// pieces, the decision cache, counters and the audit trail.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "machineid/audit.h"
#include "machineid/ca_refresh.h"
#include "machineid/decision.h"
#include "machineid/protocol.h"
#include "host_users.h"

namespace verifierd {

// sshd runs the principals command twice per login; one decision serves both.
inline constexpr std::int64_t kCacheSeconds = 5;
inline constexpr std::size_t kCacheEntries = 4096;

class Engine {
 public:
  explicit Engine(std::string config_path);

  // Loads the configuration (an error stops the daemon) and every file it
  // names (errors there are reported and deny, they do not stop it).
  machineid::Status start(std::int64_t now);
  // Re-reads everything. A file that no longer loads keeps its last good
  // version in force and is reported — except the KRL, which then denies all.
  void reload(const std::string& trigger, std::int64_t now);

  machineid::DecideReply decide(const machineid::DecideRequest& request, std::int64_t now);
  // Writes a PAM session's open or close to the audit trail.
  void session_event(const machineid::SessionEvent& event);
  // sshd's lookup before authentication (HostUsers::provisional), for
  // logins some loaded role could give a host user on this node. Writes
  // nothing.
  machineid::HostUserReply provisional_user(const std::string& login) const;
  // Retires a host user's uid forever (machineidctl users --forget).
  machineid::Status forget_user(const std::string& login, std::int64_t now);
  std::string users_json() const { return host_users_->list_json(); }
  std::string status_json(std::int64_t now) const;

  const machineid::Config& config() const { return policy_->config; }
  // The refresher of user_ca_file, when [cluster] user_ca_url is set; its
  // state shows in status.
  void set_ca_refresher(const machineid::CaRefresher* refresher) { ca_refresher_ = refresher; }
  // Directories whose changes should trigger a reload.
  std::vector<std::string> watched_directories() const;
  // Whether a change to `name` in `dir` (one of the above) can change the
  // policy: the config, the CA file, the KRL, or a role or lock file.
  bool affects_policy(const std::string& dir, std::string_view name) const;

  struct Counters {
    std::uint64_t requests = 0, allowed = 0, denied = 0, cache_hits = 0, bad_frames = 0, refused_peers = 0,
                  reloads = 0;
  };
  Counters& counters() { return counters_; }

 private:
  struct Cached {
    machineid::DecideReply reply;
    std::int64_t expires;
  };
  void publish_sshd_ca_keys();
  bool may_create_host_user(std::string_view login) const;
  void load_host_users();

  std::string config_path_;
  std::unique_ptr<machineid::NodePolicy> policy_;
  std::unique_ptr<machineid::AuditLog> audit_;
  // users.db in the state_dir the daemon started with: moving the database
  // of given uids is a restart, not a reload.
  std::unique_ptr<HostUsers> host_users_;
  std::map<std::string, std::string> errors_;  // "config", "ca", "policy", "host_users" -> message
  struct AttemptId {
    std::string id;
    std::int64_t expires;
  };
  template <class Entry>
  void remember(std::map<std::string, Entry>& map, const std::string& key, Entry entry, std::int64_t now);
  std::string attempt_id(const std::string& attempt, std::int64_t now);

  std::map<std::string, Cached> cache_;  // by certificate, login and source
  std::map<std::string, AttemptId> attempt_ids_;  // by certificate and login
  Counters counters_;
  std::int64_t started_at_ = 0, reloaded_at_ = 0;
  std::string last_trigger_;
  const machineid::CaRefresher* ca_refresher_ = nullptr;
};

}  // namespace verifierd
