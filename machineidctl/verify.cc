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

namespace machineidctl {
namespace {

using machineid::Decision;

struct VerifyOptions {
  std::string config = std::string(machineid::kDefaultConfigPath);
  std::string cert;
  std::string login;
  std::optional<std::string> from;
  std::int64_t at = 0;
  bool json = false;
};

int usage_error(const std::string& message) {
  std::cerr << "machineidctl verify: " << message << "\n"
            << "usage: machineidctl verify --config FILE --cert FILE --login NAME [--from IP] "
               "[--at UNIX_SECONDS] [--json]\n";
  return kExitUsage;
}

bool valid_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

std::optional<std::int64_t> parse_seconds(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(s);
}

// Parses the flags; returns an error message, or "" on success.
std::string parse_args(const std::vector<std::string>& args, VerifyOptions& o) {
  bool have_at = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--json") {
      o.json = true;
      continue;
    }
    if (flag != "--config" && flag != "--cert" && flag != "--login" && flag != "--from" && flag != "--at")
      return "unknown option '" + flag + "'";
    if (i + 1 == args.size()) return flag + " needs a value";
    const std::string& value = args[++i];
    if (flag == "--config") o.config = value;
    if (flag == "--cert") o.cert = value;
    if (flag == "--login") o.login = value;
    if (flag == "--from") {
      if (!valid_ip(value)) return "--from '" + value + "' is not an IP address";
      o.from = value;
    }
    if (flag == "--at") {
      auto at = parse_seconds(value);
      if (!at) return "--at '" + value + "' is not a number of seconds since 1970";
      o.at = *at;
      have_at = true;
    }
  }
  if (o.cert.empty()) return "--cert is required";
  if (o.login.empty()) return "--login is required";
  if (!have_at) o.at = static_cast<std::int64_t>(std::time(nullptr));
  return "";
}

void print_json(const Decision& d, const VerifyOptions& o) {
  nlohmann::ordered_json j;
  j["decision"] = d.allowed ? "allow" : "deny";
  j["reason"] = machineid::reason_code(d.reason);
  j["login"] = o.login;
  j["key_id"] = d.cert ? nlohmann::ordered_json(d.cert->key_id) : nullptr;
  j["bot"] = d.identity && d.identity->bot ? nlohmann::ordered_json(*d.identity->bot) : nullptr;
  j["roles"] = d.identity ? d.identity->roles : std::vector<std::string>{};
  j["serial"] = d.cert ? nlohmann::ordered_json(d.cert->serial) : nullptr;
  j["ca_fingerprint"] = d.cert ? nlohmann::ordered_json(d.ca_fingerprint) : nullptr;
  std::cout << j.dump() << "\n";
}

// Every line of the report goes out through here: key ids, logins, roles
// and the rules' details carry certificate and policy text, escaped so a
// terminal shows it instead of obeying it.
void print_line(const std::string& line) { std::cout << machineid::escape_untrusted(line) << "\n"; }

// One line a rule, like a linter: what passed, what failed and why.
void print_human(const Decision& d, const VerifyOptions& o) {
  std::string head = std::string(d.allowed ? "allow" : "deny") + ": login '" + o.login + "'";
  if (!d.allowed) head += ": " + std::string(machineid::reason_code(d.reason)) + ": " + d.detail;
  print_line(head);
  for (const auto& c : d.checks) {
    char prefix[64];
    std::snprintf(prefix, sizeof prefix, "  %-4s  %-16s  ", c.passed ? "ok" : "FAIL", std::string(c.rule).c_str());
    print_line(prefix + c.detail);
  }
  if (d.identity) {
    std::string line = "  key id '" + d.cert->key_id + "'";
    if (d.identity->bot) line += ", bot '" + *d.identity->bot + "'";
    if (!d.identity->roles.empty()) {
      line += ", roles";
      for (const auto& r : d.identity->roles) line += " " + r;
    }
    print_line(line + ", CA " + d.ca_fingerprint);
  }
}

int fail(const std::string& message) {
  std::cerr << "machineidctl verify: " << machineid::escape_untrusted(message) << "\n";
  return kExitUsage;
}

}  // namespace

machineid::Status check_ca_file_trusted(const machineid::Config& config) {
  if (config.cluster.user_ca_url)
    if (passwd* pw = getpwnam(config.daemon.client_user.c_str()))
      return machineid::check_trusted_path(config.cluster.user_ca_file, pw->pw_uid);
  return machineid::check_trusted_path(config.cluster.user_ca_file);
}

int verify(const std::vector<std::string>& args) {
  VerifyOptions o;
  if (std::string err = parse_args(args, o); !err.empty()) return usage_error(err);

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
    std::cerr << "machineidctl verify: role not loaded: " << machineid::escape_untrusted(e) << "\n";
  for (const auto& e : policy->policy.lock_errors)
    std::cerr << "machineidctl verify: lock not loaded: " << machineid::escape_untrusted(e) << "\n";
  auto text = machineid::read_file(o.cert, machineid::kMaxCertificateBytes * 2);
  if (!text.ok()) return fail(text.error().message);
  // Text that holds no decodable certificate is a `parse` denial, as the
  // daemon would answer for the same bytes.
  auto blob = machineid::certificate_blob_from_text(*text);
  machineid::ByteVector bytes = blob.ok() ? std::move(*blob) : machineid::ByteVector{};
  machineid::Request request{bytes, o.login, o.from, o.at};
  Decision d = machineid::decide(request, *policy);
  if (!blob.ok()) d.detail = d.checks.front().detail = o.cert + ": " + blob.error().message;

  if (o.json) {
    print_json(d, o);
  } else {
    print_human(d, o);
  }
  return d.allowed ? kExitAllowed : kExitDenied;
}

}  // namespace machineidctl
