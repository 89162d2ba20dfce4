// Teleport's two expression languages in roles, parsed and type-checked once
// and evaluated per request: the trait templates inside "{{...}}" of logins,
// labels and host groups, and node_labels_expression. Both are Go
// expressions (string literals, selectors, index expressions, calls, !, &&,
// ||, ==, !=), as Teleport parses them with its "typical" predicate library.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "machineid/identity.h"
#include "machineid/labels.h"
#include "machineid/result.h"

namespace machineid {

// Longest expression text and deepest nesting accepted: bounds on parse and
// evaluation work and on recursion.
inline constexpr std::size_t kMaxExpressionBytes = 16 * 1024;
inline constexpr int kMaxExpressionDepth = 32;

enum class ExpressionLanguage {
  // Variables internal.X and external.X (and external["X"]); functions
  // email.local and regexp.replace; the value is a list of strings.
  trait_template,
  // Variables labels, user.spec.traits and user.metadata.name; the
  // functions of Teleport's label expressions; the value is a boolean.
  label_expression,
};

// What an expression reads when evaluated.
struct ExpressionInput {
  const NodeLabels* labels = nullptr;
  const Traits* traits = nullptr;
  std::string_view user;  // the certificate's Teleport user
};

namespace expression_detail {
struct Node;
}

class Expression {
 public:
  // Parses and type-checks `text`; the error says what and where.
  static Result<Expression> parse(std::string_view text, ExpressionLanguage language);

  // A label expression's verdict, or the evaluation error (an invalid
  // e-mail address or regexp, say) that makes Teleport deny the request.
  Result<bool> matches(const ExpressionInput& input) const;
  // A trait template expression's values, or an error (a trait that is
  // missing or not allowed in "internal", a failing function).
  Result<std::vector<std::string>> values(const ExpressionInput& input) const;

 private:
  std::shared_ptr<const expression_detail::Node> root_;
};

// Teleport's Go string literal: "..." with Go's escapes, or `raw`. `pos`
// indexes the opening quote and ends past the closing one.
Result<std::string> parse_go_string(std::string_view text, std::size_t& pos);

}  // namespace machineid
