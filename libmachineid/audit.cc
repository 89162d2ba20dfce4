#include "machineid/audit.h"

#include "machineid/encoding.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

namespace machineid {
namespace {

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

// Fixed MESSAGE_IDs, one per event kind, so `journalctl MESSAGE_ID=…` finds them.
const char* message_id(AuditEvent event) {
  switch (event) {
    case AuditEvent::login_allow: return "4f1c2a7e9b3d4e0a8c6b5d2e1f0a9b8c";
    case AuditEvent::login_deny: return "9a8b7c6d5e4f40319281726354a5b6c7";
    case AuditEvent::session_open: return "c3d2e1f0a9b84c7d8e6f5a4b3c2d1e0f";
    case AuditEvent::session_close: return "1e2d3c4b5a6948778695a4b3c2d1e0ff";
    case AuditEvent::session_terminate: return "7b6a59483726415c8d9e0fa1b2c3d4e5";
  }
  return "00000000000000000000000000000000";
}

int priority(AuditEvent event) {
  return event == AuditEvent::login_deny || event == AuditEvent::session_terminate ? 4 /* warning */ : 6 /* info */;
}

// The human line, for journald's MESSAGE and the JSON "message": made of
// certificate text (key id, login, reason detail), so escaped whole.
std::string message(const AuditRecord& r) {
  std::string who = r.who.bot.empty() ? "key id '" + r.who.key_id + "'" : "bot '" + r.who.bot + "'";
  std::string from = r.source.empty() ? "" : " from " + r.source;
  std::string text;
  switch (r.event) {
    case AuditEvent::login_allow: text = "allowed " + who + " as '" + r.login + "'" + from; break;
    case AuditEvent::login_deny:
      text = "denied " + who + " as '" + r.login + "'" + from + ": " + r.reason + (r.detail.empty() ? "" : ": " + r.detail);
      break;
    case AuditEvent::session_open: text = "session opened for " + who + " as '" + r.login + "'" + from; break;
    case AuditEvent::session_close:
      text = "session closed for " + who + " as '" + r.login + "'" +
             (r.duration ? " after " + std::to_string(*r.duration) + "s" : "");
      break;
    case AuditEvent::session_terminate:
      text = "session of " + who + " as '" + r.login + "' ended by the daemon" +
             (r.duration ? " after " + std::to_string(*r.duration) + "s" : "") + ": " + r.reason +
             (r.detail.empty() ? "" : ": " + r.detail);
      break;
  }
  return escape_untrusted(text);
}

bool append_line(const std::string& path, const std::string& line) {
  // Root appends here: never through a symlink someone planted at the path.
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
  if (fd < 0) return false;
  std::string data = line + "\n";
  // O_APPEND makes one write() of a line atomic with respect to other writers.
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  return close(fd) == 0 && ok;
}

}  // namespace

const char* audit_event_name(AuditEvent event) {
  switch (event) {
    case AuditEvent::login_allow: return "login.allow";
    case AuditEvent::login_deny: return "login.deny";
    case AuditEvent::session_open: return "session.open";
    case AuditEvent::session_close: return "session.close";
    case AuditEvent::session_terminate: return "session.terminate";
  }
  return "unknown";
}

std::string audit_json(const AuditRecord& r, std::int64_t unix_time) {
  nlohmann::ordered_json j;
  j["time"] = unix_time;
  j["event"] = audit_event_name(r.event);
  auto values = audit_fields(r);
  for (std::size_t i = 0; i < values.size(); ++i) j[kAuditFieldNames[i].json] = *values[i];
  if (r.duration) j["duration"] = *r.duration;
  // The values stay as they were (the encoder escapes them as JSON); the
  // message is the journal's, escaped for terminals.
  j["message"] = message(r);
  // Replace invalid UTF-8 rather than throw: key ids are attacker-chosen bytes.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

AuditLog::AuditLog(bool journald, std::string file) : journald_(journald), file_(std::move(file)) {}

void AuditLog::write(const AuditRecord& r) {
  bool sent = false;
  if (journald_ && access(kJournalSocket, W_OK) == 0) {
    // Field values come from certificates: escaped, so that journalctl
    // and whatever reads the journal see text, not terminal commands.
    std::vector<std::string> fields = {
        std::string("MESSAGE=") + message(r),
        std::string("MESSAGE_ID=") + message_id(r.event),
        "PRIORITY=" + std::to_string(priority(r.event)),
        "SYSLOG_IDENTIFIER=machineid",
        std::string("MACHINEID_EVENT=") + audit_event_name(r.event),
    };
    auto values = audit_fields(r);
    for (std::size_t i = 0; i < values.size(); ++i)
      fields.push_back(std::string(kAuditFieldNames[i].journal) + "=" + escape_untrusted(*values[i]));
    if (r.duration) fields.push_back("MACHINEID_DURATION=" + std::to_string(*r.duration));
    std::vector<iovec> iov;
    for (auto& f : fields) iov.push_back({f.data(), f.size()});
    sent = sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0;
  }
  if (sent && file_.empty()) return;
  std::string line = audit_json(r, static_cast<std::int64_t>(std::time(nullptr)));
  std::lock_guard<std::mutex> lock(mutex_);
  if (!file_.empty() && append_line(file_, line)) return;
  if (sent) {
    std::fprintf(stderr, "machineid: cannot append audit event to %s: %s\n", escape_untrusted(file_).c_str(),
                 std::strerror(errno));
    return;
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace machineid

namespace machineid {

Result<AuditEvent> audit_event_from_name(std::string_view name) {
  for (AuditEvent e : {AuditEvent::login_allow, AuditEvent::login_deny, AuditEvent::session_open,
                       AuditEvent::session_close, AuditEvent::session_terminate})
    if (name == audit_event_name(e)) return e;
  return make_error(Errc::malformed, "unknown audit event '" + std::string(name) + "'");
}

Result<AuditEntry> parse_audit_json(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(Errc::malformed, "not a JSON object");
  auto text = [&](const char* key) -> std::string {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto time = j.find("time");
  if (time == j.end() || !time->is_number_integer()) return make_error(Errc::malformed, "no integer \"time\"");
  MID_TRY(event, audit_event_from_name(text("event")));
  AuditEntry e;
  e.time = time->get<std::int64_t>();
  e.record.event = event;
  auto values = audit_fields(e.record);
  for (std::size_t i = 0; i < values.size(); ++i) *values[i] = text(kAuditFieldNames[i].json);
  if (auto d = j.find("duration"); d != j.end() && d->is_number_integer()) e.record.duration = d->get<std::int64_t>();
  e.message = text("message");
  return e;
}

}  // namespace machineid
