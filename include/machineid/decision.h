// The decision of SPEC §4: certificate + login + source + time + the node's
// policy -> allow or deny with the first failing rule's reason code.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "machineid/cert.h"
#include "machineid/identity.h"
#include "machineid/node_policy.h"

namespace machineid {

enum class Reason {
  ok,
  parse,
  cert_type,
  ca_untrusted,
  expired,
  not_yet_valid,
  ttl_too_long,
  critical_option,
  cluster,
  principal,
  revoked,
  locked,
  role,
};

// The reason code as SPEC §4 and the audit trail spell it ("ca_untrusted").
std::string_view reason_code(Reason reason);

struct Request {
  Bytes certificate;  // the certificate blob
  std::string_view login;
  std::optional<std::string> source;  // client IP, when known
  std::int64_t now = 0;               // unix seconds
  // Under lock_mode "strict": why the node's view of the locks cannot be
  // trusted now (stale_lock_view); every login is then denied.
  std::optional<std::string> stale_locks;
  // Record every rule that held, with its detail, in Decision::checks (for
  // `machineidctl verify`); otherwise checks holds only the rules that failed.
  bool explain = false;
};

// One rule's outcome, for the linter-style report.
struct Check {
  std::string_view rule;  // "parse", "cert_type", "validity", ...
  bool passed = false;
  std::string detail;
};

// What the certificate's roles allow a session, combined as Teleport
// combines role options.
enum class PortForwarding { on, off, local_only, remote_only };
struct SessionOptions {
  PortForwarding port_forwarding = PortForwarding::on;  // Teleport: on unless a role says otherwise
  bool agent_forwarding = false;
  bool x11_forwarding = false;
  bool disconnect_expired_cert = false;
  std::optional<std::chrono::seconds> max_session_ttl;  // the shortest of the roles'
};

struct Decision {
  bool allowed = false;
  Reason reason = Reason::parse;
  std::string detail;         // why the first failing rule failed
  std::vector<Check> checks;  // the rules evaluated, in SPEC order (those that held: with Request::explain)

  // What the certificate said; set once it parsed.
  std::optional<Certificate> cert;
  std::optional<Identity> identity;
  std::string cert_fingerprint;  // of the certified key
  std::string ca_fingerprint;    // of the signing key

  // Roles mode, when allowed: the role that granted the login, and the
  // host-user settings of the role set for this node (Teleport's HostUsers:
  // no mode unless every role matching the node enables host users).
  std::vector<std::string> granting_roles;
  std::optional<std::string> create_host_user_mode;
  std::vector<std::string> host_groups;
  std::vector<std::string> host_sudoers;
  SessionOptions session;
};

// Evaluates every rule of SPEC §4 (those that can be evaluated once the
// certificate parsed) and allows only if all hold. Pure: no I/O, no clock.
Decision decide(const Request& request, const NodePolicy& policy);

// The authorized_keys options (sshd(8)) an allowed decision calls for, as
// machineid-principals prints them before the login: no-port-forwarding,
// no-agent-forwarding and no-X11-forwarding unless the roles allow them,
// expiry-time from the certificate, from= from its source-address. sshd
// cannot forbid one direction of port forwarding alone, so a role set that
// allows only local or only remote forwarding gets no-port-forwarding.
std::string authorized_keys_options(const Decision& d);

// Why a session that `cert` opened as `login` must end now, as Teleport's
// node agent ends sessions: a lock in force that names it (or, under
// lock_mode "strict", locks that did not load); with
// [policy] terminate_on_revoke, a revocation by the KRL or a CA that is no
// longer trusted. An unusable KRL denies new logins but ends no session.
struct SessionEnd {
  Reason reason = Reason::locked;
  std::string detail;
  std::string lock, lock_message;  // the lock in force, when one is
};
std::optional<SessionEnd> session_end(const Certificate& cert, const Identity& id, std::string_view login,
                                      const NodePolicy& policy, std::int64_t now);

// When an allowed session must end by itself (Teleport's
// disconnect_expired_cert, at the certificate's valid_before, capped at
// valid_after + the roles' shortest max_session_ttl); nullopt: never.
std::optional<std::int64_t> session_deadline(const Decision& d);

}  // namespace machineid
