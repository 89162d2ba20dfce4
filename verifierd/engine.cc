#include "engine.h"

#include <sys/random.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "machineid/encoding.h"
#include "machineid/io.h"

namespace verifierd {
namespace {

using namespace machineid;

void log(const std::string& line) { std::fprintf(stderr, "machineid-verifierd: %s\n", line.c_str()); }

std::string correlation_id() {
  std::uint8_t bytes[12];
  if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) std::abort();
  return hex(bytes);
}

std::string join(const std::vector<std::string>& items, const char* sep = " ") {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

}  // namespace

Engine::Engine(std::string config_path) : config_path_(std::move(config_path)) {}

Status Engine::start(std::int64_t now) {
  auto config = load_config(config_path_);
  if (!config.ok()) return config.error();
  policy_ = std::make_unique<NodePolicy>();
  policy_->config = std::move(*config);
  started_at_ = now;
  reload("start", now);
  return {};
}

void Engine::reload(const std::string& trigger, std::int64_t now) {
  auto fresh = std::make_unique<NodePolicy>();
  auto note = [&](const std::string& what, const Status& s) {
    if (s.ok()) {
      if (errors_.erase(what)) log(what + ": loads again");
    } else {
      errors_[what] = s.error().message;
      log(what + ": " + s.error().message + " (keeping the last good " + what + ")");
    }
  };

  auto config = load_config(config_path_);
  note("config", config.ok() ? Status{} : Status{config.error()});
  fresh->config = config.ok() ? std::move(*config) : policy_->config;

  auto cas = CaSet::load(fresh->config.cluster.user_ca_file, fresh->config.cluster.name);
  note("ca", cas.ok() ? Status{} : Status{cas.error()});
  fresh->cas = cas.ok() ? std::move(*cas) : policy_->cas;

  auto policy = load_policy(fresh->config.policy.roles_dir, fresh->config.policy.locks_dir);
  note("policy", policy.ok() ? Status{} : Status{policy.error()});
  fresh->policy = policy.ok() ? std::move(*policy) : policy_->policy;

  load_revocations(*fresh);
  if (fresh->krl_error) log("revoked_keys: " + *fresh->krl_error + " (denying every certificate)");

  const auto& audit = fresh->config.audit;
  audit_ = std::make_unique<AuditLog>(audit.journald, audit.file);
  policy_ = std::move(fresh);
  cache_.clear();
  ++counters_.reloads;
  reloaded_at_ = now;
  last_trigger_ = trigger;
  if (cas.ok()) publish_sshd_ca_keys();
  log("policy loaded (" + trigger + "): " + std::to_string(policy_->cas.keys().size()) + " CA keys, " +
      std::to_string(policy_->policy.roles.size()) + " roles, " + std::to_string(policy_->policy.locks.size()) +
      " locks, KRL " + (policy_->krl_error ? "unusable" : policy_->krl ? "loaded" : "absent"));
}

// sshd's TrustedUserCAKeys takes bare keys; keep a copy beside the CA file
// so a rotation reaches sshd with no restart.
void Engine::publish_sshd_ca_keys() {
  std::string path = policy_->config.cluster.user_ca_file + ".sshd";
  std::string content = policy_->cas.sshd_form();
  auto current = read_file(path, kMaxCaFileBytes);
  if (current.ok() && *current == content) return;
  auto written = write_file_atomic(path, content, 0644);
  if (!written.ok()) {
    errors_["ca_sshd"] = written.error().message;
    log(written.error().message);
  } else {
    errors_.erase("ca_sshd");
  }
}

DecideReply Engine::decide(const DecideRequest& request, std::int64_t now) {
  ++counters_.requests;
  std::string key = hex(sha256(as_bytes(request.certificate))) + '\0' + request.login + '\0' + request.source;
  if (auto it = cache_.find(key); it != cache_.end() && it->second.expires > now) {
    ++counters_.cache_hits;
    ++(it->second.reply.allowed ? counters_.allowed : counters_.denied);
    return it->second.reply;
  }

  auto blob = base64_decode(request.certificate);
  ByteVector bytes = blob.ok() ? std::move(*blob) : ByteVector{};
  std::optional<std::string> source;
  if (!request.source.empty()) source = request.source;
  Decision d = machineid::decide(Request{bytes, request.login, source, now}, *policy_);
  if (!blob.ok()) d.detail = "certificate: " + blob.error().message;

  DecideReply reply;
  reply.allowed = d.allowed;
  reply.reason = std::string(reason_code(d.reason));
  reply.detail = d.detail;
  reply.correlation_id = correlation_id();
  AuditRecord record;
  record.event = d.allowed ? AuditEvent::login_allow : AuditEvent::login_deny;
  record.login = request.login;
  record.source = request.source;
  record.reason = reply.reason;
  record.detail = d.detail;
  record.correlation_id = reply.correlation_id;
  if (d.cert) {
    reply.key_id = record.key_id = d.cert->key_id;
    reply.serial = record.serial = std::to_string(d.cert->serial);
    reply.cert_fp = record.cert_fp = d.cert_fingerprint;
    reply.ca_fp = record.ca_fp = d.ca_fingerprint;
  }
  if (d.identity) {
    reply.bot = record.bot = d.identity->bot.value_or("");
    reply.roles = record.roles = join(d.identity->roles);
    reply.bot_instance = record.bot_instance = d.identity->bot_instance_id.value_or("");
  }
  reply.host_user = d.allowed && d.create_host_user_mode.has_value();
  audit_->write(record);
  ++(reply.allowed ? counters_.allowed : counters_.denied);

  if (cache_.size() >= kCacheEntries) std::erase_if(cache_, [&](const auto& e) { return e.second.expires <= now; });
  if (cache_.size() >= kCacheEntries) cache_.clear();
  cache_[key] = Cached{reply, now + kCacheSeconds};
  return reply;
}

namespace {

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : path.substr(0, slash);
}

std::string_view base_of(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

bool Engine::affects_policy(const std::string& dir, std::string_view name) const {
  const Config& c = policy_->config;
  auto is = [&](const std::string& path) { return !path.empty() && dir_of(path) == dir && base_of(path) == name; };
  if (is(config_path_) || is(c.cluster.user_ca_file) || is(c.policy.revoked_keys)) return true;
  bool resource = !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"));
  return resource && (dir == c.policy.roles_dir || dir == c.policy.locks_dir);
}

void Engine::session_event(const SessionEvent& e) {
  AuditRecord record;
  record.event = e.open ? AuditEvent::session_open : AuditEvent::session_close;
  record.login = e.login;
  record.correlation_id = e.correlation_id;
  record.key_id = e.key_id;
  record.bot = e.bot;
  record.bot_instance = e.bot_instance;
  record.roles = e.roles;
  record.serial = e.serial;
  record.cert_fp = e.cert_fp;
  record.ca_fp = e.ca_fp;
  record.source = e.source;
  if (!e.open) record.duration = e.duration;
  audit_->write(record);
}

std::vector<std::string> Engine::watched_directories() const {
  const Config& c = policy_->config;
  std::vector<std::string> dirs = {dir_of(config_path_), dir_of(c.cluster.user_ca_file), c.policy.roles_dir,
                                   c.policy.locks_dir};
  if (!c.policy.revoked_keys.empty()) dirs.push_back(dir_of(c.policy.revoked_keys));
  std::sort(dirs.begin(), dirs.end());
  dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
  return dirs;
}

std::string Engine::status_json(std::int64_t now) const {
  const NodePolicy& np = *policy_;
  nlohmann::ordered_json j;
  j["config"] = config_path_;
  j["cluster"] = np.config.cluster.name;
  j["node"] = {{"name", np.config.node.name}, {"labels", np.config.node.labels}};
  j["mode"] = np.config.policy.mode == PolicyMode::roles ? "roles" : "principals";
  j["uptime_seconds"] = now - started_at_;
  j["last_reload"] = {{"at", reloaded_at_}, {"trigger", last_trigger_}};
  auto cas = nlohmann::ordered_json::array();
  for (const auto& ca : np.cas.keys())
    cas.push_back({{"fingerprint", ca.fingerprint},
                   {"type", key_type_name(ca.verifier.key().type)},
                   {"bits", ca.verifier.key().bits},
                   {"line", ca.line}});
  j["ca"] = {{"file", np.config.cluster.user_ca_file}, {"keys", cas}};
  auto roles = nlohmann::ordered_json::array();
  for (const auto& [name, role] : np.policy.roles) roles.push_back(name);
  std::size_t live_locks = 0;
  for (const auto& lock : np.policy.locks) live_locks += !lock.expires || *lock.expires > now;
  j["roles"] = {{"dir", np.config.policy.roles_dir}, {"names", roles}};
  j["locks"] = {{"dir", np.config.policy.locks_dir}, {"count", np.policy.locks.size()}, {"in_force", live_locks}};
  nlohmann::ordered_json krl = {{"file", np.config.policy.revoked_keys}};
  krl["state"] = np.krl_error ? "unusable: denying every certificate" : np.krl ? "loaded" : "absent";
  if (np.krl) krl["version"] = np.krl->version();
  if (np.krl_error) krl["error"] = *np.krl_error;
  j["krl"] = krl;
  j["errors"] = errors_;
  j["notices"] = np.policy.notices;
  j["counters"] = {{"requests", counters_.requests},     {"allowed", counters_.allowed},
                   {"denied", counters_.denied},         {"cache_hits", counters_.cache_hits},
                   {"bad_frames", counters_.bad_frames}, {"refused_peers", counters_.refused_peers},
                   {"reloads", counters_.reloads}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace verifierd
