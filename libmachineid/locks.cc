// Which requests a lock targets, as Teleport's node matches its session's
// lock targets (one field each) against a lock (LockTarget.Match).
#include <algorithm>

#include "machineid/policy.h"

namespace machineid {
namespace {

bool in(const std::vector<std::string>* items, std::string_view item) {
  return items != nullptr && std::find(items->begin(), items->end(), item) != items->end();
}

bool same(std::string_view target, std::string_view subject) { return !target.empty() && target == subject; }

}  // namespace

bool RoleConditions::in_default_namespace() const {
  return namespaces.empty() || std::any_of(namespaces.begin(), namespaces.end(),
                                           [](const std::string& n) { return n == "default" || n == "*"; });
}

std::string_view lock_match(const Lock& lock, const LockSubject& s) {
  const LockTarget& t = lock.target;
  if (same(t.user, s.user)) return "user";
  if (!t.role.empty() && in(s.roles, t.role)) return "role";
  if (same(t.login, s.login)) return "login";
  for (const auto& id : s.server_ids) {
    if (same(t.server_id, id)) return "server_id";
    if (same(t.node, id)) return "node";
  }
  if (same(t.mfa_device, s.mfa_device)) return "mfa_device";
  if (same(t.device, s.device)) return "device";
  if (!t.access_request.empty() && in(s.access_requests, t.access_request)) return "access_request";
  if (same(t.join_token, s.join_token)) return "join_token";
  if (same(t.bot_instance_id, s.bot_instance_id)) return "bot_instance_id";
  return {};  // windows_desktop never names an SSH session
}

bool lock_applies(const Lock& lock, const LockSubject& subject, std::int64_t now) {
  if (lock.expires && *lock.expires <= now) return false;
  return !lock_match(lock, subject).empty();
}

}  // namespace machineid
