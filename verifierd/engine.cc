#include "engine.h"

#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <nlohmann/json.hpp>

#include "machineid/encoding.h"
#include "machineid/io.h"
#include "machineid/sudoers.h"
#include "machineid/userdb.h"
#include "connection.h"
#include "log.h"
#include "proc.h"

namespace verifierd {
namespace {

using namespace machineid;

// The host-user paths' notes, through the daemon's one log function.
void log(const std::string& line) { verifierd::log(Priority::info, line); }

std::string correlation_id() {
  std::uint8_t bytes[12];
  if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) std::abort();
  return hex(bytes);
}

// The uid of a login /etc/passwd knows, for the session table; a host
// user's comes from its grant. Only the local file: a directory service
// (LDAP, sssd) that stalls must never stall the event loop, which answers
// every login. Others are recorded as unknown (-1).
std::optional<std::int64_t> login_uid(const std::string& login) {
  FILE* f = std::fopen("/etc/passwd", "re");
  if (f == nullptr) return std::nullopt;
  std::optional<std::int64_t> uid;
  passwd pw{}, *entry = nullptr;
  std::vector<char> buf(16384);
  while (fgetpwent_r(f, &pw, buf.data(), buf.size(), &entry) == 0 && entry != nullptr)
    if (login == entry->pw_name) {
      uid = static_cast<std::int64_t>(entry->pw_uid);
      break;
    }
  std::fclose(f);
  return uid;
}

std::string join(const std::vector<std::string>& items, const char* sep = " ") {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

AuditRecord audit_record(AuditEvent event, const std::string& login, const CertIdentity& who, const std::string& source) {
  AuditRecord r;
  r.event = event;
  r.login = login;
  r.who = who;
  r.source = source;
  return r;
}

}  // namespace

Engine::Engine(std::string config_path) : config_path_(std::move(config_path)) {}

Engine::~Engine() {
  if (worker_.joinable()) worker_.join();
  if (reload_fd_ >= 0) close(reload_fd_);
}

Status Engine::start(std::int64_t now) {
  // This process's own user and group lookups (the client user, say) must
  // never reach libnss_machineid's question to the daemon: it would wait on
  // itself. Set before anything can look anyone up.
  setenv(kNssBypassEnv, "1", 1);
  MID_CHECK(check_trusted_path(config_path_));
  auto config = load_config(config_path_);
  if (!config.ok()) return config.error();
  reload_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (reload_fd_ < 0) return make_error(Errc::io, std::string("eventfd: ") + std::strerror(errno));
  auto initial = std::make_shared<NodePolicy>();
  initial->config = std::move(*config);
  policy_ = std::move(initial);
  // The first load runs here, before the socket is served; it is also the
  // host users' first load, repeated on each reload until it succeeds.
  host_users_ = std::make_unique<HostUsers>(policy_->config.daemon.state_dir + "/" + std::string(kUserDbFileName),
                                            system_accounts());
  sessions_ = std::make_unique<SessionTable>(policy_->config.daemon.state_dir + "/" + std::string(kSessionsFileName));
  started_at_ = now;
  apply(load_fresh_policy(config_path_, *policy_), "start", now);
  applied_generation_ = started_generation_;
  load_sessions(now);
  return {};
}

namespace {

// Runs `load` again after a short wait while it fails for a passing reason
// (descriptors or memory ran out, a signal): 20, 100 and 400 ms.
template <class Load>
auto with_retries(Load load) {
  auto result = load();
  for (int wait_ms : {20, 100, 400}) {
    if (result.ok() || result.error().code != Errc::transient) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    result = load();
  }
  return result;
}

bool is_transient(const Status& s) { return !s.ok() && s.error().code == Errc::transient; }

}  // namespace

// What an error in one piece of a load does, for the log line.
std::string consequence(const std::string& what, const NodePolicy& fresh) {
  if (what == "roles") return "certificates holding the roles it defines are denied";
  if (what == "locks")
    return fresh.config.policy.lock_mode == LockMode::strict ? "lock_mode strict: denying every login until it loads"
                                                             : "lock_mode best_effort: keeping the last good locks";
  return "keeping the last good " + what;
}

PolicyLoad load_fresh_policy(const std::string& config_path, const NodePolicy& last_good) {
  PolicyLoad out;
  out.policy = std::make_unique<NodePolicy>();
  NodePolicy& fresh = *out.policy;
  auto note = [&](const char* what, Status s) {
    out.transient |= is_transient(s);
    out.pieces.emplace_back(what, std::move(s));
  };

  auto config = with_retries([&]() -> Result<Config> {
    MID_CHECK(check_trusted_path(config_path));
    return load_config(config_path);
  });
  note("config", config.ok() ? Status{} : Status{config.error()});
  fresh.config = config.ok() ? std::move(*config) : last_good.config;
  fresh.sync_owner = sync_owner(fresh.config);  // on this load thread, not the loop

  const std::string ca_file = user_ca_path(fresh.config);
  auto cas = with_retries([&]() -> Result<CaSet> {
    MID_CHECK(check_policy_file(fresh.config, ca_file, fresh.sync_owner));
    return CaSet::load(ca_file, fresh.config.cluster.name);
  });
  note("ca", cas.ok() ? Status{} : Status{cas.error()});
  out.ca_loaded = cas.ok();
  fresh.cas = cas.ok() ? std::move(*cas) : last_good.cas;

  // A role that does not load denies its holders only; locks that do not
  // load deny everything (strict) or keep the last good locks (best_effort).
  // A file that could not be read for a passing reason keeps the last good
  // roles and locks whole, and the load is retried.
  auto policy = with_retries([&]() -> Result<NodePolicy> {
    NodePolicy attempt;
    attempt.config = fresh.config;
    load_roles_and_locks(attempt, &last_good);
    if (attempt.policy.transient_error) return make_error(Errc::transient, *attempt.policy.transient_error);
    return attempt;
  });
  if (policy.ok()) {
    fresh.policy = std::move(policy->policy);
    auto first = [](const std::vector<std::string>& errors) {
      return errors.empty() ? Status{} : Status{make_error(Errc::config, errors.front())};
    };
    note("policy", Status{});
    note("roles", first(fresh.policy.role_errors));
    note("locks", first(fresh.policy.lock_errors));
  } else {
    note("policy", Status{policy.error()});
    fresh.policy = last_good.policy;
  }

  // No KRL file means no revocations; one that is refused, unreadable or
  // corrupt denies every certificate, as sshd's RevokedKeys does. Running
  // out of descriptors or memory says nothing about the file: the KRL in
  // force stays in force while the load is retried.
  // A KRL file that has not changed since the last good load (same inode,
  // size, modification and change times; stat()ed before reading, so a
  // replacement in between is read again next time) is kept as it is.
  const std::string& krl_path = fresh.config.policy.revoked_keys;
  struct stat st {};
  bool stated = !krl_path.empty() && stat(krl_path.c_str(), &st) == 0;
  if (!krl_path.empty() && !(!stated && errno == ENOENT)) {
    std::optional<NodePolicy::FileVersion> version;
    if (stated) version = NodePolicy::FileVersion{st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
    bool unchanged = version && last_good.krl && last_good.krl_version == version &&
                     last_good.config.policy.revoked_keys == krl_path;
    auto krl = with_retries([&]() -> Result<std::shared_ptr<const Krl>> {
      MID_CHECK(check_trusted_path(krl_path));
      if (unchanged) return last_good.krl;
      MID_TRY(loaded, Krl::load(krl_path));
      return std::make_shared<const Krl>(std::move(loaded));
    });
    if (krl.ok()) {
      fresh.krl = std::move(*krl);
      fresh.krl_version = version;
      note("revoked_keys", Status{});
    } else if (krl.error().code == Errc::transient) {
      out.keep_krl = true;
      note("revoked_keys", Status{krl.error()});
    } else {
      fresh.krl_error = krl.error().message;
      note("revoked_keys", Status{});
    }
  } else {
    note("revoked_keys", Status{});
  }
  return out;
}

std::uint64_t Engine::request_reload(const std::string& trigger) {
  if (worker_.joinable()) {
    pending_ = true;
    pending_trigger_ = trigger;
    return started_generation_ + 1;
  }
  start_load(trigger);
  return started_generation_;
}

void Engine::start_load(const std::string& trigger) {
  ++started_generation_;
  loading_trigger_ = trigger;
  sd_notify(0, "RELOADING=1");
  try {
    worker_ = std::thread([this, &last_good = *policy_] {
      PolicyLoad load = load_fresh_policy(config_path_, last_good);
      {
        std::lock_guard lock(loaded_mutex_);
        loaded_ = std::move(load);
      }
      std::uint64_t one = 1;
      // An eventfd write only fails when the counter would overflow.
      (void)!write(reload_fd_, &one, sizeof one);
    });
  } catch (const std::system_error& e) {
    // No thread to be had: load here, late answers rather than none.
    log(Priority::warning, std::string("cannot start a load thread (") + e.what() + "), loading on the event loop");
    std::lock_guard lock(loaded_mutex_);
    loaded_ = load_fresh_policy(config_path_, *policy_);
    std::uint64_t one = 1;
    (void)!write(reload_fd_, &one, sizeof one);
  }
}

Engine::ReloadOutcome Engine::finish_reload(std::int64_t now) {
  std::uint64_t count = 0;
  (void)!read(reload_fd_, &count, sizeof count);
  if (worker_.joinable()) worker_.join();
  std::optional<PolicyLoad> load;
  {
    std::lock_guard lock(loaded_mutex_);
    load.swap(loaded_);
  }
  if (!load) return {};
  ReloadOutcome outcome{true, load->transient};
  apply(std::move(*load), loading_trigger_, now);
  applied_generation_ = started_generation_;
  if (pending_) {
    pending_ = false;
    start_load(pending_trigger_);
  } else {
    sd_notify(0, "READY=1");
  }
  return outcome;
}

// On the loop thread, with no load running: the fresh policy goes in force
// whole; the audit trail, the cache and the host users follow it.
void Engine::apply(PolicyLoad load, const std::string& trigger, std::int64_t now) {
  for (const auto& [what, s] : load.pieces) {
    if (s.ok()) {
      if (errors_.erase(what)) log(Priority::notice, what + ": loads again");
    } else if (is_transient(s)) {
      errors_[what] = s.error().message + " (retrying)";
      log(Priority::warning, what + ": " + s.error().message + " (a passing error: keeping the " + what +
                                 " in force and retrying)");
    } else {
      errors_[what] = s.error().message;
      log(Priority::error, what + ": " + s.error().message + " (" + consequence(what, *load.policy) + ")");
    }
  }
  NodePolicy& fresh = *load.policy;
  if (load.keep_krl && loaded_once_) {
    fresh.krl = policy_->krl;
    fresh.krl_version = policy_->krl_version;
    fresh.krl_error = policy_->krl_error;
  } else if (load.keep_krl) {
    // At start there is no KRL in force to keep: deny until it loads.
    for (const auto& [what, s] : load.pieces)
      if (what == "revoked_keys" && !s.ok()) fresh.krl_error = s.error().message + " (retrying)";
    log(Priority::error, "revoked_keys: " + fresh.krl_error.value_or("") + " (denying every certificate)");
  } else if (fresh.krl_error) {
    log(Priority::error, "revoked_keys: " + *fresh.krl_error + " (denying every certificate)");
  }
  const auto& audit = fresh.config.audit;
  audit_ = std::make_unique<AuditLog>(audit.journald, audit.file);
  policy_ = std::move(load.policy);
  loaded_once_ = true;
  read_sync_state();  // the config may name another sync dir, or none
  cache_.clear();
  ++counters_.reloads;
  reloaded_at_ = now;
  last_trigger_ = trigger;
  if (load.ca_loaded) publish_sshd_ca_keys();
  if (!host_users_->available()) load_host_users();
  check_sessions(now);
  log(Priority::info, "policy loaded (" + trigger + "): " + std::to_string(policy_->cas.keys().size()) +
                          " CA keys, " + std::to_string(policy_->policy.roles.size()) + " roles, " +
                          std::to_string(policy_->policy.locks.size()) + " locks, KRL " +
                          (policy_->krl_error ? "unusable" : policy_->krl ? "loaded" : "absent"));
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
    log(Priority::error, written.error().message);
  } else {
    errors_.erase("ca_sshd");
  }
}

void Engine::load_host_users() {
  auto loaded = host_users_->load();
  if (loaded.ok()) {
    if (errors_.erase("host_users")) log("host_users: " + host_users_->path() + " loads again");
  } else {
    errors_["host_users"] = loaded.error().message;
    log("host_users: " + loaded.error().message);
  }
}

// Before authentication there is no certificate: a role counts when it
// creates host users and its node_labels match this node (or hold trait
// templates, which only a certificate can fill), and a login template counts
// as every login.
bool Engine::may_create_host_user(std::string_view login) const {
  const NodePolicy& np = *policy_;
  if (np.config.policy.mode != PolicyMode::roles) return false;
  auto templated = [](std::string_view s) { return s.find("{{") != std::string_view::npos; };
  for (const auto& [name, role] : np.policy.roles) {
    if (role.host_user_mode == HostUserMode::off) continue;
    bool labels_templated = false;
    for (const auto& [key, patterns] : role.allow.node_labels) {
      labels_templated |= templated(key);
      for (const auto& p : patterns) labels_templated |= templated(p.text);
    }
    if (!labels_templated && !labels_match(role.allow.node_labels, np.config.node.labels, {})) continue;
    for (const auto& l : role.allow.logins)
      if (templated(l) || l == login) return true;
  }
  return false;
}

HostUserReply Engine::provisional_user(const std::string& login) const {
  if (!may_create_host_user(login)) {
    HostUserReply r;
    r.message = "no role creates a host user '" + login + "' on this node";
    return r;
  }
  return host_users_->provisional(login, policy_->config.host_users);
}

Status Engine::forget_user(const std::string& login, std::int64_t now) {
  Status s = host_users_->forget(login, now);
  // A cached allow would let the login back in without a new grant.
  if (s.ok()) cache_.clear();
  return s;
}

DecideReply Engine::decide(const DecideRequest& request, pid_t peer, std::int64_t now) {
  auto begun = begin_decide(request, peer, now);
  if (auto* reply = std::get_if<DecideReply>(&begun)) return std::move(*reply);
  auto& pending = std::get<PendingDecide>(begun);
  Decision d = machineid::decide(pending.decision_request(now), *policy_);
  return finish_decide(std::move(pending), std::move(d), *policy_, now);
}

std::variant<DecideReply, Engine::PendingDecide> Engine::begin_decide(const DecideRequest& request, pid_t peer,
                                                                      std::int64_t now) {
  ++counters_.requests;
  // One connection, one decision: sshd asks the helper more than once per
  // key, and those answers come from the connection's first decision. PAM's
  // re-check (with the client's address) is decided again under the same
  // correlation id, and audited only when its outcome differs.
  PendingDecide p;
  p.request = request;
  p.peer = peer;
  p.process = sshd_connection(peer, request.asker);
  if (p.process) p.connection = p.process->key();
  p.stale_locks = stale_lock_view(policy_->config, sync_state_, now);
  // The lock view went stale or fresh again: answers cached before are not
  // this policy's any more.
  if (p.stale_locks.has_value() != locks_stale_) {
    cache_.clear();
    locks_stale_ = p.stale_locks.has_value();
  }
  if (p.connection) {
    p.attempt = *p.connection + '\0' + hex(sha256(as_bytes(request.certificate))) + '\0' + request.login;
    auto it = cache_.find(p.attempt);
    if (it != cache_.end() && it->second.expires > now) {
      if (request.asker == Asker::principals) {
        ++counters_.cache_hits;
        ++(it->second.reply.allowed ? counters_.allowed : counters_.denied);
        return it->second.reply;
      }
      p.earlier.emplace(it->second.reply.allowed, it->second.reply.reason);
    }
  }
  auto blob = base64_decode(request.certificate);
  if (blob.ok()) {
    p.certificate = std::move(*blob);
  } else {
    p.certificate_error = "certificate: " + blob.error().message;
  }
  return p;
}

DecideReply Engine::finish_decide(PendingDecide&& p, Decision d, const NodePolicy& decided_on, std::int64_t now) {
  // A reload put another policy in force meanwhile (a lock, a KRL): the
  // answer must be the policy's in force now.
  if (&decided_on != policy_.get()) d = machineid::decide(p.decision_request(now), *policy_);
  const DecideRequest& request = p.request;
  const std::optional<std::string>& connection = p.connection;
  if (p.certificate_error) d.detail = *p.certificate_error;

  // The host user must be durable before the allow is answered: sshd starts
  // the session with the uid it resolved before authentication right after.
  // A login no source has is denied unless a granting role creates it.
  bool host_user = false;
  std::optional<std::int64_t> uid;
  std::pair<std::string, std::string> sudoers_file;  // name and content, for PAM
  if (d.allowed && d.identity && policy_->config.policy.mode == PolicyMode::roles) {
    const Config& c = policy_->config;
    GrantRequest grant{request.login, d.host_groups, std::nullopt, d.identity->bot.value_or(""),
                       d.create_host_user_mode.has_value()};
    grant.groups.insert(grant.groups.end(), c.host_users.groups.begin(), c.host_users.groups.end());
    if (auto t = d.identity->traits.find(kUidTrait); t != d.identity->traits.end() && !t->second.empty())
      grant.uid_trait = t->second.front();
    // As Teleport's agent fails the session when its sudoers file cannot
    // be written: no login with sudo rules half applied, and no grant.
    auto sudoers = sudoers_content(request.login, d.host_sudoers);
    auto granted = sudoers.ok() ? host_users_->grant(grant, c.host_users, now) : Result<GrantOutcome>(sudoers.error());
    if (!granted.ok()) {
      d.allowed = false;
      d.reason = Reason::role;
      d.detail = "host user '" + request.login + "': " + granted.error().message;
    } else {
      if (!granted->note.empty()) log("host user " + request.login + ": " + granted->note);
      host_user = granted->uid.has_value();
      if (granted->uid) uid = *granted->uid;
      if (host_user) sudoers_file = {sudoers_file_name(request.login), *sudoers};
    }
  }

  DecideReply reply;
  reply.allowed = d.allowed;
  reply.reason = std::string(reason_code(d.reason));
  reply.detail = d.detail;
  CertIdentity& who = reply.who;
  who.correlation_id = connection ? connection_id(*connection, now) : correlation_id();
  if (d.cert) {
    who.key_id = d.cert->key_id;
    who.serial = std::to_string(d.cert->serial);
    who.cert_fp = d.cert_fingerprint;
    who.ca_fp = d.ca_fingerprint;
  }
  if (d.identity) {
    who.bot = d.identity->bot.value_or("");
    who.roles = join(d.identity->roles);
    who.bot_instance = d.identity->bot_instance_id.value_or("");
  }
  AuditRecord record = audit_record(d.allowed ? AuditEvent::login_allow : AuditEvent::login_deny, request.login,
                                    who, request.source);
  record.reason = reply.reason;
  record.detail = d.detail;
  reply.host_user = d.allowed && host_user;
  if (d.allowed) reply.key_options = authorized_keys_options(d);
  if (reply.host_user && request.asker == Asker::pam) std::tie(reply.sudoers_file, reply.sudoers) = sudoers_file;
  if (!p.earlier || p.earlier->first != reply.allowed || p.earlier->second != reply.reason) audit_->write(record);
  ++(reply.allowed ? counters_.allowed : counters_.denied);
  if (connection && request.asker == Asker::principals)
    remember(cache_, p.attempt, Cached{reply, now + kConnectionSeconds}, now);
  // The session this PAM check lets open runs under this certificate.
  if (p.process && p.process->sshd && request.asker == Asker::pam && reply.allowed) {
    if (!uid) uid = login_uid(request.login);
    remember(allowed_logins_, *connection,
             AllowedLogin{request.certificate, request.login, reply, session_deadline(d), uid,
                          now + kConnectionSeconds},
             now);
  }
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
  if (sync_enabled(c) && dir == c.sync.dir)
    return name == kSyncCaFile || name == kSyncRolesFile || name == kSyncLocksFile;
  bool resource = !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"));
  return resource && (dir == c.policy.roles_dir || dir == c.policy.locks_dir);
}

bool Engine::is_sync_state(const std::string& dir, std::string_view name) const {
  const Config& c = policy_->config;
  return sync_enabled(c) && dir == c.sync.dir && name == kSyncStateFile;
}

void Engine::read_sync_state() {
  const Config& c = policy_->config;
  auto state = sync_enabled(c) ? load_sync_state(c, policy_->sync_owner) : Result<SyncState>(SyncState{});
  // Said once when it starts failing and once when it reads again.
  if (state.ok() && !sync_state_.ok()) log(Priority::notice, "sync state: reads again");
  if (!state.ok() && (sync_state_.ok() || sync_state_.error().message != state.error().message))
    log(Priority::error, "sync state: " + state.error().message);
  sync_state_ = std::move(state);
}

void Engine::session_event(const SessionEvent& e, pid_t peer, std::int64_t now) {
  AuditRecord record =
      audit_record(e.open ? AuditEvent::session_open : AuditEvent::session_close, e.login, e.who, e.source);
  if (!e.open) record.duration = e.duration;
  audit_->write(record);

  auto process = sshd_connection(peer, Asker::pam);
  if (!process || !process->sshd) return;  // not sshd's: nothing the daemon could end
  if (!e.open) {
    Session* s = sessions_->find_process(process->pid, process->start_time);
    if (s != nullptr) sessions_->remove(s->who.correlation_id);
    return;
  }
  auto allowed = allowed_logins_.find(process->key());
  if (allowed == allowed_logins_.end() || allowed->second.reply.who != e.who ||
      allowed->second.login != e.login) {
    log(Priority::warning, "session of '" + escape_untrusted(e.login) + "' (correlation id " +
                               escape_untrusted(e.who.correlation_id) +
                               ") opened with no allowed check in its connection: not tracked");
    return;
  }
  const AllowedLogin& a = allowed->second;
  Session s;
  s.who = a.reply.who;
  s.pid = process->pid;
  s.start_time = process->start_time;
  s.login = a.login;
  s.uid = a.uid.value_or(-1);
  s.certificate = a.certificate;
  s.source = e.source;
  s.opened_at = now;
  s.ends_at = a.ends_at;
  parse_session_certificate(s);
  allowed_logins_.erase(allowed);
  if (auto added = sessions_->add(s); !added.ok())
    log(Priority::error, "session " + s.who.correlation_id + ": " + added.error().message);
  next_sweep_ms_ = 0;  // its end may be sooner than the next sweep
}

void Engine::audit_session(const Session& s, AuditEvent event, const std::string& reason, const std::string& detail,
                           std::int64_t now) {
  AuditRecord r = audit_record(event, s.login, s.who, s.source);
  r.reason = reason;
  r.detail = detail;
  r.duration = now - s.opened_at;
  audit_->write(r);
}

void Engine::end_session(Session& s, const std::string& reason, const std::string& detail, std::int64_t now,
                         std::optional<std::vector<ProcStat>>& processes) {
  if (s.ending_since) return;
  s.ending_since = now;
  audit_session(s, AuditEvent::session_terminate, reason, detail, now);
  if (!processes) processes = all_processes();
  if (!terminator_.begin(s.pid, s.start_time, *processes))
    log(Priority::error, "session " + s.who.correlation_id + " of '" + escape_untrusted(s.login) + "' (sshd process " +
                             std::to_string(s.pid) + "): it is gone, or the daemon may not signal it (it needs CAP_KILL)");
}

void Engine::check_sessions(std::int64_t now) {
  if (!sessions_) return;
  std::optional<std::vector<ProcStat>> processes;
  for (auto& [id, s] : sessions_->all_mutable()) {
    if (s.ending_since) continue;
    if (!s.cert || !s.identity) {
      end_session(s, "parse", "its certificate no longer parses", now, processes);
      continue;
    }
    if (auto end = session_end(*s.cert, *s.identity, s.login, *policy_, now))
      end_session(s, std::string(reason_code(end->reason)), end->detail, now, processes);
  }
  if (processes) (void)sessions_->save();  // some end began: ending_since is kept
}

void Engine::load_sessions(std::int64_t now) {
  if (auto loaded = sessions_->load(); !loaded.ok()) {
    log(Priority::error, "sessions: " + loaded.error().message + " (starting with an empty table)");
    return;
  }
  // Sessions whose sshd process went while the daemon was away are closed
  // in the audit trail; the rest are checked against the policy now.
  std::vector<std::string> gone;
  for (const auto& [id, s] : sessions_->all()) {
    auto st = proc_stat(s.pid);
    if (!st || st->start_time != s.start_time) gone.push_back(id);
  }
  for (const auto& id : gone)
    if (auto s = sessions_->remove(id))
      audit_session(*s, AuditEvent::session_close, "", "its sshd process ended while the daemon was not running", now);
  if (!sessions_->all().empty())
    log(Priority::info, "sessions: " + std::to_string(sessions_->all().size()) + " open sessions carried over");
  // An end the previous daemon began is finished by this one.
  std::optional<std::vector<ProcStat>> processes;
  for (auto& [id, s] : sessions_->all_mutable())
    if (s.ending_since) {
      if (!processes) processes = all_processes();
      terminator_.begin(s.pid, s.start_time, *processes);
    }
  check_sessions(now);
}

Status Engine::kill_session(const std::string& id, std::int64_t now) {
  Session* s = sessions_->find(id);
  if (s == nullptr) return make_error(Errc::config, "no open session '" + escape_untrusted(id) + "'");
  std::optional<std::vector<ProcStat>> processes;
  end_session(*s, "admin", "ended by machineidctl sessions --kill", now, processes);
  return sessions_->save();
}

void Engine::tick(std::int64_t now) {
  terminator_.finish_due();
  std::int64_t now_ms = monotonic_ms();
  if (now_ms < next_sweep_ms_) return;
  next_sweep_ms_ = now_ms + kSessionSweepMs;
  std::vector<std::string> gone;
  std::optional<std::vector<ProcStat>> processes;
  // Teleport's strict locking ends every interaction once its view of the
  // locks is stale, not only new ones.
  auto stale = stale_lock_view(policy_->config, sync_state_, now);
  for (auto& [id, s] : sessions_->all_mutable()) {
    auto st = proc_stat(s.pid);
    if (!st || st->start_time != s.start_time) {
      gone.push_back(id);
    } else if (stale && !s.ending_since) {
      end_session(s, "locked", "lock_mode strict: " + *stale, now, processes);
    } else if (s.ends_at && *s.ends_at <= now) {
      end_session(s, "expired", "the certificate's time is up (disconnect_expired_cert)", now, processes);
    }
  }
  if (processes) (void)sessions_->save();
  // A session whose PAM close never came (sshd killed, a terminated
  // session) is closed here.
  for (const auto& id : gone)
    if (auto s = sessions_->remove(id))
      audit_session(*s, AuditEvent::session_close, s->ending_since ? "terminated" : "",
                    "its sshd process ended without a PAM session close", now);
}

std::int64_t Engine::next_tick_ms() const {
  std::int64_t next = terminator_.next_due_ms();
  if (!sessions_ || sessions_->all().empty()) return next;
  // 0 means none to the loop: a sweep due at once is due at 1.
  std::int64_t sweep = std::max<std::int64_t>(next_sweep_ms_, 1);
  // A session's end (seconds) wakes the loop within the second it falls in.
  return next == 0 ? sweep : std::min(next, sweep);
}

// Bounded: expired entries go first, everything if that is not enough.
template <class Entry>
void Engine::remember(std::map<std::string, Entry>& map, const std::string& key, Entry entry, std::int64_t now) {
  if (map.size() >= kCacheEntries) std::erase_if(map, [&](const auto& e) { return e.second.expires <= now; });
  if (map.size() >= kCacheEntries) map.clear();
  map[key] = std::move(entry);
}

// Every decision and session event of one sshd connection carries one id.
std::string Engine::connection_id(const std::string& connection, std::int64_t now) {
  if (auto it = connection_ids_.find(connection); it != connection_ids_.end() && it->second.expires > now)
    return it->second.id;
  std::string id = correlation_id();
  remember(connection_ids_, connection, AttemptId{id, now + kConnectionSeconds}, now);
  return id;
}

std::vector<std::string> Engine::watched_directories() const {
  const Config& c = policy_->config;
  std::vector<std::string> dirs = {dir_of(config_path_), dir_of(c.cluster.user_ca_file), c.policy.roles_dir,
                                   c.policy.locks_dir};
  if (!c.policy.revoked_keys.empty()) dirs.push_back(dir_of(c.policy.revoked_keys));
  if (sync_enabled(c)) dirs.push_back(c.sync.dir);
  std::sort(dirs.begin(), dirs.end());
  dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
  return dirs;
}

namespace {

// Each source machineid-sync keeps: its URL, how long ago it last synced,
// its last error; and whether the lock view is stale (strict denies then).
nlohmann::ordered_json sync_status(const Config& c, const Result<SyncState>& state, std::int64_t now) {
  nlohmann::ordered_json j = {{"dir", c.sync.dir}};
  if (!state.ok()) j["error"] = state.error().message;
  auto sources = nlohmann::ordered_json::object();
  auto source = [&](const char* name, const std::optional<std::string>& url) {
    if (!url) return;
    nlohmann::ordered_json s = {{"url", *url}};
    const SyncSource* known = nullptr;
    if (state.ok())
      if (auto it = state->sources.find(name); it != state->sources.end()) known = &it->second;
    auto age = [&](const std::optional<std::int64_t>& at) {
      return at ? nlohmann::ordered_json(now - *at) : nlohmann::ordered_json(nullptr);
    };
    s["synced_seconds_ago"] = age(known ? known->last_success : std::nullopt);
    s["changed_seconds_ago"] = age(known ? known->last_change : std::nullopt);
    s["failures"] = known ? known->failures : 0;
    s["last_error"] = known && known->last_error ? nlohmann::ordered_json(*known->last_error) : nullptr;
    sources[name] = std::move(s);
  };
  source("ca", c.cluster.user_ca_url);
  source("roles", c.sync.roles_url);
  source("locks", c.sync.locks_url);
  j["sources"] = std::move(sources);
  j["locks_max_age_seconds"] = c.sync.locks_max_age.count();
  auto stale = stale_lock_view(c, state, now);
  j["stale_locks"] = stale ? nlohmann::ordered_json(*stale) : nullptr;
  return j;
}

}  // namespace

std::string Engine::status_json(std::int64_t now) const {
  const NodePolicy& np = *policy_;
  nlohmann::ordered_json j;
  j["config"] = config_path_;
  j["cluster"] = np.config.cluster.name;
  j["node"] = {{"name", np.config.node.name}, {"labels", np.config.node.labels}};
  j["mode"] = np.config.policy.mode == PolicyMode::roles ? "roles" : "principals";
  j["uptime_seconds"] = now - started_at_;
  j["last_reload"] = {{"at", reloaded_at_},
                      {"trigger", last_trigger_},
                      {"generation", applied_generation_},
                      {"loading", worker_.joinable()},
                      {"pending", pending_}};
  auto cas = nlohmann::ordered_json::array();
  for (const auto& ca : np.cas.keys())
    cas.push_back({{"fingerprint", ca.fingerprint},
                   {"type", key_type_name(ca.verifier.key().type)},
                   {"bits", ca.verifier.key().bits},
                   {"line", ca.line}});
  j["ca"] = {{"file", user_ca_path(np.config)}, {"keys", cas}};
  auto roles = nlohmann::ordered_json::array();
  for (const auto& [name, role] : np.policy.roles) roles.push_back(name);
  std::size_t live_locks = 0;
  for (const auto& lock : np.policy.locks) live_locks += !lock.expires || *lock.expires > now;
  j["roles"] = {{"dir", np.config.policy.roles_dir},
                {"names", roles},
                {"broken", np.policy.broken_roles},
                {"errors", np.policy.role_errors}};
  j["locks"] = {{"dir", np.config.policy.locks_dir},
                {"mode", np.config.policy.lock_mode == LockMode::strict ? "strict" : "best_effort"},
                {"count", np.policy.locks.size()},
                {"in_force", live_locks},
                {"errors", np.policy.lock_errors}};
  nlohmann::ordered_json krl = {{"file", np.config.policy.revoked_keys}};
  krl["state"] = np.krl_error ? "unusable: denying every certificate" : np.krl ? "loaded" : "absent";
  if (np.krl) krl["version"] = np.krl->version();
  if (np.krl_error) krl["error"] = *np.krl_error;
  j["krl"] = krl;
  j["host_users"] = {{"db", host_users_->path()},
                     {"users", host_users_->user_count()},
                     {"taken_by_other_sources", host_users_->foreign_count()}};
  j["sessions"] = {{"file", sessions_->path()}, {"open", sessions_->all().size()}};
  j["errors"] = errors_;
  if (sync_enabled(np.config)) {
    j["sync"] = sync_status(np.config, sync_state_, now);
    if (!j["sync"]["stale_locks"].is_null()) j["errors"]["sync"] = j["sync"]["stale_locks"];
  }
  j["notices"] = np.policy.notices;
  j["counters"] = {{"requests", counters_.requests},     {"allowed", counters_.allowed},
                   {"denied", counters_.denied},         {"cache_hits", counters_.cache_hits},
                   {"bad_frames", counters_.bad_frames}, {"refused_peers", counters_.refused_peers},
                   {"reloads", counters_.reloads},       {"decision_threads", counters_.decision_threads}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace verifierd
