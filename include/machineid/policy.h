// Teleport role and lock resources, as this node keeps them, and how a lock
// targets a request.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "machineid/expression.h"
#include "machineid/identity.h"
#include "machineid/labels.h"
#include "machineid/template.h"

namespace machineid {

// A condition's node_labels_expression: its text, and either the parsed
// expression or why it does not parse (Teleport loads such a role and
// denies any request whose check reaches the expression).
struct LabelsExpression {
  std::string text;
  std::optional<Expression> parsed;
  std::string error;
};

// One condition (allow or deny) of a role. Logins, label keys and values,
// host groups and sudoers lines may hold trait templates, expanded per
// request.
struct RoleConditions {
  std::vector<std::string> logins;
  LabelSelector node_labels;
  std::vector<std::string> host_groups;

  // The fields few roles set, held apart (null when the role sets none of
  // them; immutable, shared by copies): a node keeps thousands of roles.
  struct Rare {
    std::optional<LabelsExpression> node_labels_expression;
    std::vector<std::string> namespaces;  // empty: Teleport's default, ["default"]
    std::vector<std::string> host_sudoers;
  };
  std::shared_ptr<const Rare> rare;

  const LabelsExpression* node_labels_expression() const {
    return rare && rare->node_labels_expression ? &*rare->node_labels_expression : nullptr;
  }
  const std::vector<std::string>& host_sudoers() const;
  // Whether the role takes part in this condition for the default namespace.
  bool in_default_namespace() const;
  // Whether the condition has a node matcher (labels or an expression).
  bool has_node_matcher() const { return !node_labels.empty() || node_labels_expression() != nullptr; }
};

// The session options of a role that sshd can enforce; unset when the role
// does not say (Teleport's defaults then apply when roles are combined).
struct RoleOptions {
  std::optional<bool> port_forwarding;        // legacy port_forwarding
  std::optional<bool> local_port_forwarding;  // ssh_port_forwarding.local.enabled
  std::optional<bool> remote_port_forwarding; // ssh_port_forwarding.remote.enabled
  std::optional<bool> forward_agent;
  std::optional<bool> permit_x11_forwarding;
  std::optional<bool> disconnect_expired_cert;
};

enum class HostUserMode : std::uint8_t { off, keep, insecure_drop };

// Packed so that a role and its map entry take 336 bytes of heap, not 352: a
// node keeps thousands of roles.
struct Role {
  std::string name;
  std::string source;  // "file:line" of the document
  RoleConditions allow;
  RoleConditions deny;
  std::chrono::seconds max_session_ttl{0};  // zero when absent or zero: no limit
  RoleOptions options;
  HostUserMode host_user_mode = HostUserMode::off;  // create_host_user_mode

  // "keep" or "insecure-drop", as the role says it; null when off or absent.
  const char* create_host_user_mode() const {
    return host_user_mode == HostUserMode::keep            ? "keep"
           : host_user_mode == HostUserMode::insecure_drop ? "insecure-drop"
                                                            : nullptr;
  }
};

// A lock's target fields (Teleport's LockTarget). Each set field is an
// alternative: the lock applies when any one names the request.
struct LockTarget {
  std::string user, role, login, server_id, node, mfa_device, device, access_request, join_token,
      bot_instance_id, windows_desktop;
};

struct Lock {
  std::string name;
  std::string source;
  LockTarget target;
  std::string message;
  std::optional<std::int64_t> expires;  // unix seconds
};

// Locks by the target values they name ("user\0bot-ci" -> index in
// Policy::locks), so a decision looks up what names it instead of scanning
// every lock.
using LockIndex = std::unordered_multimap<std::string, std::size_t>;

struct Policy {
  std::map<std::string, Role, std::less<>> roles;
  // Roles whose definition did not load (a malformed document, a second
  // definition): name -> why. A certificate holding one is denied.
  std::map<std::string, std::string, std::less<>> broken_roles;
  std::vector<Lock> locks;
  LockIndex lock_index;  // kept by add_lock
  // Role and lock documents or files that did not load, as "file:line: why".
  std::vector<std::string> role_errors;
  std::vector<std::string> lock_errors;
  std::vector<std::string> notices;  // skipped documents, templates that cannot expand, ...
  // A file could not be read for a passing reason (descriptors or memory ran
  // out): this load says nothing about the files and is to be retried.
  std::optional<std::string> transient_error;
};

// What a request offers a lock to match: Teleport's session lock targets.
struct LockSubject {
  std::string_view user;
  const std::vector<std::string>* roles = nullptr;
  std::string_view login;
  std::vector<std::string> server_ids;  // node.name and node.name.cluster.name
  std::string_view mfa_device, device, join_token, bot_instance_id;
  const std::vector<std::string>* access_requests = nullptr;
};

// Appends a lock and indexes it.
void add_lock(Policy& policy, Lock lock);
// The first lock, in load order, in force at `now` that names the subject,
// or nullptr: an index lookup per subject field, whatever the number of locks.
const Lock* find_lock(const Policy& policy, const LockSubject& subject, std::int64_t now);

// Whether `lock` is in force at `now` (no expiry, or expires > now) and any
// one of its target fields names the subject.
bool lock_applies(const Lock& lock, const LockSubject& subject, std::int64_t now);
// The target field that names the subject ("user", "role", ...), or "".
std::string_view lock_match(const Lock& lock, const LockSubject& subject);

}  // namespace machineid
