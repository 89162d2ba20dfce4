// The sessions the daemon knows: certificate logins whose session
// pam_machineid opened in sshd, kept so that a lock, a revocation or the
// certificate's end can end them, and persisted in state_dir so a daemon
// restart forgets none.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "machineid/cert.h"
#include "machineid/identity.h"
#include "machineid/protocol.h"
#include "machineid/result.h"

namespace verifierd {

inline constexpr std::string_view kSessionsFileName = "sessions.json";
// More than any node serves; a session past it is audited but not kept.
// Each entry holds its certificate (a few KiB at most from a Teleport CA),
// so a full table stays well inside the file limit.
inline constexpr std::size_t kMaxSessions = 16384;
inline constexpr std::size_t kMaxSessionsFileBytes = 256 * 1024 * 1024;

struct Session {
  machineid::CertIdentity who;   // who.correlation_id names the session
  pid_t pid = 0;                 // sshd's process for the connection, where PAM ran
  std::uint64_t start_time = 0;  // its start time: a reused pid is never taken for it
  std::string login;
  std::int64_t uid = -1;  // -1: neither /etc/passwd nor a host-user grant gave it
  std::string certificate;  // base64, re-checked against each new policy
  std::string source;
  std::int64_t opened_at = 0;            // unix seconds
  std::optional<std::int64_t> ends_at;   // disconnect_expired_cert, capped by max_session_ttl
  std::optional<std::int64_t> ending_since;  // the daemon is ending it (SIGHUP sent)

  // Parsed from `certificate` when the session is added or loaded; a
  // session whose certificate no longer parses has neither.
  std::shared_ptr<const machineid::Certificate> cert;
  std::shared_ptr<const machineid::Identity> identity;
};

class SessionTable {
 public:
  explicit SessionTable(std::string path) : path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  // Reads the table a previous daemon wrote (none: empty). A file that does
  // not parse is an error and leaves the table empty.
  machineid::Status load();
  // Adds (or replaces) a session and writes the table out.
  machineid::Status add(Session session);
  // Removes a session and writes the table out; nullopt when unknown.
  std::optional<Session> remove(const std::string& id);
  Session* find(const std::string& id);
  Session* find_process(pid_t pid, std::uint64_t start_time);
  const std::map<std::string, Session>& all() const { return sessions_; }
  // For changes the caller then saves.
  std::map<std::string, Session>& all_mutable() { return sessions_; }
  // Writes the table out (after a change made through find()).
  machineid::Status save() const;
  // For machineidctl sessions.
  std::string json(std::int64_t now) const;

 private:
  std::string path_;
  std::map<std::string, Session> sessions_;
};

// Fills session.cert and session.identity from session.certificate.
void parse_session_certificate(Session& session);

}  // namespace verifierd
