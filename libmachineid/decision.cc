// The decision of SPEC §4, rule by rule, in the SPEC's order.
#include "machineid/decision.h"

#include <algorithm>

#include "machineid/encoding.h"
#include "machineid/net.h"
#include "machineid/rfc3339.h"

namespace machineid {
namespace {

constexpr std::string_view kTeleportInternalPrefix = "-teleport-";
// Teleport backdates certificates by a minute; rule 5 allows for it.
constexpr std::int64_t kBackdateAllowance = 60;

std::string format_time(std::uint64_t t) {
  if (t == kValidForever) return "forever";
  if (t > static_cast<std::uint64_t>(INT64_MAX)) return std::to_string(t);
  return format_rfc3339(static_cast<std::int64_t>(t));
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

bool contains(const std::vector<std::string>& items, std::string_view s) {
  return std::find(items.begin(), items.end(), s) != items.end();
}

// Records each rule's outcome; the first failure decides the reason.
class Checker {
 public:
  Checker(Decision& d, bool explain) : d_(d), explain_(explain) {}
  // A rule that held. Its detail is made only for a caller that shows it
  // (Request::explain): the daemon's answers never carry it, and making it
  // (times, counts, quoted names) was a third of a decision's own
  // instructions, the signature check aside.
  template <class MakeDetail>
  void pass(std::string_view rule, MakeDetail&& make_detail) {
    if (explain_) d_.checks.push_back({rule, true, std::string(make_detail())});
  }
  void fail(std::string_view rule, Reason reason, std::string detail) {
    if (!failed_) {
      failed_ = true;
      d_.reason = reason;
      d_.detail = detail;
    }
    d_.checks.push_back({rule, false, std::move(detail)});
  }
  bool failed() const { return failed_; }

 private:
  Decision& d_;
  bool explain_;
  bool failed_ = false;
};

// Rule 3: signed by a trusted, non-certificate CA key with an accepted
// algorithm, and the signature verifies.
void check_ca(Checker& check, const Certificate& cert, const CaSet& cas, const std::string& ca_fingerprint) {
  WireReader r(cert.signature_key);
  auto ca_type = r.cstring();
  if (ca_type.ok() && ca_type->ends_with("-cert-v01@openssh.com"))
    return check.fail("ca", Reason::ca_untrusted, "the signing CA key is itself a certificate");
  const TrustedCa* ca = cas.find(cert.signature_key);
  if (ca == nullptr)
    return check.fail("ca", Reason::ca_untrusted, "signed by " + ca_fingerprint + ", not a trusted user CA");
  const PublicKey& key = ca->verifier.key();
  if (key.type == KeyType::rsa && key.bits < kMinCaRsaBits)
    return check.fail("ca", Reason::ca_untrusted,
                      "RSA CA key of " + std::to_string(key.bits) + " bits is below " + std::to_string(kMinCaRsaBits));
  auto verified = ca->verifier.verify(cert.signature, cert.signed_region());
  if (!verified.ok()) return check.fail("ca", Reason::ca_untrusted, verified.error().message);
  check.pass("ca", [&] { return "signed by trusted CA " + ca->fingerprint; });
}

// Rule 4: valid_after − skew ≤ now < valid_before + skew.
void check_validity(Checker& check, const Certificate& cert, std::int64_t now, std::int64_t skew) {
  using Wide = __int128;  // no overflow at either end of the u64 range
  Wide lower = static_cast<Wide>(cert.valid_after) - skew;
  Wide upper = static_cast<Wide>(cert.valid_before) + skew;
  auto window = [&] { return "valid from " + format_time(cert.valid_after) + " to " + format_time(cert.valid_before); };
  if (now < lower) return check.fail("validity", Reason::not_yet_valid, "not yet valid: " + window());
  if (now >= upper) return check.fail("validity", Reason::expired, "expired: " + window());
  check.pass("validity", window);
}

// Rule 5: valid_before − valid_after ≤ max_cert_ttl + 1m; never forever.
void check_ttl(Checker& check, const Certificate& cert, std::int64_t max_ttl) {
  if (cert.valid_before == kValidForever)
    return check.fail("ttl", Reason::ttl_too_long, "certificate is valid forever");
  if (cert.valid_before < cert.valid_after)
    return check.fail("ttl", Reason::ttl_too_long, "valid_before precedes valid_after");
  std::uint64_t ttl = cert.valid_before - cert.valid_after;
  auto detail = [&] { return "lifetime " + std::to_string(ttl) + "s, limit " + std::to_string(max_ttl) + "s + 60s"; };
  if (ttl > static_cast<std::uint64_t>(max_ttl + kBackdateAllowance))
    return check.fail("ttl", Reason::ttl_too_long, detail());
  check.pass("ttl", detail);
}

// Rule 6: only source-address (matched when the source is known) and
// force-command are understood.
void check_critical_options(Checker& check, const Certificate& cert, const std::optional<std::string>& source) {
  for (const auto& option : cert.critical_options) {
    if (option.name == "force-command") continue;
    if (option.name != "source-address")
      return check.fail("critical_options", Reason::critical_option, "unknown critical option " + quoted(option.name));
    if (!source) continue;
    auto in_list = address_in_list(*source, option.value);
    if (!in_list.ok())
      return check.fail("critical_options", Reason::critical_option, "source-address: " + in_list.error().message);
    if (!*in_list)
      return check.fail("critical_options", Reason::critical_option,
                        "source " + *source + " is not in source-address " + quoted(option.value));
  }
  check.pass("critical_options",
             [&] { return cert.critical_options.empty() ? "none" : "understood and satisfied"; });
}

// Rule 8: the login is a principal, exactly; -teleport-* principals never are.
void check_principal(Checker& check, const Certificate& cert, std::string_view login) {
  if (cert.principals.empty()) return check.fail("principal", Reason::principal, "certificate has no principals");
  if (login.starts_with(kTeleportInternalPrefix))
    return check.fail("principal", Reason::principal, quoted(login) + " is a Teleport-internal principal, not a login");
  if (!contains(cert.principals, login))
    return check.fail("principal", Reason::principal,
                      quoted(login) + " is not among the principals [" + join(cert.principals) + "]");
  check.pass("principal", [&] { return quoted(login) + " is a principal"; });
}

// Rule 9: revoked by the KRL, or no usable KRL at all.
void check_revocation(Checker& check, const Certificate& cert, const NodePolicy& np) {
  if (np.krl_error)
    return check.fail("revocation", Reason::revoked, "KRL unusable, denying every certificate: " + *np.krl_error);
  if (!np.krl) return check.pass("revocation", [] { return "no KRL configured"; });
  if (auto why = np.krl->revoked(cert)) return check.fail("revocation", Reason::revoked, *why);
  check.pass("revocation", [&] { return "not revoked (KRL version " + std::to_string(np.krl->version()) + ")"; });
}

LockSubject lock_subject(const Identity& id, std::string_view login, const NodePolicy& np) {
  auto view = [](const std::optional<std::string>& s) { return s ? std::string_view(*s) : std::string_view(); };
  LockSubject subject;
  subject.user = id.user;
  subject.roles = &id.roles;
  subject.login = login;
  subject.server_ids = {np.config.node.name, np.config.node.name + "." + np.config.cluster.name};
  subject.mfa_device = view(id.mfa_device);
  subject.device = view(id.device_id);
  subject.join_token = view(id.join_token);
  subject.bot_instance_id = view(id.bot_instance_id);
  subject.access_requests = &id.access_requests;
  return subject;
}

// Rule 10: no lock in force names the request through any one of its
// target fields. Under lock_mode "strict", locks that did not load deny
// everything: a lock the node cannot read is never silently absent.
// Returns the lock in force, for the session's end.
const Lock* check_locks(Checker& check, const Identity& id, std::string_view login, const NodePolicy& np,
                        std::int64_t now, const std::optional<std::string>& stale_locks = std::nullopt) {
  const Policy& policy = np.policy;
  if (np.config.policy.lock_mode == LockMode::strict && !policy.lock_errors.empty()) {
    check.fail("locks", Reason::locked,
               "locks did not load, denying every login (lock_mode strict): " + policy.lock_errors.front());
    return nullptr;
  }
  if (np.config.policy.lock_mode == LockMode::strict && stale_locks) {
    check.fail("locks", Reason::locked, "denying every login (lock_mode strict): " + *stale_locks);
    return nullptr;
  }
  LockSubject subject = lock_subject(id, login, np);
  if (const Lock* lock = find_lock(policy, subject, now)) {
    std::string detail = "locked by " + quoted(lock->name) + " (" + lock->source + ", target " +
                         std::string(lock_match(*lock, subject)) + ")";
    if (!lock->message.empty()) detail += ": " + lock->message;
    check.fail("locks", Reason::locked, detail);
    return lock;
  }
  check.pass("locks", [&] { return std::to_string(policy.locks.size()) + " locks, none applies"; });
  return nullptr;
}

bool holds_login(const RoleConditions& c, std::string_view login, const Traits& traits) {
  for (const auto& tmpl : c.logins)
    if (contains(expand_template(tmpl, traits), login)) return true;
  return false;
}

// Whether a condition's node matcher matches this node, as Teleport's
// CheckLabelsMatch: deny is greedy (labels or expression); allow needs every
// one that is set; neither set matches nothing. An error (an expression that
// does not parse or evaluate, a label template that expands to a bad
// regexp) is returned: Teleport then denies the request.
Result<std::string> node_matcher(const RoleConditions& c, bool deny, const NodeLabels& labels,
                                 const ExpressionInput& input) {
  if (!c.has_node_matcher()) return std::string();
  bool labels_ok = true;
  if (!c.node_labels.empty()) {
    MID_TRY(matched, match_labels(c.node_labels, labels, *input.traits));
    if (deny && matched) return std::string("node_labels");
    labels_ok = matched;
  }
  if (const LabelsExpression* e = c.node_labels_expression()) {
    if (!e->parsed) return make_error(Errc::config, "node_labels_expression does not parse: " + e->error);
    auto matched = e->parsed->matches(input);
    if (!matched.ok()) return with_context(matched.error(), "evaluating node_labels_expression");
    if (deny) return std::string(*matched ? "node_labels_expression" : "");
    if (!*matched) return std::string();
  }
  if (deny) return std::string();
  return std::string(labels_ok ? "node matcher" : "");
}

// Teleport's HostUsers: every role whose allow matcher matches this node
// must enable host users (keep wins over insecure-drop); their host_groups,
// less the deny host_groups of roles whose deny matcher matches, and their
// host_sudoers (by role name, once each) go to the host user.
void host_user_settings(Decision& d, const std::vector<const Role*>& roles, const NodeLabels& labels,
                        const ExpressionInput& input) {
  std::optional<std::string> mode;
  std::vector<std::string> groups, sudoers;
  std::vector<const Role*> by_name = roles;
  std::sort(by_name.begin(), by_name.end(), [](const Role* a, const Role* b) { return a->name < b->name; });
  for (const Role* role : by_name) {
    auto matched = node_matcher(role->allow, false, labels, input);
    if (!matched.ok()) return;  // no host user on doubt
    if (matched->empty()) continue;
    if (role->host_user_mode == HostUserMode::off) return;  // a matching role that does not enable host users
    if (mode != "keep") mode = role->create_host_user_mode();
    for (const auto& g : role->allow.host_groups)
      for (auto& group : expand_values(g, *input.traits))
        if (!contains(groups, group)) groups.push_back(std::move(group));
    for (const auto& s : role->allow.host_sudoers())
      for (auto& line : expand_values(s, *input.traits))
        if (!contains(sudoers, line)) sudoers.push_back(std::move(line));
  }
  for (const Role* role : by_name) {
    auto matched = node_matcher(role->deny, true, labels, input);
    if (!matched.ok() || matched->empty()) continue;
    for (const auto& g : role->deny.host_groups)
      for (const auto& group : expand_values(g, *input.traits)) std::erase(groups, group);
    for (const auto& s : role->deny.host_sudoers())
      for (const auto& line : expand_values(s, *input.traits))
        if (line == "*") {
          sudoers.clear();
        } else {
          std::erase(sudoers, line);
        }
  }
  d.create_host_user_mode = mode;
  d.host_groups = std::move(groups);
  d.host_sudoers = std::move(sudoers);
}

// Teleport's role option combination: SSHPortForwardMode (an explicit deny
// beats an explicit allow; legacy port_forwarding counts only on roles that
// set no ssh_port_forwarding), CheckAgentForward (a role that holds the login
// and forwards the agent), PermitX11Forwarding and disconnect_expired_cert
// (any role), AdjustSessionTTL (the shortest).
SessionOptions session_options(const std::vector<const Role*>& roles, std::string_view login, const Traits& traits) {
  SessionOptions o;
  bool deny_remote = false, deny_local = false, legacy_deny = false, legacy_can_deny = true, legacy_allow = false;
  for (const Role* role : roles) {
    const RoleOptions& r = role->options;
    if (!r.local_port_forwarding && !r.remote_port_forwarding) {
      if (r.port_forwarding) (*r.port_forwarding ? legacy_allow : legacy_deny) = true;
    } else {
      if (r.remote_port_forwarding) deny_remote = deny_remote || !*r.remote_port_forwarding;
      if (r.local_port_forwarding) deny_local = deny_local || !*r.local_port_forwarding;
      legacy_can_deny = false;
    }
    if (r.forward_agent.value_or(false) && holds_login(role->allow, login, traits)) o.agent_forwarding = true;
    if (r.permit_x11_forwarding.value_or(false)) o.x11_forwarding = true;
    if (r.disconnect_expired_cert.value_or(false)) o.disconnect_expired_cert = true;
    if (role->max_session_ttl.count() > 0 && (!o.max_session_ttl || role->max_session_ttl < *o.max_session_ttl))
      o.max_session_ttl = role->max_session_ttl;
  }
  if (legacy_allow) {
    o.port_forwarding = PortForwarding::on;  // a legacy allow returns "on" at once in Teleport
  } else if ((deny_remote && deny_local) || (legacy_deny && legacy_can_deny)) {
    o.port_forwarding = PortForwarding::off;
  } else if (deny_remote) {
    o.port_forwarding = PortForwarding::local_only;
  } else if (deny_local) {
    o.port_forwarding = PortForwarding::remote_only;
  }
  return o;
}

// Rule 11: Teleport's RoleSet.checkAccess for a node and a login. The role
// set must be whole; deny rules are greedy; then some role in the default
// namespace must hold the login and match the node.
void check_roles(Checker& check, Decision& d, const Identity& id, std::string_view login, const NodePolicy& np) {
  if (np.config.policy.mode == PolicyMode::principals)
    return check.pass("roles", [] { return "mode 'principals': roles not consulted"; });
  const Policy& policy = np.policy;
  if (id.roles.empty()) return check.fail("roles", Reason::role, "certificate carries no roles");
  std::vector<const Role*> roles;
  for (const auto& name : id.roles) {
    if (auto broken = policy.broken_roles.find(name); broken != policy.broken_roles.end())
      return check.fail("roles", Reason::role, "role " + quoted(name) + " did not load: " + broken->second);
    auto it = policy.roles.find(name);
    if (it == policy.roles.end()) {
      std::string why = "role " + quoted(name) + " is not defined on this node";
      if (!policy.role_errors.empty()) why += " (a role file did not load: " + policy.role_errors.front() + ")";
      return check.fail("roles", Reason::role, why);
    }
    roles.push_back(&it->second);
  }
  const NodeLabels& labels = np.config.node.labels;
  ExpressionInput input{&labels, &id.traits, id.user};
  for (const Role* role : roles) {
    if (!role->deny.in_default_namespace()) continue;
    auto matched = node_matcher(role->deny, true, labels, input);
    if (!matched.ok())
      return check.fail("roles", Reason::role, "role " + quoted(role->name) + ": deny: " + matched.error().message);
    if (!matched->empty())
      return check.fail("roles", Reason::role, "role " + quoted(role->name) + " denies this node (deny." + *matched + ")");
    if (holds_login(role->deny, login, id.traits))
      return check.fail("roles", Reason::role,
                        "role " + quoted(role->name) + " denies login " + quoted(login) + " (deny.logins)");
  }
  const Role* granting = nullptr;
  for (const Role* role : roles) {
    if (!role->allow.in_default_namespace()) continue;
    auto matched = node_matcher(role->allow, false, labels, input);
    if (!matched.ok())
      return check.fail("roles", Reason::role, "role " + quoted(role->name) + ": allow: " + matched.error().message);
    if (matched->empty() || !holds_login(role->allow, login, id.traits)) continue;
    granting = role;
    break;  // Teleport stops at the first role that allows
  }
  if (granting == nullptr)
    return check.fail("roles", Reason::role,
                      "no role allows login " + quoted(login) + " on this node: roles [" + join(id.roles) + "]");
  d.granting_roles = {granting->name};
  host_user_settings(d, roles, labels, input);
  d.session = session_options(roles, login, id.traits);
  check.pass("roles", [&] { return "allowed by " + quoted(granting->name); });
}

}  // namespace

std::string_view reason_code(Reason reason) {
  switch (reason) {
    case Reason::ok: return "ok";
    case Reason::parse: return "parse";
    case Reason::cert_type: return "cert_type";
    case Reason::ca_untrusted: return "ca_untrusted";
    case Reason::expired: return "expired";
    case Reason::not_yet_valid: return "not_yet_valid";
    case Reason::ttl_too_long: return "ttl_too_long";
    case Reason::critical_option: return "critical_option";
    case Reason::cluster: return "cluster";
    case Reason::principal: return "principal";
    case Reason::revoked: return "revoked";
    case Reason::locked: return "locked";
    case Reason::role: return "role";
  }
  return "unknown";
}

Decision decide(const Request& request, const NodePolicy& np) {
  Decision d;
  Checker check(d, request.explain);

  // Rule 1: a well-formed certificate of a supported type, Teleport
  // extensions included.
  auto parsed = parse_certificate(request.certificate);
  if (!parsed.ok()) {
    check.fail("parse", Reason::parse, parsed.error().message);
    return d;
  }
  auto identity = read_identity(*parsed);
  if (!identity.ok()) {
    check.fail("parse", Reason::parse, identity.error().message);
    return d;
  }
  const Certificate& cert = d.cert.emplace(std::move(*parsed));
  const Identity& id = d.identity.emplace(std::move(*identity));
  d.cert_fingerprint = cert.key.fingerprint();
  // A trusted CA's fingerprint was computed when the CA file loaded.
  const TrustedCa* trusted = np.cas.find(cert.signature_key);
  d.ca_fingerprint = trusted ? trusted->fingerprint : fingerprint_sha256(cert.signature_key);
  check.pass("parse", [&] {
    return cert.type_name + ", key id " + quoted(cert.key_id) + ", serial " + std::to_string(cert.serial);
  });

  // Rule 2: a user certificate.
  if (cert.type != kUserCert) {
    check.fail("cert_type", Reason::cert_type, "host certificate, not a user certificate");
  } else {
    check.pass("cert_type", [] { return "user certificate"; });
  }

  check_ca(check, cert, np.cas, d.ca_fingerprint);
  check_validity(check, cert, request.now, np.config.policy.clock_skew.count());
  check_ttl(check, cert, np.config.policy.max_cert_ttl.count());
  check_critical_options(check, cert, request.source);

  // Rule 7: a certificate routed to a cluster must be routed to ours.
  if (id.route_to_cluster && *id.route_to_cluster != np.config.cluster.name) {
    check.fail("cluster", Reason::cluster,
               "routed to cluster " + quoted(*id.route_to_cluster) + ", this node is in " + quoted(np.config.cluster.name));
  } else {
    check.pass("cluster", [&] {
      return id.route_to_cluster ? "routed to " + quoted(*id.route_to_cluster) : std::string("no cluster route");
    });
  }

  check_principal(check, cert, request.login);
  check_revocation(check, cert, np);
  check_locks(check, id, request.login, np, request.now, request.stale_locks);
  check_roles(check, d, id, request.login, np);

  d.allowed = !check.failed();
  if (d.allowed) {
    d.reason = Reason::ok;
    d.detail = "allowed";
  } else {
    d.granting_roles.clear();
    d.create_host_user_mode.reset();
    d.host_groups.clear();
    d.host_sudoers.clear();
  }
  return d;
}

std::optional<SessionEnd> session_end(const Certificate& cert, const Identity& id, std::string_view login,
                                      const NodePolicy& np, std::int64_t now) {
  Decision d;
  Checker check(d, false);  // only whether a check fails, and why
  const Lock* lock = check_locks(check, id, login, np, now);
  if (!check.failed() && np.config.policy.terminate_on_revoke) {
    check_ca(check, cert, np.cas, fingerprint_sha256(cert.signature_key));
    if (np.krl)
      if (auto why = np.krl->revoked(cert)) check.fail("revocation", Reason::revoked, *why);
  }
  if (!check.failed()) return std::nullopt;
  SessionEnd end{d.reason, d.detail, lock ? lock->name : "", lock ? lock->message : ""};
  return end;
}

std::optional<std::int64_t> session_deadline(const Decision& d) {
  if (!d.allowed || !d.cert || !d.session.disconnect_expired_cert || d.cert->valid_before == kValidForever)
    return std::nullopt;
  auto end = static_cast<std::int64_t>(std::min<std::uint64_t>(d.cert->valid_before, INT64_MAX));
  if (d.session.max_session_ttl && d.cert->valid_after <= static_cast<std::uint64_t>(INT64_MAX / 2))
    end = std::min(end, static_cast<std::int64_t>(d.cert->valid_after) + d.session.max_session_ttl->count());
  return end;
}

std::string authorized_keys_options(const Decision& d) {
  std::vector<std::string> options;
  if (d.session.port_forwarding != PortForwarding::on) options.push_back("no-port-forwarding");
  if (!d.session.agent_forwarding) options.push_back("no-agent-forwarding");
  if (!d.session.x11_forwarding) options.push_back("no-X11-forwarding");
  if (d.cert && d.cert->valid_before != kValidForever)
    options.push_back("expiry-time=\"" +
                      format_ssh_time(static_cast<std::int64_t>(std::min<std::uint64_t>(d.cert->valid_before, INT64_MAX))) +
                      "\"");
  // sshd checks the certificate's source-address itself; from= repeats it
  // when it is a plain address list (anything else was refused by rule 6).
  if (d.cert)
    for (const auto& option : d.cert->critical_options)
      if (option.name == "source-address" && !option.value.empty() &&
          option.value.find_first_not_of("0123456789abcdefABCDEF.:/,") == std::string::npos)
        options.push_back("from=\"" + option.value + "\"");
  std::string out;
  for (const auto& o : options) out += (out.empty() ? "" : ",") + o;
  return out;
}

}  // namespace machineid
