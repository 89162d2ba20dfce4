// machineidctl users: the host users the daemon has made (SPEC §6), and
// retiring one.
#include <ctime>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "machineid/client.h"
#include "machineid/config.h"

namespace machineidctl {
namespace {

constexpr int kDeadlineMs = 10000;
constexpr const char* kUsersUsage =
    "usage: machineidctl users [--config FILE | --socket PATH] [--json]\n"
    "       machineidctl users --forget LOGIN [--config FILE | --socket PATH]\n";

std::string utc(const nlohmann::json& seconds) {
  if (!seconds.is_number_integer() || seconds.get<std::int64_t>() == 0) return "-";
  std::time_t t = seconds.get<std::time_t>();
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void print_users(const nlohmann::json& j) {
  std::cout << std::left << std::setw(24) << "LOGIN" << std::setw(12) << "UID" << std::setw(28)
            << "GROUPS" << std::setw(22) << "FIRST LOGIN" << std::setw(22) << "LAST LOGIN"
            << "BOT\n";
  for (const auto& u : j["users"]) {
    std::string groups;
    for (const auto& g : u["groups"]) groups += (groups.empty() ? "" : ",") + g.get<std::string>();
    std::cout << std::setw(24) << u["login"].get<std::string>() << std::setw(12)
              << u["uid"].get<std::uint32_t>() << std::setw(28) << (groups.empty() ? "-" : groups)
              << std::setw(22) << utc(u["first_login"]) << std::setw(22) << utc(u["last_login"])
              << (u["bot"].is_string() ? u["bot"].get<std::string>() : "-") << "\n";
  }
  if (j.contains("taken_by_other_sources") && !j["taken_by_other_sources"].empty()) {
    std::string ids;
    for (const auto& t : j["taken_by_other_sources"])
      ids += (ids.empty() ? "" : ",") + std::to_string(t["id"].get<std::uint32_t>());
    std::cout << "taken     " << ids << " (known to other NSS sources, never given)\n";
  }
  for (const auto& r : j["retired"])
    std::cout << "retired   " << r["login"].get<std::string>() << " (uid "
              << r["uid"].get<std::uint32_t>() << ", never given again) at " << utc(r["retired_at"])
              << "\n";
  if (j.contains("error")) std::cout << "ERROR     " << j["error"].get<std::string>() << "\n";
}

}  // namespace

int users(const std::vector<std::string>& args) {
  std::string socket, config_path, forget;
  bool json = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    bool has_value = i + 1 < args.size();
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--socket" && has_value) {
      socket = args[++i];
    } else if (args[i] == "--config" && has_value) {
      config_path = args[++i];
    } else if (args[i] == "--forget" && has_value) {
      forget = args[++i];
    } else {
      std::cerr << "machineidctl users: unknown or incomplete option '" << args[i] << "'\n"
                << kUsersUsage;
      return kExitUsage;
    }
  }
  if (socket.empty()) {
    auto config = machineid::load_config(
        config_path.empty() ? std::string(machineid::kDefaultConfigPath) : config_path);
    if (!config.ok()) {
      std::cerr << "machineidctl users: " << config.error().message << "\n";
      return kExitUsage;
    }
    socket = config->daemon.socket;
  }

  auto kind = forget.empty() ? machineid::MessageKind::users : machineid::MessageKind::forget_user;
  auto request = forget.empty() ? machineid::encode_simple(kind)
                                : machineid::encode(machineid::UserRequest{forget}, kind);
  auto reply = machineid::call_daemon(socket, request, kDeadlineMs);
  if (!reply.ok()) {
    std::cerr << "machineidctl users: " << reply.error().message << "\n";
    return kExitDenied;
  }
  auto status = machineid::decode_status_reply(*reply);
  if (!status.ok()) {
    auto error = machineid::decode_error(*reply);
    std::cerr << "machineidctl users: " << (error.ok() ? *error : status.error().message) << "\n";
    return kExitDenied;
  }
  auto j = nlohmann::json::parse(status->json, nullptr, false);
  if (j.is_discarded() || !j.contains("users")) {
    std::cerr << "machineidctl users: the daemon sent an unreadable list\n";
    return kExitDenied;
  }
  if (!forget.empty()) {
    std::cout << "forgot " << forget << ": its uid is retired and never given again\n";
  } else if (json) {
    std::cout << j.dump() << "\n";
  } else {
    print_users(j);
  }
  return j.contains("error") ? kExitDenied : 0;
}

}  // namespace machineidctl
