// machineidctl status / reload: ask the running machineid-verifierd.
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "commands.h"
#include "machineid/client.h"
#include "machineid/config.h"
#include "machineid/encoding.h"

namespace machineidctl {
namespace {

// An administrator waits longer than sshd would; a reload loads every file.
constexpr int kDeadlineMs = 10000;

struct DaemonOptions {
  std::string socket;
  bool json = false;
};

// Parses [--config FILE] [--socket PATH] [--json]; the socket defaults to
// the config's [daemon] socket. Returns an error message or "".
std::string parse(const std::vector<std::string>& args, DaemonOptions& o, bool json_allowed) {
  std::string config_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json" && json_allowed) {
      o.json = true;
    } else if ((args[i] == "--socket" || args[i] == "--config") && i + 1 < args.size()) {
      (args[i] == "--socket" ? o.socket : config_path) = args[i + 1];
      ++i;
    } else {
      return "unknown or incomplete option '" + args[i] + "'";
    }
  }
  if (!o.socket.empty()) return "";
  if (config_path.empty()) config_path = std::string(machineid::kDefaultConfigPath);
  auto config = machineid::load_config(config_path);
  if (!config.ok()) return config.error().message;
  o.socket = config->daemon.socket;
  return "";
}

// Role names, file names and load errors carry policy text: every line is
// escaped on its way to the terminal.
void print_status(const nlohmann::json& s) {
  std::ostringstream out;
  out << "cluster   " << s["cluster"].get<std::string>() << "\n"
      << "node      " << s["node"]["name"].get<std::string>() << " " << s["node"]["labels"].dump()
      << "\n"
      << "mode      " << s["mode"].get<std::string>() << "\n"
      << "config    " << s["config"].get<std::string>() << "\n"
      << "uptime    " << s["uptime_seconds"].get<long>()
      << "s, last reload: " << s["last_reload"]["trigger"].get<std::string>() << "\n"
      << "CA keys   " << s["ca"]["file"].get<std::string>() << "\n";
  for (const auto& k : s["ca"]["keys"])
    out << "          " << k["fingerprint"].get<std::string>() << " "
        << k["type"].get<std::string>() << " (" << k["bits"].get<int>() << " bits, line "
        << k["line"].get<int>() << ")\n";
  out << "roles     " << s["roles"]["names"].size() << " in "
      << s["roles"]["dir"].get<std::string>() << "\n"
      << "locks     " << s["locks"]["count"].get<long>() << " ("
      << s["locks"]["in_force"].get<long>() << " in force) in "
      << s["locks"]["dir"].get<std::string>() << "\n"
      << "KRL       " << s["krl"]["file"].get<std::string>() << ": "
      << s["krl"]["state"].get<std::string>() << "\n";
  const auto& c = s["counters"];
  out << "requests  " << c["requests"] << " (" << c["allowed"] << " allowed, " << c["denied"]
      << " denied, " << c["cache_hits"] << " from cache), " << c["bad_frames"] << " bad frames, "
      << c["refused_peers"] << " refused peers, " << c["reloads"] << " reloads\n";
  for (const auto& [what, message] : s["errors"].items())
    out << "ERROR     " << what << ": " << message.get<std::string>() << "\n";
  for (const auto& notice : s["notices"]) out << "notice    " << notice.get<std::string>() << "\n";
  std::istringstream lines(out.str());
  for (std::string line; std::getline(lines, line);)
    std::cout << machineid::escape_untrusted(line) << "\n";
}

int ask(const std::string& name, const std::vector<std::string>& args, machineid::MessageKind kind) {
  DaemonOptions o;
  bool is_status = kind == machineid::MessageKind::status;
  if (std::string err = parse(args, o, is_status); !err.empty()) {
    std::cerr << "machineidctl " << name << ": " << err << "\nusage: machineidctl " << name
              << " [--config FILE | --socket PATH]" << (is_status ? " [--json]" : "") << "\n";
    return kExitUsage;
  }
  auto reply = machineid::call_daemon(o.socket, machineid::encode_simple(kind), kDeadlineMs);
  if (!reply.ok()) {
    std::cerr << "machineidctl " << name << ": " << reply.error().message << "\n";
    return kExitDenied;
  }
  auto status = machineid::decode_status_reply(*reply);
  if (!status.ok()) {
    auto error = machineid::decode_error(*reply);
    std::cerr << "machineidctl " << name << ": "
              << machineid::escape_untrusted(error.ok() ? *error : status.error().message) << "\n";
    return kExitDenied;
  }
  auto json = nlohmann::json::parse(status->json, nullptr, false);
  if (json.is_discarded()) {
    std::cerr << "machineidctl " << name << ": daemon sent unreadable status\n";
    return kExitDenied;
  }
  if (o.json) {
    std::cout << json.dump() << "\n";
  } else {
    if (!is_status) std::cout << "reloaded\n";
    print_status(json);
  }
  return json["errors"].empty() ? 0 : kExitDenied;
}

}  // namespace

int status(const std::vector<std::string>& args) { return ask("status", args, machineid::MessageKind::status); }
int reload(const std::vector<std::string>& args) { return ask("reload", args, machineid::MessageKind::reload); }

}  // namespace machineidctl
