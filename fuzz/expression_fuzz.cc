// libFuzzer: any bytes as a label expression and as a trait template
// expression, parsed, type-checked and, when they parse, evaluated.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "machineid/expression.h"
#include "machineid/template.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace machineid;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const Traits traits = {{"logins", {"ubuntu", "root"}}, {"email", {"Alice <alice@example.com>"}},
                         {"groups", {"team-api", "^(bad"}}};
  const NodeLabels labels = {{"env", "prod"}, {"project-name", "skunkworks"}};
  const ExpressionInput input{&labels, &traits, "bot-ci"};
  if (auto e = Expression::parse(text, ExpressionLanguage::label_expression); e.ok()) (void)e->matches(input);
  if (auto e = Expression::parse(text, ExpressionLanguage::trait_template); e.ok()) (void)e->values(input);
  expand_template(text, traits);
  return 0;
}
