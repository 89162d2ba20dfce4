// Trait templates as Teleport's NewTraitsTemplateExpression reads them: one
// "{{expression}}" with no other brace in the value.
#include "machineid/template.h"

#include <algorithm>
#include <optional>

#include "machineid/expression.h"

namespace machineid {
namespace {

// Teleport's IsValidUnixUser bound.
constexpr std::size_t kMaxLoginBytes = 32;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

struct Parsed {
  std::string_view prefix, suffix;
  std::optional<Expression> expression;  // none: a literal, all prefix
};

Result<Parsed> parse(std::string_view text) {
  Parsed p;
  if (!is_template(text)) {
    p.prefix = text;
    return p;
  }
  constexpr auto npos = std::string_view::npos;
  auto has_brace = [](std::string_view s) { return s.find_first_of("{}") != npos; };
  std::size_t open = text.find("{{");
  std::size_t close = open == npos ? npos : text.find("}}", open + 2);
  if (close == npos || has_brace(text.substr(0, open)) || has_brace(text.substr(open + 2, close - open - 2)) ||
      has_brace(text.substr(close + 2)))
    return make_error(Errc::config, "'" + std::string(text) +
                                        "' uses template braces but is not of the form prefix{{expression}}suffix");
  auto expression = Expression::parse(text.substr(open + 2, close - open - 2), ExpressionLanguage::trait_template);
  if (!expression.ok())
    return with_context(expression.error(), "template '" + std::string(text) + "'");
  p.prefix = text.substr(0, open);
  p.suffix = text.substr(close + 2);
  while (!p.prefix.empty() && is_space(p.prefix.front())) p.prefix.remove_prefix(1);
  while (!p.suffix.empty() && is_space(p.suffix.back())) p.suffix.remove_suffix(1);
  p.expression = std::move(*expression);
  return p;
}

}  // namespace

bool is_template(std::string_view text) {
  return text.find("{{") != std::string_view::npos || text.find("}}") != std::string_view::npos;
}

std::vector<std::string> expand_values(std::string_view tmpl, const Traits& traits) {
  std::vector<std::string> out;
  auto parsed = parse(tmpl);
  if (!parsed.ok()) return out;
  if (!parsed->expression) {
    if (!parsed->prefix.empty()) out.emplace_back(parsed->prefix);
    return out;
  }
  auto values = parsed->expression->values(ExpressionInput{nullptr, &traits, {}});
  if (!values.ok()) return out;
  for (const auto& value : *values)
    if (!value.empty()) out.push_back(std::string(parsed->prefix) + value + std::string(parsed->suffix));
  return out;
}

std::vector<std::string> expand_template(std::string_view tmpl, const Traits& traits) {
  std::vector<std::string> logins = expand_values(tmpl, traits);
  std::erase_if(logins, [](const std::string& login) { return !valid_login(login); });
  return logins;
}

Status validate_template(std::string_view tmpl) {
  auto parsed = parse(tmpl);
  if (!parsed.ok()) return parsed.error();
  return {};
}

// Teleport's IsValidUnixUser, checking ASCII blanks and controls.
bool valid_login(std::string_view login) {
  if (login.empty() || login.size() > kMaxLoginBytes || login.front() == '-') return false;
  return std::none_of(login.begin(), login.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return c == ':' || c == '/' || u <= 0x20 || u == 0x7F;
  });
}

}  // namespace machineid
