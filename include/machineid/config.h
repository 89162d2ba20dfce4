// verifierd.toml: the node's configuration (SPEC §3).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "machineid/policy.h"
#include "machineid/result.h"

namespace machineid {

inline constexpr std::string_view kDefaultConfigPath = "/etc/machineid/verifierd.toml";
inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

enum class PolicyMode { roles, principals };

struct Config {
  std::string path;

  struct Cluster {
    std::string name;
    std::string user_ca_file = "/etc/machineid/user_ca.pub";
    std::optional<std::string> user_ca_url;
    std::optional<std::string> user_ca_pin;
    std::chrono::seconds refresh_interval{600};
  } cluster;

  struct Node {
    std::string name;  // defaults to the host name
    NodeLabels labels;
  } node;

  struct Policy {
    std::string roles_dir = "/etc/machineid/roles.d";
    std::string locks_dir = "/etc/machineid/locks.d";
    std::string revoked_keys = "/etc/machineid/revoked.krl";
    PolicyMode mode = PolicyMode::roles;
    std::chrono::seconds max_cert_ttl{24 * 3600};
    std::chrono::seconds clock_skew{60};
  } policy;

  struct HostUsers {
    std::uint32_t uid_min = 61000;
    std::uint32_t uid_max = 64999;
    std::string home = "/home/{login}";
    std::string shell = "/bin/sh";
    std::vector<std::string> groups;
  } host_users;

  struct Daemon {
    std::string socket = "/run/machineid/verifierd.sock";
    std::string state_dir = "/var/lib/machineid";
    std::string client_user = "machineid";
  } daemon;

  struct Audit {
    bool journald = true;
    std::string file;
  } audit;
};

// Parses TOML text. Unknown keys, wrong types and bad values are errors
// naming source, line and key. `hostname` is node.name's default.
Result<Config> parse_config(std::string_view text, std::string_view source, std::string_view hostname);
// Reads and parses a config file; node.name defaults to gethostname().
Result<Config> load_config(const std::string& path);

// Go-style durations: "90s", "10m", "24h", "1h30m".
Result<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace machineid
