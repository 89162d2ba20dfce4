// verifierd's state: the policy in force, reloads that keep the last good
// pieces, the decision cache, counters and the audit trail.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "machineid/audit.h"
#include "machineid/sync_state.h"
#include "machineid/decision.h"
#include "machineid/protocol.h"
#include "connection.h"
#include "host_users.h"
#include "sessions.h"
#include "terminate.h"

namespace verifierd {

// How long a connection's decision answers sshd's repeated helper calls and
// keeps its correlation id: longer than sshd's LoginGraceTime (120 s).
inline constexpr std::int64_t kConnectionSeconds = 600;
inline constexpr std::size_t kCacheEntries = 4096;
// Open sessions are checked this often for a process that went without a
// PAM close, and for a certificate whose time is up.
inline constexpr std::int64_t kSessionSweepMs = 1000;

// What one load of the node's policy found.
struct PolicyLoad {
  std::unique_ptr<machineid::NodePolicy> policy;  // never null
  // How each piece loaded ("config", "ca", "policy", "revoked_keys"), in
  // that order. An error kept the last good version of the piece, except
  // for revoked_keys, whose error denies every certificate (the policy's
  // krl_error) unless it was transient.
  std::vector<std::pair<std::string, machineid::Status>> pieces;
  bool ca_loaded = false;  // the CA file loaded now: its sshd copy may be rewritten
  // The KRL could not be read for a passing reason (Errc::transient, after
  // a few quick retries): the KRL in force stays in force (at start, with
  // none in force yet, every certificate is denied until it loads).
  bool keep_krl = false;
  // Some piece failed for a passing reason: load again soon.
  bool transient = false;
};

// Builds a fresh NodePolicy from the configuration at `config_path` and
// every file it names. Each piece that does not load is taken from
// `last_good`; a KRL that is present but refused, unreadable or corrupt
// denies every certificate, as sshd's RevokedKeys does. The config, CA file
// and KRL must pass check_trusted_path (StrictModes). Reads `last_good`
// only and touches no engine state, so it runs off the event loop.
PolicyLoad load_fresh_policy(const std::string& config_path, const machineid::NodePolicy& last_good);

class Engine {
 public:
  explicit Engine(std::string config_path);
  ~Engine();  // waits for a load in progress
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Loads the configuration (an error stops the daemon) and every file it
  // names (errors there are reported and deny, they do not stop it).
  machineid::Status start(std::int64_t now);

  // Reloads run on a thread of their own: request_reload() starts one and
  // returns at once, and decisions go on with the policy in force until
  // finish_reload() puts the new one in force whole. A request made while a
  // load runs is coalesced into one more load after it. Returns the
  // generation of the load that will reflect this request.
  std::uint64_t request_reload(const std::string& trigger);
  // Readable when a load has finished: the loop then calls finish_reload().
  int reload_fd() const { return reload_fd_; }
  struct ReloadOutcome {
    bool applied = false;    // a load was put in force
    bool transient = false;  // it kept pieces for a passing reason: retry soon
  };
  // On the loop thread: puts a finished load in force and starts the
  // coalesced next one, if any. Does nothing when no load has finished.
  ReloadOutcome finish_reload(std::int64_t now);
  bool reloading() const { return worker_.joinable(); }
  // The generation of the last load put in force.
  std::uint64_t applied_generation() const { return applied_generation_; }

  // Decides for `peer` (the asking process, from SO_PEERCRED): once per
  // sshd connection and certificate and login (see connection.h).
  machineid::DecideReply decide(const machineid::DecideRequest& request, pid_t peer, std::int64_t now);
  // The same in steps, so that the pure decision (the signature check) can
  // run on another thread: begin_decide() answers from the connection's
  // earlier decision or says what to decide; machineid::decide() runs on
  // policy() as it was then; finish_decide() does everything with state.
  // A decision made on a policy no longer in force is made again.
  struct PendingDecide {
    machineid::DecideRequest request;
    pid_t peer = 0;
    std::optional<ConnectionProcess> process;
    std::optional<std::string> connection;
    std::string attempt;  // the cache key
    std::optional<std::pair<bool, std::string>> earlier;  // allowed and reason decided before, for PAM
    machineid::ByteVector certificate;  // decoded; empty when it did not decode
    std::optional<std::string> certificate_error;
    std::optional<std::string> stale_locks;  // as it was when the request came
    machineid::Request decision_request(std::int64_t now) const {
      std::optional<std::string> source;
      if (!request.source.empty()) source = request.source;
      return machineid::Request{certificate, request.login, source, now, stale_locks};
    }
  };
  std::variant<machineid::DecideReply, PendingDecide> begin_decide(const machineid::DecideRequest& request, pid_t peer,
                                                                   std::int64_t now);
  machineid::DecideReply finish_decide(PendingDecide&& pending, machineid::Decision d,
                                       const machineid::NodePolicy& decided_on, std::int64_t now);
  // The policy in force, shared with decisions running elsewhere.
  std::shared_ptr<const machineid::NodePolicy> policy() const { return policy_; }
  // A PAM session's open or close, from `peer` (sshd's process for the
  // connection): the audit trail, and the session table, which takes the
  // certificate the connection's PAM check allowed.
  void session_event(const machineid::SessionEvent& event, pid_t peer, std::int64_t now);
  // The session table, for machineidctl sessions.
  std::string sessions_json(std::int64_t now) const { return sessions_->json(now); }
  // Ends one session (machineidctl sessions --kill ID).
  machineid::Status kill_session(const std::string& id, std::int64_t now);
  // The loop's timer: sessions whose end has come or whose process is
  // gone, and the SIGKILLs due. next_tick_ms(): when it has work next
  // (monotonic ms), 0 for never.
  void tick(std::int64_t now);
  std::int64_t next_tick_ms() const;
  // The daemon is stopping: the sessions it is ending get their SIGKILL now.
  void finish_terminations() { terminator_.finish_all(); }
  // sshd's lookup before authentication (HostUsers::provisional), for
  // logins some loaded role could give a host user on this node. Writes
  // nothing.
  machineid::HostUserReply provisional_user(const std::string& login) const;
  // Retires a host user's uid forever (machineidctl users --forget).
  machineid::Status forget_user(const std::string& login, std::int64_t now);
  std::string users_json() const { return host_users_->list_json(); }
  std::string status_json(std::int64_t now) const;

  const machineid::Config& config() const { return policy_->config; }
  // Directories whose changes should trigger a reload.
  std::vector<std::string> watched_directories() const;
  // Whether a change to `name` in `dir` (one of the above) can change the
  // policy: the config, the CA file, the KRL, a role or lock file, or a
  // stream machineid-sync fetched.
  bool affects_policy(const std::string& dir, std::string_view name) const;
  // Whether it is machineid-sync's state file, which read_sync_state()
  // takes in without a reload.
  bool is_sync_state(const std::string& dir, std::string_view name) const;
  // Reads machineid-sync's state (small and bounded): the age of each
  // source for status, and of the lock source for lock_mode "strict".
  void read_sync_state();

  struct Counters {
    std::uint64_t requests = 0, allowed = 0, denied = 0, cache_hits = 0, bad_frames = 0, refused_peers = 0,
                  reloads = 0;
    unsigned decision_threads = 0;  // the pool's, beside the event loop
  };
  Counters& counters() { return counters_; }

 private:
  struct Cached {
    machineid::DecideReply reply;
    std::int64_t expires;
  };
  void start_load(const std::string& trigger);
  void apply(PolicyLoad load, const std::string& trigger, std::int64_t now);
  void publish_sshd_ca_keys();
  bool may_create_host_user(std::string_view login) const;
  void load_host_users();
  void load_sessions(std::int64_t now);
  // Ends a session: SIGHUP now, SIGKILL after the grace (terminate.h), and
  // a session.terminate event.
  // `processes` is taken on first need (all_processes()) and reused by the
  // ends that follow in one pass.
  void end_session(Session& session, const std::string& reason, const std::string& detail, std::int64_t now,
                   std::optional<std::vector<ProcStat>>& processes);
  // After a policy change: ends the sessions it no longer lets run.
  void check_sessions(std::int64_t now);
  void audit_session(const Session& session, machineid::AuditEvent event, const std::string& reason,
                     const std::string& detail, std::int64_t now);

  std::string config_path_;
  // The policy in force. Only the loop thread replaces it, and only after
  // the load thread (which reads it as the last good one) has been joined;
  // decision threads keep the snapshot they were given alive.
  std::shared_ptr<const machineid::NodePolicy> policy_;
  // The load in progress: its thread, its trigger, and its result, handed
  // over under the mutex and announced on reload_fd_ (an eventfd).
  std::thread worker_;
  std::string loading_trigger_;
  std::mutex loaded_mutex_;
  std::optional<PolicyLoad> loaded_;
  int reload_fd_ = -1;
  bool pending_ = false;  // another load was asked for while one ran
  bool loaded_once_ = false;  // a load has been put in force (there is a KRL state to keep)
  std::string pending_trigger_;
  std::uint64_t started_generation_ = 0, applied_generation_ = 0;
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
  std::string connection_id(const std::string& connection, std::int64_t now);

  // What a connection's allowed PAM check decided, for its session's open.
  struct AllowedLogin {
    std::string certificate, login;
    machineid::DecideReply reply;
    std::optional<std::int64_t> ends_at, uid;
    std::int64_t expires;
  };
  std::map<std::string, AllowedLogin> allowed_logins_;  // by connection
  std::unique_ptr<SessionTable> sessions_;
  Terminator terminator_;
  std::int64_t next_sweep_ms_ = 0;

  std::map<std::string, Cached> cache_;  // the helper's answers, by connection, certificate and login
  std::map<std::string, AttemptId> connection_ids_;  // correlation ids, by connection
  Counters counters_;
  std::int64_t started_at_ = 0, reloaded_at_ = 0;
  std::string last_trigger_;
  machineid::Result<machineid::SyncState> sync_state_ = machineid::SyncState{};
  bool locks_stale_ = false;  // as the last request found it
};

}  // namespace verifierd
