#include "machineid/config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <initializer_list>

#include <toml++/toml.h>

#include "machineid/encoding.h"
#include "machineid/io.h"
#include "machineid/minisign.h"

namespace machineid {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

// Each check returns what is wrong with a string value, or "" when it is fine.
using Check = std::string (*)(std::string_view);

std::string check_identifier(std::string_view s) {
  if (s.empty() || s.find(' ') != std::string_view::npos) return "must be non-empty without blanks";
  return {};
}

std::string check_absolute(std::string_view s) {
  if (s.empty() || s.front() != '/') return "must be an absolute path";
  return {};
}

std::string check_absolute_or_empty(std::string_view s) {
  return s.empty() ? std::string{} : check_absolute(s);
}

std::string check_home(std::string_view s) {
  if (auto what = check_absolute(s); !what.empty()) return what;
  std::string rest(s);
  for (std::size_t at; (at = rest.find("{login}")) != std::string::npos;) rest.erase(at, 7);
  if (rest.find_first_of("{}") != std::string::npos)
    return "must be an absolute path; \"{login}\" is the only placeholder";
  return {};
}

// Names that /etc/passwd, /etc/group and our NSS database can all hold.
std::string check_account_name(std::string_view s) {
  bool ok = !s.empty() && s.size() <= 32 && s.front() != '-' &&
            !std::all_of(s.begin(), s.end(), is_digit) &&
            std::all_of(s.begin(), s.end(),
                        [](char c) { return c > ' ' && c < 0x7f && c != ':' && c != ','; });
  if (!ok)
    return "must be a user or group name: 1 to 32 printable ASCII characters without ':', ',' or "
           "blanks, not starting with '-', not all digits";
  return {};
}

std::string check_https_url(std::string_view s) {
  constexpr std::string_view scheme = "https://";
  if (!s.starts_with(scheme) || s.size() == scheme.size() || s.find(' ') != std::string_view::npos)
    return "must be an https:// URL";
  return {};
}

std::string check_pin(std::string_view s) {
  constexpr std::string_view prefix = "sha256:";
  if (s.starts_with(prefix)) {
    std::string_view digest = s.substr(prefix.size());
    if (digest.size() == 64 && std::all_of(digest.begin(), digest.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c));
        }))
      return {};
    auto decoded = base64_decode(digest);
    if (decoded.ok() && decoded->size() == 32) return {};
  }
  return "must be \"sha256:\" followed by a SHA-256 digest in hex or base64";
}

std::string check_mode(std::string_view s) {
  if (s != "roles" && s != "principals") return "must be \"roles\" or \"principals\"";
  return {};
}

std::string check_lock_mode(std::string_view s) {
  if (s != "strict" && s != "best_effort") return "must be \"strict\" or \"best_effort\"";
  return {};
}

// One table of the file, read key by key. Every getter leaves its output
// untouched when the key is absent and fails, naming source, line and key,
// when the value has the wrong type or fails its check.
class Section {
 public:
  Section(std::string_view source, std::string prefix, const toml::table* table)
      : source_(source), prefix_(std::move(prefix)), table_(table) {}

  // Fails on the unknown key that comes first in the file.
  Status only(std::initializer_list<std::string_view> known, std::string_view what = "key") const {
    if (table_ == nullptr) return {};
    const toml::key* first = nullptr;
    for (auto&& [key, node] : *table_) {
      if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
      if (first == nullptr || key.source().begin.line < first->source().begin.line) first = &key;
    }
    if (first == nullptr) return {};
    return error_at(first->source(), first->str(), "unknown " + std::string(what));
  }

  bool has(std::string_view key) const { return find(key) != nullptr; }
  const toml::node* find(std::string_view key) const {
    return table_ == nullptr ? nullptr : table_->get(key);
  }

  Error error_at(const toml::source_region& where, std::string_view key,
                 std::string_view what) const {
    return make_error(Errc::config, std::string(source_) + ":" + std::to_string(where.begin.line) +
                                        ": " + prefix_ + std::string(key) + ": " +
                                        std::string(what));
  }
  Error error(std::string_view key, std::string_view what) const {
    return error_at(find(key)->source(), key, what);
  }

  Status string(std::string_view key, std::string& out, Check check = nullptr) const {
    const toml::node* node = find(key);
    if (node == nullptr) return {};
    MID_TRY(value, as_string(*node, key, check));
    out = std::move(value);
    return {};
  }

  Status string(std::string_view key, std::optional<std::string>& out, Check check) const {
    if (!has(key)) return {};
    std::string value;
    MID_CHECK(string(key, value, check));
    out = std::move(value);
    return {};
  }

  Status duration(std::string_view key, std::chrono::seconds& out, std::chrono::seconds min,
                  std::chrono::seconds max) const {
    if (!has(key)) return {};
    std::string text;
    MID_CHECK(string(key, text));
    auto parsed = parse_duration(text);
    if (!parsed.ok()) return error(key, parsed.error().message);
    if (*parsed < min || *parsed > max) {
      return error(key, min.count() > 0 ? "must be positive"
                                        : "must be at most " + std::to_string(max.count()) + "s");
    }
    out = *parsed;
    return {};
  }

  Status uid(std::string_view key, std::uint32_t& out) const {
    const toml::node* node = find(key);
    if (node == nullptr) return {};
    const auto* value = node->as_integer();
    if (value == nullptr) return error(key, "must be an integer");
    std::int64_t v = value->get();
    if (v < kMinHostUid || v > kMaxHostUid) {
      return error(key, "must be between " + std::to_string(kMinHostUid) + " and " +
                            std::to_string(kMaxHostUid));
    }
    out = static_cast<std::uint32_t>(v);
    return {};
  }

  Status boolean(std::string_view key, bool& out) const {
    const toml::node* node = find(key);
    if (node == nullptr) return {};
    const auto* value = node->as_boolean();
    if (value == nullptr) return error(key, "must be true or false");
    out = value->get();
    return {};
  }

  Status string_list(std::string_view key, std::vector<std::string>& out, Check check) const {
    const toml::node* node = find(key);
    if (node == nullptr) return {};
    const auto* array = node->as_array();
    if (array == nullptr) return error(key, "must be an array of strings");
    std::vector<std::string> values;
    for (std::size_t i = 0; i < array->size(); ++i) {
      MID_TRY(value,
              as_string((*array)[i], std::string(key) + "[" + std::to_string(i) + "]", check));
      values.push_back(std::move(value));
    }
    out = std::move(values);
    return {};
  }

  Status string_map(std::string_view key, NodeLabels& out) const {
    const toml::node* node = find(key);
    if (node == nullptr) return {};
    const auto* table = node->as_table();
    if (table == nullptr) return error(key, "must be a table of strings");
    NodeLabels values;
    for (auto&& [name, value] : *table) {
      std::string path = std::string(key) + "." + std::string(name.str());
      if (std::any_of(name.str().begin(), name.str().end(), is_control))
        return error_at(name.source(), path, "must not hold control characters");
      MID_TRY(text, as_string(value, path, nullptr));
      values.emplace(name.str(), std::move(text));
    }
    out = std::move(values);
    return {};
  }

 private:
  Result<std::string> as_string(const toml::node& node, std::string_view key, Check check) const {
    const auto* value = node.as_string();
    if (value == nullptr) return error_at(node.source(), key, "must be a string");
    const std::string& s = value->get();
    if (std::any_of(s.begin(), s.end(), is_control))
      return error_at(node.source(), key, "must not hold control characters");
    if (check != nullptr) {
      if (std::string what = check(s); !what.empty()) return error_at(node.source(), key, what);
    }
    return s;
  }

  std::string_view source_;
  std::string prefix_;
  const toml::table* table_;
};

Status read_cluster(const Section& s, Config::Cluster& c) {
  MID_CHECK(s.only({"name", "user_ca_file", "user_ca_url", "user_ca_pin", "refresh_interval"}));
  MID_CHECK(s.string("name", c.name, check_identifier));
  MID_CHECK(s.string("user_ca_file", c.user_ca_file, check_absolute));
  MID_CHECK(s.string("user_ca_url", c.user_ca_url, check_https_url));
  MID_CHECK(s.string("user_ca_pin", c.user_ca_pin, check_pin));
  if (c.user_ca_pin && !c.user_ca_url) return s.error("user_ca_pin", "needs cluster.user_ca_url");
  return s.duration("refresh_interval", c.refresh_interval, std::chrono::seconds{1}, kMaxDuration);
}

Status read_node(const Section& s, Config::Node& n) {
  MID_CHECK(s.only({"name", "labels"}));
  MID_CHECK(s.string("name", n.name, check_identifier));
  return s.string_map("labels", n.labels);
}

Status read_policy(const Section& s, Config::Policy& p) {
  MID_CHECK(
      s.only({"roles_dir", "locks_dir", "revoked_keys", "mode", "lock_mode", "terminate_on_revoke", "max_cert_ttl",
              "clock_skew"}));
  MID_CHECK(s.string("roles_dir", p.roles_dir, check_absolute));
  MID_CHECK(s.string("locks_dir", p.locks_dir, check_absolute));
  MID_CHECK(s.string("revoked_keys", p.revoked_keys, check_absolute_or_empty));
  std::string mode;
  MID_CHECK(s.string("mode", mode, check_mode));
  if (!mode.empty()) p.mode = mode == "roles" ? PolicyMode::roles : PolicyMode::principals;
  std::string lock_mode;
  MID_CHECK(s.string("lock_mode", lock_mode, check_lock_mode));
  if (!lock_mode.empty()) p.lock_mode = lock_mode == "strict" ? LockMode::strict : LockMode::best_effort;
  MID_CHECK(s.boolean("terminate_on_revoke", p.terminate_on_revoke));
  MID_CHECK(s.duration("max_cert_ttl", p.max_cert_ttl, std::chrono::seconds{1}, kMaxDuration));
  return s.duration("clock_skew", p.clock_skew, std::chrono::seconds{0}, kMaxClockSkew);
}

Status read_host_users(const Section& s, Config::HostUsers& h) {
  MID_CHECK(s.only({"uid_min", "uid_max", "home", "shell", "groups"}));
  MID_CHECK(s.uid("uid_min", h.uid_min));
  MID_CHECK(s.uid("uid_max", h.uid_max));
  // Blame the bound the file sets; uid_max when it sets both.
  std::string_view blame = s.has("uid_max") ? "uid_max" : "uid_min";
  std::string range = std::to_string(h.uid_min) + ".." + std::to_string(h.uid_max);
  if (h.uid_min > h.uid_max)
    return s.error(blame, "range " + range + " is empty (uid_min > uid_max)");
  if (h.uid_min <= 65535 && h.uid_max >= 65534)
    return s.error(blame, "range " + range + " holds 65534 (nobody) or 65535 (the 16-bit -1)");
  MID_CHECK(s.string("home", h.home, check_home));
  MID_CHECK(s.string("shell", h.shell, check_absolute));
  return s.string_list("groups", h.groups, check_account_name);
}

Status read_daemon(const Section& s, Config::Daemon& d) {
  MID_CHECK(s.only({"socket", "state_dir", "client_user"}));
  MID_CHECK(s.string("socket", d.socket, check_absolute));
  MID_CHECK(s.string("state_dir", d.state_dir, check_absolute));
  return s.string("client_user", d.client_user, check_account_name);
}

Status read_audit(const Section& s, Config::Audit& a) {
  MID_CHECK(s.only({"journald", "file"}));
  MID_CHECK(s.boolean("journald", a.journald));
  return s.string("file", a.file, check_absolute_or_empty);
}

std::string check_minisign_key(std::string_view s) {
  auto key = MinisignKey::parse(s);
  return key.ok() ? std::string() : key.error().message + " (the base64 line minisign -G prints)";
}

Status read_sync(const Section& s, Config::Sync& y) {
  MID_CHECK(s.only({"dir", "user", "roles_url", "locks_url", "pin", "ca_bundle", "signing_key", "roles_interval",
                    "locks_interval", "locks_max_age"}));
  MID_CHECK(s.string("dir", y.dir, check_absolute));
  MID_CHECK(s.string("user", y.user, check_account_name));
  MID_CHECK(s.string("roles_url", y.roles_url, check_https_url));
  MID_CHECK(s.string("locks_url", y.locks_url, check_https_url));
  MID_CHECK(s.string("pin", y.pin, check_pin));
  if (y.pin && !y.roles_url && !y.locks_url) return s.error("pin", "needs sync.roles_url or sync.locks_url");
  MID_CHECK(s.string("ca_bundle", y.ca_bundle, check_absolute_or_empty));
  MID_CHECK(s.string("signing_key", y.signing_key, check_minisign_key));
  MID_CHECK(s.duration("roles_interval", y.roles_interval, std::chrono::seconds{1}, kMaxDuration));
  MID_CHECK(s.duration("locks_interval", y.locks_interval, std::chrono::seconds{1}, kMaxDuration));
  MID_CHECK(s.duration("locks_max_age", y.locks_max_age, std::chrono::seconds{1}, kMaxDuration));
  if (y.locks_max_age < 2 * y.locks_interval)
    return s.error(s.has("locks_max_age") ? "locks_max_age" : "locks_interval",
                   "locks_max_age must be at least twice locks_interval, or a late poll would deny logins");
  return {};
}

}  // namespace

Result<std::chrono::seconds> parse_duration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return make_error(Errc::malformed, "\"" + std::string(text) + "\": " + std::string(why));
  };
  // Go writes a zero duration as a bare "0".
  if (text == "0") return std::chrono::seconds{0};
  if (text.empty()) return bad("not a duration (like \"90s\", \"10m\", \"1h30m\")");
  const auto max = static_cast<std::uint64_t>(kMaxDuration.count());
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t start = i;
    std::uint64_t n = 0;
    for (; i < text.size() && is_digit(text[i]); ++i) {
      n = n * 10 + static_cast<std::uint64_t>(text[i] - '0');
      if (n > max) return bad("too long");
    }
    if (i == start) {
      if (text[i] == '-') return bad("must not be negative");
      return bad("not a duration (like \"90s\", \"10m\", \"1h30m\")");
    }
    std::size_t unit_start = i;
    while (i < text.size() && !is_digit(text[i])) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    std::uint64_t scale = 0;
    if (unit == "h")
      scale = 3600;
    else if (unit == "m")
      scale = 60;
    else if (unit == "s")
      scale = 1;
    else if (unit == "ms" || unit == "us" || unit == "\u00b5s" || unit == "\u03bcs" || unit == "ns")
      return bad("sub-second units are not supported");
    else if (unit.starts_with('.'))
      return bad("fractions are not supported (write \"1h30m\", not \"1.5h\")");
    else if (unit.empty())
      return bad("missing unit (h, m or s)");
    else
      return bad("unknown unit \"" + std::string(unit) + "\" (h, m or s)");
    if (n > (max - total) / scale) return bad("too long");
    total += n * scale;
  }
  return std::chrono::seconds{static_cast<std::int64_t>(total)};
}

Result<Config> parse_config(std::string_view text, std::string_view source,
                            std::string_view hostname) {
  if (text.size() > kMaxConfigBytes) {
    return make_error(Errc::limit, std::string(source) + ": larger than " +
                                       std::to_string(kMaxConfigBytes) + " bytes");
  }
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return make_error(Errc::malformed, std::string(source) + ":" +
                                           std::to_string(e.source().begin.line) + ":" +
                                           std::to_string(e.source().begin.column) + ": " +
                                           std::string(e.description()));
  }

  Section top(source, "", &root);
  MID_CHECK(top.only({"cluster", "node", "policy", "host_users", "daemon", "audit", "sync"}, "section"));
  auto section = [&](std::string_view name) -> Result<Section> {
    const toml::node* node = top.find(name);
    if (node != nullptr && !node->is_table()) return top.error(name, "must be a table");
    return Section(source, std::string(name) + ".", node == nullptr ? nullptr : node->as_table());
  };

  Config config;
  config.path = std::string(source);
  config.node.name = std::string(hostname);
  MID_TRY(cluster, section("cluster"));
  MID_CHECK(read_cluster(cluster, config.cluster));
  if (config.cluster.name.empty()) {
    return make_error(Errc::config, std::string(source) + ": cluster.name: is required");
  }
  MID_TRY(node, section("node"));
  MID_CHECK(read_node(node, config.node));
  if (config.node.name.empty()) {
    return make_error(Errc::config,
                      std::string(source) + ": node.name: not set and the host name is unknown");
  }
  MID_TRY(policy, section("policy"));
  MID_CHECK(read_policy(policy, config.policy));
  MID_TRY(host_users, section("host_users"));
  MID_CHECK(read_host_users(host_users, config.host_users));
  MID_TRY(daemon, section("daemon"));
  MID_CHECK(read_daemon(daemon, config.daemon));
  MID_TRY(audit, section("audit"));
  MID_CHECK(read_audit(audit, config.audit));
  MID_TRY(sync, section("sync"));
  MID_CHECK(read_sync(sync, config.sync));
  return config;
}

Result<Config> load_config(const std::string& path) {
  MID_TRY(text, read_file(path, kMaxConfigBytes));
  char host[HOST_NAME_MAX + 1] = {};
  // An unknown host name only matters when node.name is not set.
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return parse_config(text, path, host);
}

}  // namespace machineid
