// machineidctl verify: the decision of SPEC §4, offline, as the daemon makes it.
#include <arpa/inet.h>
#include <pwd.h>
#include <sys/stat.h>

#include <cerrno>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "commands.h"
#include "machineid/config.h"
#include "machineid/decision.h"
#include "machineid/encoding.h"
#include "machineid/io.h"
#include "machineid/sync_state.h"

namespace machineidctl {
namespace {

using machineid::Decision;

struct VerifyOptions {
  std::string config = std::string(machineid::kDefaultConfigPath);
  std::string cert;
  std::string login;
  std::optional<std::string> from;
  std::int64_t at = 0;
};

bool valid_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Reads the options; returns an error message, or "" on success.
std::string parse_args(const Args& args, VerifyOptions& o) {
  o.config = args.value_or("config", o.config);
  o.cert = args.value_or("cert", "");
  o.login = args.value_or("login", "");
  if (auto from = args.value("from")) {
    if (!valid_ip(*from)) return "--from '" + *from + "' is not an IP address";
    o.from = *from;
  }
  if (o.cert.empty()) return "--cert is required";
  if (o.login.empty()) return "--login is required";
  if (auto at = args.value("at")) {
    auto t = parse_time(*at);
    if (!t) return "--at '" + *at + "' is neither unix seconds nor an RFC 3339 time (2026-12-02T10:00:00Z)";
    o.at = *t;
  } else {
    o.at = static_cast<std::int64_t>(std::time(nullptr));
  }
  return "";
}

void print_decision_json(const Decision& d, const VerifyOptions& o) {
  nlohmann::ordered_json j;
  j["decision"] = d.allowed ? "allow" : "deny";
  j["reason"] = machineid::reason_code(d.reason);
  j["login"] = o.login;
  j["key_id"] = d.cert ? nlohmann::ordered_json(d.cert->key_id) : nullptr;
  j["bot"] = d.identity && d.identity->bot ? nlohmann::ordered_json(*d.identity->bot) : nullptr;
  j["roles"] = d.identity ? d.identity->roles : std::vector<std::string>{};
  j["serial"] = d.cert ? nlohmann::ordered_json(d.cert->serial) : nullptr;
  j["ca_fingerprint"] = d.cert ? nlohmann::ordered_json(d.ca_fingerprint) : nullptr;
  print_json(j);
}

// One line a rule, like a linter: what passed, what failed and why. Key
// ids, logins, roles and the rules' details carry certificate and policy
// text: every line is escaped (print_escaped) so a terminal shows it
// instead of obeying it.
void print_human(const Decision& d, const VerifyOptions& o) {
  std::string head = std::string(d.allowed ? "allow" : "deny") + ": login '" + o.login + "'";
  if (!d.allowed) head += ": " + std::string(machineid::reason_code(d.reason)) + ": " + d.detail;
  print_escaped(head);
  for (const auto& c : d.checks) {
    char prefix[64];
    std::snprintf(prefix, sizeof prefix, "  %-4s  %-16s  ", c.passed ? "ok" : "FAIL", std::string(c.rule).c_str());
    print_escaped(prefix + c.detail);
  }
  if (d.identity) {
    std::string line = "  key id '" + d.cert->key_id + "'";
    if (d.identity->bot) line += ", bot '" + *d.identity->bot + "'";
    if (!d.identity->roles.empty()) {
      line += ", roles";
      for (const auto& r : d.identity->roles) line += " " + r;
    }
    print_escaped(line + ", CA " + d.ca_fingerprint);
  }
}

}  // namespace

machineid::Status check_ca_file_trusted(const machineid::Config& config) {
  return machineid::check_policy_file(config, machineid::user_ca_path(config));
}

int verify(const Args& args) {
  VerifyOptions o;
  if (std::string err = parse_args(args, o); !err.empty()) return args.usage_error(err);
  auto fail = [&](const std::string& message) { return args.fail(kExitUsage, message); };

  // The daemon's StrictModes: files others could have written are refused.
  if (auto trusted = machineid::check_trusted_path(o.config); !trusted.ok()) return fail(trusted.error().message);
  auto config = machineid::load_config(o.config);
  if (!config.ok()) return fail(config.error().message);
  if (auto trusted = check_ca_file_trusted(*config); !trusted.ok()) return fail(trusted.error().message);
  const std::string& krl = config->policy.revoked_keys;
  struct stat st {};
  if (!krl.empty() && !(stat(krl.c_str(), &st) != 0 && errno == ENOENT))
    if (auto trusted = machineid::check_trusted_path(krl); !trusted.ok()) return fail(trusted.error().message);
  auto policy = machineid::load_node_policy(std::move(*config));
  if (!policy.ok()) return fail(policy.error().message);
  // As the daemon: what did not load is reported and denies what it
  // defined (a role's holders; every login for locks in strict mode).
  for (const auto& e : policy->policy.role_errors)
    args.say("role not loaded: " + e);
  for (const auto& e : policy->policy.lock_errors) args.say("lock not loaded: " + e);
  auto text = machineid::read_file(o.cert, machineid::kMaxCertificateBytes * 2);
  if (!text.ok()) return fail(text.error().message);
  // Text that holds no decodable certificate is a `parse` denial, as the
  // daemon would answer for the same bytes.
  auto blob = machineid::certificate_blob_from_text(*text);
  machineid::ByteVector bytes = blob.ok() ? std::move(*blob) : machineid::ByteVector{};
  // As the daemon: under lock_mode strict, a lock source machineid-sync
  // has not synced lately denies.
  machineid::Request request{bytes, o.login, o.from, o.at,
                             machineid::stale_lock_view(policy->config, machineid::load_sync_state(policy->config), o.at),
                             /*explain=*/true};
  Decision d = machineid::decide(request, *policy);
  if (!blob.ok()) d.detail = d.checks.front().detail = o.cert + ": " + blob.error().message;

  if (args.has("json")) {
    print_decision_json(d, o);
  } else {
    print_human(d, o);
  }
  return d.allowed ? kExitAllowed : kExitDenied;
}

}  // namespace machineidctl
