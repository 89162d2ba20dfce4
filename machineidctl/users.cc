// machineidctl users: the host users the daemon has made (SPEC §6), and
// retiring one.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "commands.h"
#include "machineid/client.h"
#include "machineid/config.h"
#include "machineid/rfc3339.h"
#include "machineid/sudoers.h"

namespace machineidctl {
namespace {

std::string utc(const nlohmann::json& seconds) {
  if (!seconds.is_number_integer() || seconds.get<std::int64_t>() == 0) return "-";
  return machineid::format_rfc3339(seconds.get<std::int64_t>());
}

// Logins, groups and bot names come from certificates and roles: every
// line is escaped on its way to the terminal.
void print_users(const nlohmann::json& j) {
  std::ostringstream out;
  out << std::left << std::setw(24) << "LOGIN" << std::setw(12) << "UID" << std::setw(28) << "GROUPS" << std::setw(22)
      << "FIRST LOGIN" << std::setw(22) << "LAST LOGIN"
      << "BOT\n";
  for (const auto& u : j["users"]) {
    std::string groups;
    for (const auto& g : u["groups"]) groups += (groups.empty() ? "" : ",") + g.get<std::string>();
    out << std::setw(24) << u["login"].get<std::string>() << std::setw(12) << u["uid"].get<std::uint32_t>()
        << std::setw(28) << (groups.empty() ? "-" : groups) << std::setw(22) << utc(u["first_login"]) << std::setw(22)
        << utc(u["last_login"]) << (u["bot"].is_string() ? u["bot"].get<std::string>() : "-") << "\n";
  }
  if (j.contains("taken_by_other_sources") && !j["taken_by_other_sources"].empty()) {
    std::string ids;
    for (const auto& t : j["taken_by_other_sources"])
      ids += (ids.empty() ? "" : ",") + std::to_string(t["id"].get<std::uint32_t>());
    out << "taken     " << ids << " (known to other NSS sources, never given)\n";
  }
  for (const auto& r : j["retired"])
    out << "retired   " << r["login"].get<std::string>() << " (uid " << r["uid"].get<std::uint32_t>()
        << ", never given again) at " << utc(r["retired_at"]) << "\n";
  if (j.contains("error")) out << "ERROR     " << j["error"].get<std::string>() << "\n";
  std::istringstream lines(out.str());
  for (std::string line; std::getline(lines, line);) print_escaped(line);
}

}  // namespace

int users(const Args& args) {
  std::string forget = args.value_or("forget", "");
  if (args.has("forget") && forget.empty()) return args.usage_error("--forget needs a login");
  auto kind = forget.empty() ? machineid::MessageKind::users : machineid::MessageKind::forget_user;
  auto request =
      forget.empty() ? machineid::encode_simple(kind) : machineid::encode(machineid::UserRequest{forget}, kind);
  nlohmann::json j;
  if (int rc = ask_daemon(args, request, j); rc != kExitOk) return rc;
  if (!j.contains("users")) return args.fail(kExitFindings, "the daemon sent an unreadable list");
  if (args.has("json")) {
    print_json(j);
  } else if (!forget.empty()) {
    print_escaped("forgot " + forget + ": its uid is retired and never given again");
  } else {
    print_users(j);
  }
  // Its sudo rules go with it (the PAM session wrote them, as root).
  if (!forget.empty()) {
    std::string sudoers = std::string(machineid::kSudoersDir) + "/" + machineid::sudoers_file_name(forget);
    if (unlink(sudoers.c_str()) == 0) {
      if (!args.has("json")) print_escaped("removed " + sudoers);
    } else if (errno != ENOENT) {
      return args.fail(kExitFindings, "cannot remove " + sudoers + ": " + std::strerror(errno));
    }
  }
  return j.contains("error") ? kExitFindings : kExitOk;
}

}  // namespace machineidctl
