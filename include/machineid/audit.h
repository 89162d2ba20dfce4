// The audit trail of SPEC §7: one journald entry per event, or a JSON line
// in a file or on stderr where there is no journald.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

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

// The text fields of an audit record, by their names in the JSON lines and
// in the journal (SPEC §7), in the JSON lines' order: one table for every
// writer and reader of either.
struct AuditFieldName {
  const char* json;
  const char* journal;
};
inline constexpr AuditFieldName kAuditFieldNames[] = {
    {"login", "MACHINEID_LOGIN"},
    {"key_id", "MACHINEID_KEY_ID"},
    {"bot", "MACHINEID_BOT"},
    {"bot_instance", "MACHINEID_BOT_INSTANCE"},
    {"roles", "MACHINEID_ROLES"},
    {"serial", "MACHINEID_SERIAL"},
    {"cert_fp", "MACHINEID_CERT_FP"},
    {"ca_fp", "MACHINEID_CA_FP"},
    {"source", "MACHINEID_SOURCE"},
    {"reason", "MACHINEID_REASON"},
    {"correlation_id", "MACHINEID_CORRELATION_ID"},
};
// The record's fields in kAuditFieldNames's order (AuditRecord or const).
template <class Record>
auto audit_fields(Record& r) {
  return std::array{&r.login,      &r.who.key_id,  &r.who.bot, &r.who.bot_instance, &r.who.roles,
                    &r.who.serial, &r.who.cert_fp, &r.who.ca_fp, &r.source,         &r.reason,
                    &r.who.correlation_id};
}
static_assert(std::tuple_size_v<decltype(audit_fields(std::declval<AuditRecord&>()))> == std::size(kAuditFieldNames));

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
