// The audit trail of SPEC §7: one journald entry per event, or a JSON line
// in a file or on stderr where there is no journald.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "machineid/protocol.h"
#include "machineid/result.h"

namespace machineid {

// session_terminate: the daemon ended an open session (a lock, a
// revocation, its certificate's end, or machineidctl sessions --kill).
enum class AuditEvent { login_allow, login_deny, session_open, session_close, session_terminate };

// "login.allow", ...
const char* audit_event_name(AuditEvent event);

struct AuditRecord {
  AuditEvent event = AuditEvent::login_deny;
  std::string login;
  CertIdentity who;  // its correlation_id ties a login decision to its session
  std::string source, reason;
  std::string detail;                    // human text, becomes MESSAGE
  std::optional<std::int64_t> duration;  // session.close and session.terminate, seconds
};

class AuditLog {
 public:
  // journald: send to journald when its socket exists. file: also append
  // JSON lines there (and there alone when journald is off or absent);
  // with neither, JSON lines go to stderr.
  AuditLog(bool journald, std::string file);

  // Never silent: a failed journald send falls back to the file or stderr.
  void write(const AuditRecord& record);

 private:
  bool journald_;
  std::string file_;
  std::mutex mutex_;  // one line at a time in the file
};

// The JSON-lines form of a record (one object, no newline).
std::string audit_json(const AuditRecord& record, std::int64_t unix_time);

// An event read back from the trail, with its time.
struct AuditEntry {
  std::int64_t time = 0;  // unix seconds
  AuditRecord record;
  std::string message;
};

// Reads one line written by audit_json; an error for anything else.
Result<AuditEntry> parse_audit_json(std::string_view line);
// "login.allow" -> AuditEvent; an error for unknown names.
Result<AuditEvent> audit_event_from_name(std::string_view name);

}  // namespace machineid
