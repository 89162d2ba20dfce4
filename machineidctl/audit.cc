// machineidctl audit: our events read back from journald or the JSON-lines file.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <cstring>
#include <memory>
#include <iostream>
#include <optional>
#include <string>

#include "commands.h"
#include "machineid/audit.h"
#include "machineid/config.h"
#include "machineid/encoding.h"
#include "machineid/rfc3339.h"

namespace machineidctl {
namespace {

using machineid::AuditEntry;

struct AuditOptions {
  std::string config = std::string(machineid::kDefaultConfigPath);
  std::string file;           // read this JSON-lines file instead of journald
  std::int64_t since = 0;     // unix seconds
  std::string bot;
  bool json = false;
};

// "--since" takes unix seconds, an RFC 3339 time, or a duration ago ("90s",
// "10m", "24h").
std::optional<std::int64_t> parse_since(const std::string& s) {
  if (auto t = parse_time(s)) return t;
  auto ago = machineid::parse_duration(s);
  if (!ago.ok()) return std::nullopt;
  return static_cast<std::int64_t>(std::time(nullptr)) - ago->count();
}

void print(const AuditEntry& e, bool json) {
  if (json) {
    std::cout << machineid::audit_json(e.record, e.time) << "\n";
    return;
  }
  // What the trail holds may have been written by anyone who can write to
  // the journal or the file: escaped for the terminal like everything else.
  using machineid::escape_untrusted;
  std::printf("%s  %-17s %-10s %-12s %s\n", machineid::format_rfc3339(e.time).c_str(), machineid::audit_event_name(e.record.event),
              e.record.reason.empty() ? "-" : escape_untrusted(e.record.reason).c_str(),
              escape_untrusted(e.record.who.correlation_id.substr(0, 12)).c_str(), escape_untrusted(e.message).c_str());
}

bool wanted(const AuditEntry& e, const AuditOptions& o) { return e.time >= o.since && (o.bot.empty() || e.record.who.bot == o.bot); }

int from_file(const Args& args, const AuditOptions& o) {
  std::ifstream in(o.file);
  if (!in) return args.fail(kExitUsage, "cannot read " + o.file);
  std::string line;
  unsigned line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    auto e = machineid::parse_audit_json(line);
    if (!e.ok()) {
      args.say(o.file + ":" + std::to_string(line_no) + ": " + e.error().message);
      continue;  // a damaged line must not hide the ones after it
    }
    if (wanted(*e, o)) print(*e, o.json);
  }
  return 0;
}

int from_journal(const Args& args, const AuditOptions& o) {
  sd_journal* j = nullptr;
  if (int rc = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY); rc < 0)
    return args.fail(kExitUsage, std::string("cannot open the journal: ") + std::strerror(-rc));
  std::unique_ptr<sd_journal, decltype(&sd_journal_close)> journal(j, sd_journal_close);
  sd_journal_add_match(j, "SYSLOG_IDENTIFIER=machineid", 0);
  if (!o.bot.empty()) {
    std::string match = "MACHINEID_BOT=" + o.bot;
    sd_journal_add_match(j, match.data(), match.size());
  }
  if (o.since > 0) sd_journal_seek_realtime_usec(j, static_cast<std::uint64_t>(o.since) * 1000000);
  auto field = [&](const char* name) {
    const void* data = nullptr;
    std::size_t len = 0;
    if (sd_journal_get_data(j, name, &data, &len) < 0) return std::string();
    std::string_view kv(static_cast<const char*>(data), len);
    return std::string(kv.substr(kv.find('=') + 1));
  };
  while (sd_journal_next(j) > 0) {
    auto event = machineid::audit_event_from_name(field("MACHINEID_EVENT"));
    if (!event.ok()) continue;  // another program's entry under our identifier
    AuditEntry e;
    std::uint64_t usec = 0;
    sd_journal_get_realtime_usec(j, &usec);
    e.time = static_cast<std::int64_t>(usec / 1000000);
    e.record.event = *event;
    auto values = machineid::audit_fields(e.record);
    for (std::size_t i = 0; i < values.size(); ++i) *values[i] = field(machineid::kAuditFieldNames[i].journal);
    if (std::string d = field("MACHINEID_DURATION"); !d.empty()) e.record.duration = std::atoll(d.c_str());
    e.message = field("MESSAGE");
    if (wanted(e, o)) print(e, o.json);
  }
  return 0;
}

}  // namespace

int audit(const Args& args) {
  AuditOptions o;
  o.config = args.value_or("config", o.config);
  o.file = args.value_or("file", "");
  o.bot = args.value_or("bot", "");
  o.json = args.has("json");
  if (auto since = args.value("since")) {
    auto t = parse_since(*since);
    if (!t) return args.usage_error("--since '" + *since + "' is neither unix seconds, an RFC 3339 time nor a duration like 10m");
    o.since = *t;
  }
  // Without --file, read where the daemon writes: its file when journald is
  // off in the config, otherwise the journal.
  if (o.file.empty() && (args.has("config") || access(o.config.c_str(), R_OK) == 0)) {
    auto config = machineid::load_config(o.config);
    if (!config.ok()) return args.fail(kExitUsage, config.error().message);
    if (!config->audit.journald && !config->audit.file.empty()) o.file = config->audit.file;
  }
  return o.file.empty() ? from_journal(args, o) : from_file(args, o);
}

}  // namespace machineidctl
