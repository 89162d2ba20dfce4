// Teleport role and lock resources and how they match this node.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "machineid/identity.h"
#include "machineid/result.h"

namespace re2 {
class RE2;
}

namespace machineid {

inline constexpr std::size_t kMaxResourceFileBytes = 16 * 1024 * 1024;
inline constexpr std::size_t kMaxResources = 100000;

using NodeLabels = std::map<std::string, std::string, std::less<>>;

// One value pattern of a role's node_labels: '*', '^regex$' (an RE2 regexp
// searched with its own anchors, as Teleport does), or a literal in which
// '*' matches any run of characters (as Teleport's globs). May hold trait
// templates, expanded at match time; so may the selector's keys.
struct LabelPattern {
  std::string text;
  std::shared_ptr<const re2::RE2> regex;  // compiled when `text` has no template
};

// key -> acceptable values. Matches when every key matches some value.
using LabelSelector = std::map<std::string, std::vector<LabelPattern>, std::less<>>;

struct RoleConditions {
  std::vector<std::string> logins;  // may hold {{internal.X}} / {{external.X}}
  LabelSelector node_labels;
  // Literal: entries holding templates are dropped at load with a notice.
  std::vector<std::string> host_groups;
  std::vector<std::string> host_sudoers;
};

struct Role {
  std::string name;
  std::string source;  // "file:line" of the document
  RoleConditions allow;
  RoleConditions deny;
  std::optional<std::string> create_host_user_mode;     // "keep" | "insecure-drop"
  std::optional<std::chrono::seconds> max_session_ttl;  // unset when absent or zero
};

struct LockTarget {
  std::string user, role, login, server_id, bot_instance_id;
  bool has_other = false;  // targets fields this node cannot see (mfa_device, ...)
};

struct Lock {
  std::string name;
  std::string source;
  LockTarget target;
  std::string message;
  std::optional<std::int64_t> expires;  // unix seconds
};

struct Policy {
  std::map<std::string, Role, std::less<>> roles;
  std::vector<Lock> locks;
  std::vector<std::string> notices;  // skipped documents and the like
};

// Parses one file's YAML documents. `kind: role` documents (v3 to v8) go
// into roles; `kind: lock` into locks; others are skipped with a notice.
// Errors name source, line and field; a role name already in `into` or
// earlier in the file is an error naming both places. On error `into` is
// left as it was.
Status parse_resources(std::string_view yaml, std::string_view source, Policy& into);
// Loads every *.yaml / *.yml file (not hidden ones) of roles_dir and
// locks_dir, sorted by name, into one Policy; a missing directory is empty,
// an unreadable one or file an error. One directory given twice is read once.
Result<Policy> load_policy(const std::string& roles_dir, const std::string& locks_dir);

// Expands a login template against traits: a literal gives itself;
// "{{internal.X}}" / "{{external.X}}" (with optional prefix and suffix, and
// the email.local and regexp.replace functions) give one value per trait
// value, none when the trait is missing or the template is malformed.
// Values that are empty or not valid Unix logins (as Teleport's
// IsValidUnixUser: 1-32 bytes, no leading '-', no ':', '/', blank or
// control character) are dropped. Label templates are expanded inside
// labels_match, without the login check.
std::vector<std::string> expand_template(std::string_view tmpl, const Traits& traits);
// Checks template syntax without expanding; the error says what is wrong.
Status validate_template(std::string_view tmpl);

// Whether `selector` matches `labels`. An empty selector matches nothing;
// callers decide what empty means for them (deny rules treat it as all).
bool labels_match(const LabelSelector& selector, const NodeLabels& labels, const Traits& traits);

// Whether a lock is in force at `now` (no expiry, or expires > now) and
// targets this request: every target field set matches (role: any of the
// subject's roles). A lock with has_other, or with no target, never applies.
struct LockSubject {
  std::string_view user;
  const std::vector<std::string>* roles;
  std::string_view login;
  std::string_view server_id;
  std::string_view bot_instance_id;
};
bool lock_applies(const Lock& lock, const LockSubject& subject, std::int64_t now);

}  // namespace machineid
