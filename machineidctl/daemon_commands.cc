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
  // Roles and locks machineid-sync fetched load beside the directories'.
  auto synced = [&](const char* what) {
    return s.contains("sync") && s["sync"]["sources"].contains(what) ? " and " + s["sync"]["dir"].get<std::string>()
                                                                     : std::string();
  };
  out << "roles     " << s["roles"]["names"].size() << " in "
      << s["roles"]["dir"].get<std::string>() << synced("roles") << "\n"
      << "locks     " << s["locks"]["count"].get<long>() << " ("
      << s["locks"]["in_force"].get<long>() << " in force) in "
      << s["locks"]["dir"].get<std::string>() << synced("locks") << "\n"
      << "KRL       " << s["krl"]["file"].get<std::string>() << ": "
      << s["krl"]["state"].get<std::string>() << "\n";
  // Each source machineid-sync keeps: how long ago it last synced, and why
  // not since.
  if (s.contains("sync"))
    for (const auto& [name, source] : s["sync"]["sources"].items()) {
      out << "sync      " << name << " " << source["url"].get<std::string>() << ": ";
      if (source["synced_seconds_ago"].is_null())
        out << "never synced";
      else
        out << "synced " << source["synced_seconds_ago"].get<long>() << "s ago";
      if (!source["last_error"].is_null())
        out << "; failing (" << source["failures"].get<long>() << "x): " << source["last_error"].get<std::string>();
      out << "\n";
    }
  const auto& c = s["counters"];
  out << "requests  " << c["requests"] << " (" << c["allowed"] << " allowed, " << c["denied"]
      << " denied, " << c["cache_hits"] << " from cache), " << c["bad_frames"] << " bad frames, "
      << c["refused_peers"] << " refused peers, " << c["reloads"] << " reloads\n";
  for (const auto& [what, message] : s["errors"].items())
    out << "ERROR     " << what << ": " << message.get<std::string>() << "\n";
  for (const auto& notice : s["notices"]) out << "notice    " << notice.get<std::string>() << "\n";
  std::istringstream lines(out.str());
  for (std::string line; std::getline(lines, line);) print_escaped(line);
}

}  // namespace

machineid::Result<std::string> daemon_socket(const Args& args) {
  if (auto socket = args.value("socket")) return *socket;
  auto config = machineid::load_config(args.value_or("config", std::string(machineid::kDefaultConfigPath)));
  if (!config.ok()) return config.error();
  return config->daemon.socket;
}

int ask_daemon(const Args& args, const machineid::ByteVector& request, nlohmann::json& reply) {
  auto socket = daemon_socket(args);
  if (!socket.ok()) return args.fail(kExitUsage, socket.error().message);
  auto answer = machineid::call_daemon(*socket, request, kDeadlineMs);
  if (!answer.ok()) return args.fail(kExitUnreachable, answer.error().message);
  auto status = machineid::decode_status_reply(*answer);
  if (!status.ok()) {
    auto error = machineid::decode_error(*answer);
    return args.fail(kExitFindings, error.ok() ? *error : status.error().message);
  }
  reply = nlohmann::json::parse(status->json, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) return args.fail(kExitFindings, "the daemon sent an unreadable answer");
  return kExitOk;
}

namespace {

int ask(const Args& args, machineid::MessageKind kind) {
  nlohmann::json reply;
  if (int rc = ask_daemon(args, machineid::encode_simple(kind), reply); rc != kExitOk) return rc;
  if (args.has("json")) {
    print_json(reply);
  } else {
    if (kind == machineid::MessageKind::reload) std::cout << "reloaded\n";
    print_status(reply);
  }
  return reply.contains("errors") && !reply["errors"].empty() ? kExitFindings : kExitOk;
}

}  // namespace

int status(const Args& args) { return ask(args, machineid::MessageKind::status); }
int reload(const Args& args) { return ask(args, machineid::MessageKind::reload); }

}  // namespace machineidctl
