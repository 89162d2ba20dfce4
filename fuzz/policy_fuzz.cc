// libFuzzer: any bytes as a role/lock resource file. Whatever loads is then
// matched, so templates, label patterns and label expressions see fuzzed
// input too.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "machineid/policy.h"
#include "machineid/resources.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace machineid;
  Policy policy;
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  (void)parse_resources(yaml, "fuzz.yaml", policy);
  const Traits traits = {{"logins", {"ubuntu", "root"}}, {"email", {"alice@example.com"}}, {"env", {"prod"}}};
  const NodeLabels labels = {{"env", "prod"}, {"group", "api-servers"}};
  const ExpressionInput input{&labels, &traits, "bot-ci"};
  for (const auto& [name, role] : policy.roles) {
    for (const RoleConditions* c : {&role.allow, &role.deny}) {
      for (const auto& login : c->logins) expand_template(login, traits);
      for (const auto& group : c->host_groups) expand_values(group, traits);
      (void)match_labels(c->node_labels, labels, traits);
      if (const LabelsExpression* e = c->node_labels_expression(); e && e->parsed) (void)e->parsed->matches(input);
    }
  }
  const std::vector<std::string> roles = {"ci", "access"};
  LockSubject subject;
  subject.user = "bot-ci";
  subject.roles = &roles;
  subject.login = "root";
  subject.server_ids = {"my-host", "my-host.example.teleport.sh"};
  subject.bot_instance_id = "instance";
  for (const auto& lock : policy.locks) lock_applies(lock, subject, 0);
  return 0;
}
