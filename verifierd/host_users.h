// The daemon's host users (SPEC §6): who has which uid, kept in users.db,
// which the NSS module reads.
//
// Nothing is stored for a login before it is authenticated. sshd looks the
// login up before authentication; the NSS module asks the daemon
// (provisional), which answers a *provisional* entry computed from the
// database as it is, writing nothing and holding nothing: the login's uid
// is the first uid of its probe sequence (a hash of the login into
// [uid_min, uid_max], then onwards, wrapping within the range) that users.db
// does not mark taken and that no other NSS source knows. Any number of
// such lookups leaves no trace.
//
// When a login is allowed and a granting role sets create_host_user_mode,
// grant() walks the same sequence again and makes the account permanent —
// durably in users.db before the allow is answered — only when it lands on
// the uid sshd was given. It cannot ask sshd, so it denies whenever that
// uid may have changed since sshd's lookup:
//   - a uid earlier in the sequence is found known to another NSS source
//     now: it is recorded as taken (so the next lookup skips it) and this
//     attempt is denied; the next attempt of the same login gets the next
//     free uid;
//   - a uid earlier in the sequence was taken less than kProvisionalSeconds
//     ago by another login's account or group (or by another login's
//     discovery): a connection that looked this login up before then may
//     hold it, so the login is denied until that much time has passed.
//
// Once permanent, a uid never changes and is never given to another login:
// forgetting a host user retires its uid for good. Names and ids known to
// any other NSS source are never answered or allocated; ids found taken are
// kept in users.db, never removed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
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

// How long sshd may hold a provisional entry between its lookup and the
// decision: at least sshd's LoginGraceTime (120 s by default).
inline constexpr std::int64_t kProvisionalSeconds = 600;
// How many uids known to other NSS sources a provisional lookup steps over
// before giving up: bounds the work one unauthenticated lookup can cause.
inline constexpr int kMaxForeignProbes = 16;
// last_login is rewritten at most this often per user, so that a bot logging
// in every few seconds does not cost a users.db write per login.
inline constexpr std::int64_t kLastLoginResolution = 60;
// Set in the daemon's environment: libnss_machineid then answers nothing in
// this process, so the daemon's lookups see exactly the other NSS sources
// (and never wait on the daemon itself).
inline constexpr const char* kNssBypassEnv = "MACHINEID_NSS_BYPASS_DAEMON";
// The trait that asks for a uid (as Teleport's host_user_uid).
inline constexpr std::string_view kUidTrait = "host_user_uid";

// What another NSS source says about a name or an id.
struct Lookup {
  enum class State { absent, found, failed };
  State state = State::absent;
  std::uint32_t id = 0;  // found: the uid or gid
  std::string error;     // failed: why
  bool found() const { return state == State::found; }
  bool failed() const { return state == State::failed; }
};

// The accounts every NSS source but machineid knows.
class Accounts {
 public:
  virtual ~Accounts() = default;
  virtual Lookup user(std::string_view name) = 0;
  virtual Lookup group(std::string_view name) = 0;
  virtual Lookup uid(std::uint32_t id) = 0;
  virtual Lookup gid(std::uint32_t id) = 0;
};

// Through glibc (getpwnam_r and friends), in a process where kNssBypassEnv
// keeps libnss_machineid silent: files, systemd, sss, ldap... whatever
// nsswitch.conf lists. A source that fails is a failure, never "absent".
std::unique_ptr<Accounts> system_accounts();
// From files in passwd(5) and group(5) form (tests); an unreadable file
// fails every lookup.
std::unique_ptr<Accounts> file_accounts(std::string passwd_path, std::string group_path);

// The first position of `login`'s probe sequence in a range of `size` uids:
// FNV-1a over the name, then a 64-bit finaliser. Stable across releases
// (users.db does not record it, sshd and the daemon must agree).
std::uint64_t login_hash(std::string_view login);

// An allowed login.
struct GrantRequest {
  std::string login;
  std::vector<std::string> groups;       // the roles' host_groups, then [host_users] groups
  std::optional<std::string> uid_trait;  // the certificate's host_user_uid, if any
  std::string bot;
  bool create = true;  // some granting role sets create_host_user_mode
};

struct GrantOutcome {
  std::optional<std::uint32_t> uid;  // empty: another NSS source has the login, no host user
  std::string note;  // what was not done as asked (a trait uid, a group, a last_login write), or ""
};

class HostUsers {
 public:
  HostUsers(std::string db_path, std::unique_ptr<Accounts> accounts);

  // (Re)reads users.db; a missing file is an empty database. Until a load
  // succeeds every other call fails: a database that cannot be read is
  // never overwritten, since that would forget which uids were given.
  machineid::Status load();
  bool available() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& path() const { return db_path_; }

  // The passwd entry sshd may use before authentication: the login's host
  // user, or its provisional entry. Writes nothing. found=false (with the
  // reason) for invalid names, names or ids other sources know, a full range.
  machineid::HostUserReply provisional(std::string_view login,
                                       const machineid::Config::HostUsers& config) const;
  // For an allowed login: its host user, made permanent (with the
  // request's groups, durably in users.db) when it is new. An error denies
  // the login; its message says why.
  machineid::Result<GrantOutcome> grant(const GrantRequest& request,
                                        const machineid::Config::HostUsers& config,
                                        std::int64_t now);
  // Removes a host user and retires its uid forever.
  machineid::Status forget(std::string_view login, std::int64_t now);

  // {"db", "users": [...], "retired": [...], "taken": [...]} for machineidctl users.
  std::string list_json() const;
  // Counters kept as the database changes: O(1).
  std::size_t user_count() const { return store_ ? store_->users() : 0; }
  // Ids found known to other NSS sources.
  std::size_t foreign_count() const;

 private:
  // Reloads when the file was replaced behind the daemon (a restore).
  machineid::Status current();

  std::string db_path_;
  std::unique_ptr<Accounts> accounts_;
  // users.db, open: every request touches only its own records (userdb.h).
  std::unique_ptr<machineid::UserStore> store_;
  std::string error_ = "not loaded";
  // Which login's attempt found an id known to another source, and when
  // (memory only: after a restart every such id counts as another login's).
  std::map<std::uint32_t, std::pair<std::string, std::int64_t>> found_by_;
};

}  // namespace verifierd
