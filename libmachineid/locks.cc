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

std::string index_key(std::string_view field, std::string_view value) {
  return std::string(field) + '\0' + std::string(value);
}

}  // namespace

bool RoleConditions::in_default_namespace() const {
  return !rare || rare->namespaces.empty() ||
         std::any_of(rare->namespaces.begin(), rare->namespaces.end(),
                     [](const std::string& n) { return n == "default" || n == "*"; });
}

const std::vector<std::string>& RoleConditions::host_sudoers() const {
  static const std::vector<std::string> none;
  return rare ? rare->host_sudoers : none;
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

void add_lock(Policy& policy, Lock lock) {
  const std::size_t at = policy.locks.size();
  const LockTarget& t = lock.target;
  // node and server_id name the same thing for an SSH session.
  for (auto [field, value] : {std::pair<std::string_view, const std::string*>{"user", &t.user},
                              {"role", &t.role}, {"login", &t.login}, {"server", &t.server_id},
                              {"server", &t.node}, {"mfa_device", &t.mfa_device}, {"device", &t.device},
                              {"access_request", &t.access_request}, {"join_token", &t.join_token},
                              {"bot_instance_id", &t.bot_instance_id}})
    if (!value->empty()) policy.lock_index.emplace(index_key(field, *value), at);
  policy.locks.push_back(std::move(lock));
}

const Lock* find_lock(const Policy& policy, const LockSubject& s, std::int64_t now) {
  std::size_t best = policy.locks.size();
  auto consider = [&](std::string_view field, std::string_view value) {
    if (value.empty()) return;
    auto [first, last] = policy.lock_index.equal_range(index_key(field, value));
    for (auto it = first; it != last; ++it) {
      const Lock& lock = policy.locks[it->second];
      if (it->second < best && (!lock.expires || *lock.expires > now)) best = it->second;
    }
  };
  consider("user", s.user);
  if (s.roles)
    for (const auto& role : *s.roles) consider("role", role);
  consider("login", s.login);
  for (const auto& id : s.server_ids) consider("server", id);
  consider("mfa_device", s.mfa_device);
  consider("device", s.device);
  if (s.access_requests)
    for (const auto& request : *s.access_requests) consider("access_request", request);
  consider("join_token", s.join_token);
  consider("bot_instance_id", s.bot_instance_id);
  return best < policy.locks.size() ? &policy.locks[best] : nullptr;
}

bool lock_applies(const Lock& lock, const LockSubject& subject, std::int64_t now) {
  if (lock.expires && *lock.expires <= now) return false;
  return !lock_match(lock, subject).empty();
}

}  // namespace machineid
