// The decision of SPEC §4, rule by rule, in the SPEC's order.
#include "machineid/decision.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "machineid/encoding.h"
#include "machineid/net.h"

namespace machineid {
namespace {

constexpr std::string_view kTeleportInternalPrefix = "-teleport-";
// Teleport backdates certificates by a minute; rule 5 allows for it.
constexpr std::int64_t kBackdateAllowance = 60;

std::string format_time(std::uint64_t t) {
  if (t == kValidForever) return "forever";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  char buf[32];
  if (t > static_cast<std::uint64_t>(253402300799) || gmtime_r(&tt, &tm) == nullptr) return std::to_string(t);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
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
  explicit Checker(Decision& d) : d_(d) {}
  void pass(std::string_view rule, std::string detail) { d_.checks.push_back({rule, true, std::move(detail)}); }
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
  check.pass("ca", "signed by trusted CA " + ca->fingerprint);
}

// Rule 4: valid_after − skew ≤ now < valid_before + skew.
void check_validity(Checker& check, const Certificate& cert, std::int64_t now, std::int64_t skew) {
  using Wide = __int128;  // no overflow at either end of the u64 range
  Wide lower = static_cast<Wide>(cert.valid_after) - skew;
  Wide upper = static_cast<Wide>(cert.valid_before) + skew;
  std::string window = "valid from " + format_time(cert.valid_after) + " to " + format_time(cert.valid_before);
  if (now < lower) return check.fail("validity", Reason::not_yet_valid, "not yet valid: " + window);
  if (now >= upper) return check.fail("validity", Reason::expired, "expired: " + window);
  check.pass("validity", window);
}

// Rule 5: valid_before − valid_after ≤ max_cert_ttl + 1m; never forever.
void check_ttl(Checker& check, const Certificate& cert, std::int64_t max_ttl) {
  if (cert.valid_before == kValidForever)
    return check.fail("ttl", Reason::ttl_too_long, "certificate is valid forever");
  if (cert.valid_before < cert.valid_after)
    return check.fail("ttl", Reason::ttl_too_long, "valid_before precedes valid_after");
  std::uint64_t ttl = cert.valid_before - cert.valid_after;
  std::string detail = "lifetime " + std::to_string(ttl) + "s, limit " + std::to_string(max_ttl) + "s + 60s";
  if (ttl > static_cast<std::uint64_t>(max_ttl + kBackdateAllowance))
    return check.fail("ttl", Reason::ttl_too_long, detail);
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
  check.pass("critical_options", cert.critical_options.empty() ? "none" : "understood and satisfied");
}

// Rule 8: the login is a principal, exactly; -teleport-* principals never are.
void check_principal(Checker& check, const Certificate& cert, std::string_view login) {
  if (cert.principals.empty()) return check.fail("principal", Reason::principal, "certificate has no principals");
  if (login.starts_with(kTeleportInternalPrefix))
    return check.fail("principal", Reason::principal, quoted(login) + " is a Teleport-internal principal, not a login");
  if (!contains(cert.principals, login))
    return check.fail("principal", Reason::principal,
                      quoted(login) + " is not among the principals [" + join(cert.principals) + "]");
  check.pass("principal", quoted(login) + " is a principal");
}

// Rule 9: revoked by the KRL, or no usable KRL at all.
void check_revocation(Checker& check, const Certificate& cert, const NodePolicy& np) {
  if (np.krl_error)
    return check.fail("revocation", Reason::revoked, "KRL unusable, denying every certificate: " + *np.krl_error);
  if (!np.krl) return check.pass("revocation", "no KRL configured");
  if (auto why = np.krl->revoked(cert)) return check.fail("revocation", Reason::revoked, *why);
  check.pass("revocation", "not revoked (KRL version " + std::to_string(np.krl->version()) + ")");
}

// Rule 10: no live lock targets the user, a role, the login, this node or
// the bot instance.
void check_locks(Checker& check, const Identity& id, std::string_view login, const NodePolicy& np,
                 std::int64_t now) {
  std::string_view bot_instance = id.bot_instance_id ? std::string_view(*id.bot_instance_id) : std::string_view();
  LockSubject subject{id.user, &id.roles, login, np.config.node.name, bot_instance};
  for (const auto& lock : np.policy.locks) {
    if (!lock_applies(lock, subject, now)) continue;
    std::string detail = "locked by " + quoted(lock.name) + " (" + lock.source + ")";
    if (!lock.message.empty()) detail += ": " + lock.message;
    return check.fail("locks", Reason::locked, detail);
  }
  check.pass("locks", std::to_string(np.policy.locks.size()) + " locks, none applies");
}

bool grants_login(const RoleConditions& c, std::string_view login, const Traits& traits) {
  for (const auto& tmpl : c.logins)
    if (contains(expand_template(tmpl, traits), login)) return true;
  return false;
}

// Rule 11: deny rules of every role first, then some role must allow the
// login on a node whose labels it matches.
void check_roles(Checker& check, Decision& d, const Identity& id, std::string_view login, const NodePolicy& np) {
  if (np.config.policy.mode == PolicyMode::principals) return check.pass("roles", "mode 'principals': roles not consulted");
  std::vector<const Role*> defined;
  std::vector<std::string> undefined;
  for (const auto& name : id.roles) {
    auto it = np.policy.roles.find(name);
    if (it == np.policy.roles.end()) {
      undefined.push_back(name);
    } else {
      defined.push_back(&it->second);
    }
  }
  const NodeLabels& labels = np.config.node.labels;
  for (const Role* role : defined) {
    bool on_this_node = role->deny.node_labels.empty() || labels_match(role->deny.node_labels, labels, id.traits);
    if (on_this_node && grants_login(role->deny, login, id.traits))
      return check.fail("roles", Reason::role, "role " + quoted(role->name) + " denies login " + quoted(login));
  }
  std::vector<std::string> granting;
  for (const Role* role : defined) {
    if (!grants_login(role->allow, login, id.traits) || !labels_match(role->allow.node_labels, labels, id.traits))
      continue;
    granting.push_back(role->name);
    if (role->create_host_user_mode && d.create_host_user_mode != "keep")
      d.create_host_user_mode = role->create_host_user_mode;
    for (const auto& g : role->allow.host_groups)
      if (!contains(d.host_groups, g)) d.host_groups.push_back(g);
    for (const auto& s : role->allow.host_sudoers)
      if (!contains(d.host_sudoers, s)) d.host_sudoers.push_back(s);
  }
  std::string note = undefined.empty() ? "" : " (no local definition: " + join(undefined) + ")";
  if (granting.empty()) {
    d.create_host_user_mode.reset();
    d.host_groups.clear();
    d.host_sudoers.clear();
    std::string roles = id.roles.empty() ? "certificate carries no roles" : "roles [" + join(id.roles) + "]";
    return check.fail("roles", Reason::role, "no role allows login " + quoted(login) + " on this node: " + roles + note);
  }
  d.granting_roles = granting;
  check.pass("roles", "allowed by [" + join(granting) + "]" + note);
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
  Checker check(d);

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
  check.pass("parse", cert.type_name + ", key id " + quoted(cert.key_id) + ", serial " + std::to_string(cert.serial));

  // Rule 2: a user certificate.
  if (cert.type != kUserCert) {
    check.fail("cert_type", Reason::cert_type, "host certificate, not a user certificate");
  } else {
    check.pass("cert_type", "user certificate");
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
    check.pass("cluster", id.route_to_cluster ? "routed to " + quoted(*id.route_to_cluster) : "no cluster route");
  }

  check_principal(check, cert, request.login);
  check_revocation(check, cert, np);
  check_locks(check, id, request.login, np, request.now);
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

void load_revocations(NodePolicy& np) {
  np.krl.reset();
  np.krl_error.reset();
  const std::string& path = np.config.policy.revoked_keys;
  struct stat st {};
  // No KRL file means no revocations; anything else that keeps us from
  // reading it denies every certificate, as sshd's RevokedKeys does.
  if (path.empty() || (stat(path.c_str(), &st) != 0 && errno == ENOENT)) return;
  auto krl = Krl::load(path);
  if (krl.ok()) {
    np.krl.emplace(std::move(*krl));
  } else {
    np.krl_error = krl.error().message;
  }
}

Result<NodePolicy> load_node_policy(Config config) {
  NodePolicy np;
  MID_TRY(cas, CaSet::load(config.cluster.user_ca_file, config.cluster.name));
  np.cas = std::move(cas);
  MID_TRY(policy, load_policy(config.policy.roles_dir, config.policy.locks_dir));
  np.policy = std::move(policy);
  np.config = std::move(config);
  load_revocations(np);
  return np;
}

}  // namespace machineid
