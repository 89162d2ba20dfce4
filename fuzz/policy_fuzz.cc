// libFuzzer: any bytes as a role/lock resource file. Whatever loads is then
// matched, so the template evaluator and label patterns see fuzzed input too.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "machineid/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace machineid;
  Policy policy;
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  if (!parse_resources(yaml, "fuzz.yaml", policy).ok()) return 0;
  const Traits traits = {
      {"logins", {"ubuntu", "root"}}, {"email", {"alice@example.com"}}, {"env", {"prod"}}};
  const NodeLabels labels = {{"env", "prod"}, {"group", "api-servers"}};
  for (const auto& [name, role] : policy.roles) {
    for (const RoleConditions* c : {&role.allow, &role.deny}) {
      for (const auto& login : c->logins) expand_template(login, traits);
      labels_match(c->node_labels, labels, traits);
    }
  }
  const std::vector<std::string> roles = {"ci", "access"};
  const LockSubject subject{"bot-ci", &roles, "root", "my-host", "instance"};
  for (const auto& lock : policy.locks) lock_applies(lock, subject, 0);
  return 0;
}
