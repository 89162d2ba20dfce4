// machineidctl sessions: the certificate sessions the daemon knows, and
// ending one.
#include <cstdint>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "commands.h"
#include "machineid/protocol.h"
#include "machineid/rfc3339.h"

namespace machineidctl {
namespace {

std::string text(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() && !it->get<std::string>().empty() ? it->get<std::string>() : "-";
}

// Ids, logins and bot names come from certificates: every line is escaped
// on its way to the terminal.
void print_sessions(const nlohmann::json& j) {
  std::ostringstream out;
  out << std::left << std::setw(26) << "ID" << std::setw(16) << "LOGIN" << std::setw(8) << "UID" << std::setw(9)
      << "PID" << std::setw(16) << "BOT" << std::setw(28) << "ROLES" << std::setw(17) << "SOURCE" << std::setw(9)
      << "AGE" << "ENDS\n";
  for (const auto& s : j["sessions"]) {
    std::string ends = s.value("ending_since", nlohmann::json()).is_number() ? "ending now"
                       : s["ends_at"].is_number()                           ? machineid::format_rfc3339(s["ends_at"].get<std::int64_t>())
                                                                            : "-";
    out << std::setw(26) << text(s, "id") << std::setw(16) << text(s, "login") << std::setw(8)
        << (s["uid"].get<std::int64_t>() < 0 ? std::string("-") : std::to_string(s["uid"].get<std::int64_t>()))
        << std::setw(9) << s["pid"].get<std::int64_t>() << std::setw(16) << text(s, "bot") << std::setw(28)
        << text(s, "roles") << std::setw(17) << text(s, "source") << std::setw(9)
        << (std::to_string(s["age_seconds"].get<std::int64_t>()) + "s") << ends << "\n";
  }
  std::istringstream lines(out.str());
  for (std::string line; std::getline(lines, line);) print_escaped(line);
}

}  // namespace

int sessions(const Args& args) {
  std::string id = args.value_or("kill", "");
  if (args.has("kill") && id.empty()) return args.usage_error("--kill needs a session id");
  auto request = id.empty() ? machineid::encode_simple(machineid::MessageKind::sessions)
                            : machineid::encode(machineid::UserRequest{id}, machineid::MessageKind::kill_session);
  nlohmann::json j;
  if (int rc = ask_daemon(args, request, j); rc != kExitOk) return rc;
  if (!j.contains("sessions") || !j["sessions"].is_array())
    return args.fail(kExitFindings, "the daemon sent an unreadable list");
  if (args.has("json")) {
    print_json(j);
  } else if (!id.empty()) {
    print_escaped("ending session " + id + ": SIGHUP sent to its sshd process, SIGKILL to what it runs in 1 s");
  } else {
    print_sessions(j);
  }
  return kExitOk;
}

}  // namespace machineidctl
