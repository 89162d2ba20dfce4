// The daemon's host users (SPEC §6): who has which uid, kept in users.db,
// which the NSS module reads.
//
// A login gets a uid twice over, in two steps. sshd looks the login up
// before authentication; for a login it has not seen, the NSS module asks
// the daemon (reserve_user) and the daemon *reserves* an entry: a uid out of
// [uid_min, uid_max], written to users.db as pending (the module serves
// pending entries to nobody, and answers sshd from the reply). When a login
// with it is allowed with create_host_user_mode, the entry is *granted*:
// made permanent, with its groups, before the allow is answered. A
// reservation not granted within kReservationSeconds lapses and its uid is
// free again: it was never given to anyone.
//
// Reservations are persisted, not just kept in memory, so that a daemon
// restarted between sshd's lookup and the decision still grants the uid sshd
// already holds. For the same reason a grant keeps the reserved uid even when
// the certificate's host_user_uid trait names another: sshd starts the
// session with the uid it resolved first.
//
// Once granted, a uid never changes and is never given to another login:
// forgetting a host user retires its uid for good. Uids and names in
// /etc/passwd and /etc/group (read directly, never through NSS, which could
// be us) are never shadowed or reused.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "machineid/config.h"
#include "machineid/protocol.h"
#include "machineid/result.h"
#include "machineid/userdb.h"

namespace verifierd {

// Longer than sshd's LoginGraceTime (120 s by default), so the decision on
// the login that caused a reservation finds it.
inline constexpr std::int64_t kReservationSeconds = 300;
// sshd looks up whatever name a client sends before authenticating it; this
// bounds how many uids (and users.db writes) unauthenticated clients can
// hold at any time. Further names are refused until reservations lapse.
inline constexpr std::size_t kMaxReservations = 256;
// last_login is rewritten at most this often per user, so that a bot logging
// in every few seconds does not cost a users.db write per login.
inline constexpr std::int64_t kLastLoginResolution = 60;
// Set in the daemon's environment: libnss_machineid then never asks the
// daemon (the recursion guard for the daemon's own lookups).
inline constexpr const char* kNssBypassEnv = "MACHINEID_NSS_BYPASS_DAEMON";
// The trait that asks for a uid (as Teleport's host_user_uid).
inline constexpr std::string_view kUidTrait = "host_user_uid";

// The accounts in /etc/passwd and /etc/group.
struct LocalAccounts {
  std::set<std::string, std::less<>> users;
  std::set<std::uint32_t> uids, gids;
  std::map<std::string, std::uint32_t, std::less<>> groups;  // name -> gid
};
// Reads both files; a line that is not name:...:id:... is skipped, as glibc
// does. An unreadable file is an error naming it.
machineid::Result<LocalAccounts> read_local_accounts(const std::string& passwd_path,
                                                     const std::string& group_path);

// An allowed login whose granting roles set create_host_user_mode.
struct GrantRequest {
  std::string login;
  std::vector<std::string> groups;       // the roles' host_groups, then [host_users] groups
  std::optional<std::string> uid_trait;  // the certificate's host_user_uid, if any
  std::string bot;
};

struct GrantOutcome {
  std::optional<std::uint32_t> uid;  // empty: the login is a local account, no host user needed
  std::string note;  // what was not done as asked (a trait uid or group not used), or ""
};

class HostUsers {
 public:
  HostUsers(std::string db_path, std::string passwd_path = "/etc/passwd",
            std::string group_path = "/etc/group");

  // (Re)reads users.db; a missing file is an empty database. Until a load
  // succeeds every other call fails: a database that cannot be read is
  // never overwritten, since that would forget which uids were given.
  machineid::Status load();
  bool available() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& path() const { return db_path_; }

  // The passwd entry sshd may use before authentication: the login's host
  // user, or a new reservation for it. found=false (with the reason) for
  // invalid names, local accounts, a full range or too many reservations.
  machineid::HostUserReply reserve(std::string_view login,
                                   const machineid::Config::HostUsers& config, std::int64_t now);
  // Makes the login's entry permanent (reserved, existing or new), with the
  // request's groups, durably in users.db before returning.
  machineid::Result<GrantOutcome> grant(const GrantRequest& request,
                                        const machineid::Config::HostUsers& config,
                                        std::int64_t now);
  // Removes an active host user and retires its uid forever.
  machineid::Status forget(std::string_view login, std::int64_t now);

  // {"db", "users": [...], "reservations": [...], "retired": [...]} for
  // machineidctl users.
  std::string list_json(std::int64_t now) const;
  // Active users and live reservations, for the status report.
  std::size_t active_count() const;
  std::size_t reservation_count(std::int64_t now) const;

 private:
  machineid::Result<LocalAccounts> local() const;
  // users.db without lapsed reservations.
  machineid::UserDb pruned(std::int64_t now) const;
  machineid::Status commit(machineid::UserDb next);

  std::string db_path_, passwd_path_, group_path_;
  machineid::UserDb db_;
  std::string error_ = "not loaded";
};

}  // namespace verifierd
