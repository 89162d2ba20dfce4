// Teleport's expression languages: a Go-expression parser, a type checker
// that resolves names against one language's variables and functions (as
// Teleport's "typical" library does at parse time), and an evaluator.
#include "machineid/expression.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>

#include "machineid/encoding.h"
#include "machineid/template.h"

namespace machineid {
namespace expression_detail {

enum class Type { boolean, string, list, integer, labels, traits };

std::string type_name(Type t) {
  switch (t) {
    case Type::boolean: return "bool";
    case Type::string: return "string";
    case Type::list: return "[]string";
    case Type::integer: return "int";
    case Type::labels: return "map[string]string";
    case Type::traits: return "map[string][]string";
  }
  return "?";
}

struct Value {
  bool boolean = false;
  std::int64_t integer = 0;
  std::string string;
  std::vector<std::string> list;
};

struct Node;
using Args = std::vector<Value>;
using Impl = Result<Value> (*)(Args& args, const Node& node, const ExpressionInput& input);

struct Function {
  std::string_view name;
  ExpressionLanguage language;
  std::vector<Type> params;
  std::optional<Type> variadic;  // further arguments, each of this type
  Type result;
  Impl impl;
};

// A checked expression: every node knows its type.
struct Node {
  enum class Op { literal, variable, lookup, wrap, call, ifelse, not_, and_, or_, eq, ne };
  Op op = Op::literal;
  Type type = Type::string;
  Value literal;               // Op::literal
  std::string name;            // Op::variable, Op::call: what it names
  const Function* function = nullptr;
  std::vector<std::unique_ptr<Node>> args;
  // A regexp argument given as a literal, compiled once (or why it does
  // not compile, reported when evaluated, as Teleport reports it).
  std::shared_ptr<const RE2> regex;
  std::string regex_error;
};

}  // namespace expression_detail

namespace {

using namespace expression_detail;

Error expr_error(std::string what) { return make_error(Errc::config, std::move(what)); }
Error eval_error(std::string what) { return make_error(Errc::unsupported, std::move(what)); }
std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

Result<std::uint32_t> escape_digits(std::string_view text, std::size_t& pos, std::size_t count,
                                    std::uint32_t base) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < count; ++i, ++pos) {
    if (pos >= text.size()) return expr_error("short escape in string");
    char c = text[pos];
    std::uint32_t d = is_digit(c)              ? static_cast<std::uint32_t>(c - '0')
                      : (c >= 'a' && c <= 'f') ? static_cast<std::uint32_t>(c - 'a' + 10)
                      : (c >= 'A' && c <= 'F') ? static_cast<std::uint32_t>(c - 'A' + 10)
                                               : base;
    if (d >= base) return expr_error("bad digit in string escape");
    value = value * base + d;
  }
  return value;
}

// ---------------------------------------------------------------------------
// Syntax: the Go expressions Teleport's languages are written in.

struct Syntax {
  enum class Kind { string, integer, path, index, call, not_, and_, or_, eq, ne };
  Kind kind = Kind::string;
  std::string text;                // string value; path and call: dotted name
  std::int64_t number = 0;
  std::vector<std::unique_ptr<Syntax>> args;  // operands, index base and key, call arguments
};
using SyntaxPtr = std::unique_ptr<Syntax>;

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<SyntaxPtr> parse() {
    MID_TRY(root, disjunction(0));
    skip();
    if (pos_ != text_.size()) return error("unexpected " + in_quotes(text_.substr(pos_, 16)));
    return root;
  }

 private:
  Error error(std::string what) const {
    return expr_error(what + " at offset " + std::to_string(pos_));
  }

  // Blanks and Go comments.
  void skip() {
    for (;;) {
      while (pos_ < text_.size() && is_blank(text_[pos_])) ++pos_;
      if (text_.substr(pos_, 2) == "//") {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else if (text_.substr(pos_, 2) == "/*") {
        std::size_t end = text_.find("*/", pos_ + 2);
        pos_ = end == std::string_view::npos ? text_.size() : end + 2;
      } else {
        return;
      }
    }
  }
  bool eat(std::string_view token) {
    skip();
    if (text_.substr(pos_, token.size()) != token) return false;
    // "!" is not the start of "!=", nor "=" of "==".
    if (token == "!" && text_.substr(pos_, 2) == "!=") return false;
    pos_ += token.size();
    return true;
  }

  static SyntaxPtr binary(Syntax::Kind kind, SyntaxPtr lhs, SyntaxPtr rhs) {
    auto node = std::make_unique<Syntax>();
    node->kind = kind;
    node->args.push_back(std::move(lhs));
    node->args.push_back(std::move(rhs));
    return node;
  }

  Result<SyntaxPtr> disjunction(int depth) {
    MID_TRY(lhs, conjunction(depth));
    while (eat("||")) {
      MID_TRY(rhs, conjunction(depth));
      lhs = binary(Syntax::Kind::or_, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }
  Result<SyntaxPtr> conjunction(int depth) {
    MID_TRY(lhs, comparison(depth));
    while (eat("&&")) {
      MID_TRY(rhs, comparison(depth));
      lhs = binary(Syntax::Kind::and_, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }
  Result<SyntaxPtr> comparison(int depth) {
    MID_TRY(lhs, unary(depth));
    for (;;) {
      Syntax::Kind kind;
      if (eat("==")) {
        kind = Syntax::Kind::eq;
      } else if (eat("!=")) {
        kind = Syntax::Kind::ne;
      } else {
        return lhs;
      }
      MID_TRY(rhs, unary(depth));
      lhs = binary(kind, std::move(lhs), std::move(rhs));
    }
  }
  Result<SyntaxPtr> unary(int depth) {
    if (depth > kMaxExpressionDepth) return error("expression nested too deeply");
    if (eat("!")) {
      MID_TRY(operand, unary(depth + 1));
      auto node = std::make_unique<Syntax>();
      node->kind = Syntax::Kind::not_;
      node->args.push_back(std::move(operand));
      return node;
    }
    return postfix(depth);
  }

  // A primary followed by selectors, index expressions and calls.
  Result<SyntaxPtr> postfix(int depth) {
    MID_TRY(node, primary(depth));
    for (;;) {
      if (eat(".")) {
        skip();
        std::string_view name = identifier();
        if (name.empty()) return error("expected a name after '.'");
        if (node->kind != Syntax::Kind::path) return error("a selector applies only to names");
        node->text += "." + std::string(name);
      } else if (eat("[")) {
        MID_TRY(key, disjunction(depth + 1));
        if (!eat("]")) return error("expected ']'");
        auto index = std::make_unique<Syntax>();
        index->kind = Syntax::Kind::index;
        index->args.push_back(std::move(node));
        index->args.push_back(std::move(key));
        node = std::move(index);
      } else if (eat("(")) {
        if (node->kind != Syntax::Kind::path) return error("only named functions can be called");
        node->kind = Syntax::Kind::call;
        if (!eat(")")) {
          do {
            MID_TRY(arg, disjunction(depth + 1));
            node->args.push_back(std::move(arg));
          } while (eat(","));
          if (!eat(")")) return error("expected ',' or ')'");
        }
      } else {
        return node;
      }
    }
  }

  Result<SyntaxPtr> primary(int depth) {
    skip();
    auto node = std::make_unique<Syntax>();
    if (eat("(")) {
      MID_TRY(inner, disjunction(depth + 1));
      if (!eat(")")) return error("expected ')'");
      return inner;
    }
    if (pos_ < text_.size() && (text_[pos_] == '"' || text_[pos_] == '`')) {
      MID_TRY(value, parse_go_string(text_, pos_));
      node->text = std::move(value);
      return node;
    }
    if (pos_ < text_.size() && is_digit(text_[pos_])) {
      std::size_t start = pos_;
      while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
      auto digits = text_.substr(start, pos_ - start);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), node->number);
      if (ec != std::errc() || end != digits.data() + digits.size())
        return error("bad integer " + in_quotes(digits));
      node->kind = Syntax::Kind::integer;
      return node;
    }
    std::string_view name = identifier();
    if (name.empty()) {
      if (pos_ >= text_.size()) return error("unexpected end of expression");
      return error("unexpected " + in_quotes(text_.substr(pos_, 1)));
    }
    node->kind = Syntax::Kind::path;
    node->text = std::string(name);
    return node;
  }

  std::string_view identifier() {
    std::size_t start = pos_;
    if (pos_ < text_.size() && is_name_start(text_[pos_]))
      while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// Regexps, as Teleport's Go code compiles them.

RE2::Options regex_options() {
  RE2::Options options;
  options.set_log_errors(false);
  return options;
}

Result<std::string> group_rewrite(std::string_view name, const RE2& re);

// Translates a Go replacement ("$1", "$name", "$$") into an RE2 rewrite
// ("\1", "$"). As Go's Regexp.Expand, the name is the longest run of word
// characters, a group that does not exist expands to nothing and a "$"
// not followed by a name stays literal.
Result<std::string> rewrite_from_go(std::string_view repl, const RE2& re) {
  std::string out;
  for (std::size_t i = 0; i < repl.size(); ++i) {
    char c = repl[i];
    if (c == '\\') {
      out += "\\\\";
      continue;
    }
    if (c != '$') {
      out += c;
      continue;
    }
    if (i + 1 < repl.size() && repl[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (i + 1 < repl.size() && repl[i + 1] == '{') {  // Go's "${name}"
      std::size_t close = repl.find('}', i + 2);
      if (close == std::string_view::npos) {
        out += '$';
        continue;
      }
      std::string_view name = repl.substr(i + 2, close - i - 2);
      MID_TRY(group, group_rewrite(name, re));
      out += group;
      i = close;
      continue;
    }
    std::size_t next = i + 1;
    while (next < repl.size() && is_name_char(repl[next])) ++next;
    std::string_view name = repl.substr(i + 1, next - i - 1);
    if (name.empty()) {
      out += '$';
      continue;
    }
    MID_TRY(group, group_rewrite(name, re));
    out += group;
    i = next - 1;
  }
  return out;
}

// "\N" for a group that exists, "" for one that does not.
Result<std::string> group_rewrite(std::string_view name, const RE2& re) {
  int group = std::numeric_limits<int>::max();
  if (!name.empty() && std::all_of(name.begin(), name.end(), is_digit)) {
    std::from_chars(name.data(), name.data() + name.size(), group);  // too large stays max
  } else if (auto it = re.NamedCapturingGroups().find(std::string(name));
             it != re.NamedCapturingGroups().end()) {
    group = it->second;
  }
  if (group > re.NumberOfCapturingGroups()) return std::string();
  if (group > 9) return expr_error("regexp.replace: RE2 cannot refer to group $" + std::string(name));
  return std::string{'\\', static_cast<char>('0' + group)};
}

Result<std::shared_ptr<const RE2>> compile_regex(const std::string& pattern) {
  auto re = std::make_shared<const RE2>(pattern, regex_options());
  if (!re->ok()) return eval_error("invalid regular expression " + in_quotes(pattern) + ": " + re->error());
  return std::shared_ptr<const RE2>(std::move(re));
}

// The local part of an e-mail address ("alice" of "alice@example.com" or of
// "Alice <alice@example.com>"), as Go's mail.ParseAddress reads the common
// forms.
Result<std::string> email_local_part(std::string_view value) {
  if (value.empty()) return eval_error("found empty \"email.local\" argument");
  std::string_view address = value;
  if (std::size_t open = address.rfind('<'); open != std::string_view::npos && address.ends_with('>'))
    address = address.substr(open + 1, address.size() - open - 2);
  std::size_t at = address.rfind('@');
  if (at == 0 || at == std::string_view::npos || at + 1 == address.size() ||
      address.find_first_of(" \t\r\n<>") != std::string_view::npos ||
      address.substr(0, at).find('@') != std::string_view::npos)
    return eval_error("failed to parse \"email.local\" argument " + in_quotes(value));
  return std::string(address.substr(0, at));
}

// ---------------------------------------------------------------------------
// Functions.

Value boolean(bool b) {
  Value v;
  v.boolean = b;
  return v;
}
Value list(std::vector<std::string> items) {
  Value v;
  v.list = std::move(items);
  return v;
}
bool has(const std::vector<std::string>& items, std::string_view item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

// The regexp a call's argument `index` names: compiled once when it was a
// literal, else now.
Result<std::shared_ptr<const RE2>> call_regex(const Node& node, const std::string& pattern) {
  if (node.regex) return node.regex;
  if (!node.regex_error.empty()) return eval_error(node.regex_error);
  return compile_regex(pattern);
}

std::string glob_regex_program(std::string_view pattern);

Result<Value> fn_contains(Args& a, const Node&, const ExpressionInput&) {
  return boolean(has(a[0].list, a[1].string));
}
Result<Value> fn_contains_any(Args& a, const Node&, const ExpressionInput&) {
  return boolean(std::any_of(a[1].list.begin(), a[1].list.end(),
                             [&](const std::string& item) { return has(a[0].list, item); }));
}
// False for an empty second list, so an unrelated node never matches.
Result<Value> fn_contains_all(Args& a, const Node&, const ExpressionInput&) {
  return boolean(!a[1].list.empty() &&
                 std::all_of(a[1].list.begin(), a[1].list.end(),
                             [&](const std::string& item) { return has(a[0].list, item); }));
}
Result<Value> fn_regexp_match(Args& a, const Node& node, const ExpressionInput&) {
  MID_TRY(re, call_regex(node, glob_regex_program(a[1].string)));
  return boolean(std::any_of(a[0].list.begin(), a[0].list.end(),
                             [&](const std::string& s) { return RE2::PartialMatch(s, *re); }));
}
// Values the regexp does not match are dropped, as Teleport drops them.
Result<Value> fn_regexp_replace(Args& a, const Node& node, const ExpressionInput&) {
  MID_TRY(re, call_regex(node, a[1].string));
  MID_TRY(rewrite, rewrite_from_go(a[2].string, *re));
  std::vector<std::string> out;
  for (std::string value : a[0].list) {
    if (!RE2::PartialMatch(value, *re)) continue;
    RE2::GlobalReplace(&value, *re, rewrite);
    if (!value.empty()) out.push_back(std::move(value));
  }
  return list(std::move(out));
}
Result<Value> fn_email_local(Args& a, const Node&, const ExpressionInput&) {
  std::vector<std::string> out;
  for (const auto& value : a[0].list) {
    MID_TRY(local, email_local_part(value));
    if (!local.empty()) out.push_back(std::move(local));
  }
  return list(std::move(out));
}
template <int (*Convert)(int)>
Result<Value> fn_case(Args& a, const Node&, const ExpressionInput&) {
  for (auto& value : a[0].list)
    for (auto& c : value) c = static_cast<char>(Convert(static_cast<unsigned char>(c)));
  return list(std::move(a[0].list));
}
int ascii_upper(int c) { return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c; }
int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }
// The key pattern is compiled once per call (once per role when literal),
// not once per label.
Result<Value> fn_labels_matching(Args& a, const Node& node, const ExpressionInput& in) {
  std::vector<std::string> out;
  MID_TRY(re, call_regex(node, glob_regex_program(a[0].string)));
  if (in.labels == nullptr) return list(std::move(out));
  for (const auto& [key, value] : *in.labels)
    if (RE2::PartialMatch(key, *re)) out.push_back(value);
  return list(std::move(out));
}
Result<Value> fn_set(Args& a, const Node&, const ExpressionInput&) {
  std::vector<std::string> out;
  for (auto& v : a) out.push_back(std::move(v.string));
  return list(std::move(out));
}
Result<Value> fn_union(Args& a, const Node&, const ExpressionInput&) {
  std::vector<std::string> out;
  for (auto& v : a)
    for (auto& item : v.list)
      if (!has(out, item)) out.push_back(std::move(item));
  return list(std::move(out));
}
Result<Value> fn_has_prefix(Args& a, const Node&, const ExpressionInput&) {
  return boolean(a[0].string.starts_with(a[1].string));
}

constexpr auto kTemplate = ExpressionLanguage::trait_template;
constexpr auto kLabels = ExpressionLanguage::label_expression;

const std::vector<Function>& functions() {
  static const std::vector<Function> table = {
      {"email.local", kTemplate, {Type::list}, {}, Type::list, fn_email_local},
      {"regexp.replace", kTemplate, {Type::list, Type::string, Type::string}, {}, Type::list, fn_regexp_replace},
      {"email.local", kLabels, {Type::list}, {}, Type::list, fn_email_local},
      {"regexp.replace", kLabels, {Type::list, Type::string, Type::string}, {}, Type::list, fn_regexp_replace},
      {"regexp.match", kLabels, {Type::list, Type::string}, {}, Type::boolean, fn_regexp_match},
      {"contains", kLabels, {Type::list, Type::string}, {}, Type::boolean, fn_contains},
      {"contains_any", kLabels, {Type::list, Type::list}, {}, Type::boolean, fn_contains_any},
      {"contains_all", kLabels, {Type::list, Type::list}, {}, Type::boolean, fn_contains_all},
      {"labels_matching", kLabels, {Type::string}, {}, Type::list, fn_labels_matching},
      {"strings.upper", kLabels, {Type::list}, {}, Type::list, fn_case<ascii_upper>},
      {"strings.lower", kLabels, {Type::list}, {}, Type::list, fn_case<ascii_lower>},
      {"set", kLabels, {}, Type::string, Type::list, fn_set},
      {"union", kLabels, {}, Type::list, Type::list, fn_union},
      {"hasPrefix", kLabels, {Type::string, Type::string}, {}, Type::boolean, fn_has_prefix},
  };
  return table;
}

// Which of a function's parameters is a regexp, compiled once when literal.
std::optional<std::size_t> regex_param(std::string_view function) {
  if (function == "regexp.match" || function == "regexp.replace") return 1;
  if (function == "labels_matching") return 0;
  return std::nullopt;
}

// Whether a function's regexp is a glob or '^regex$' (Teleport's
// utils.MatchString) rather than a plain regexp.
bool glob_regex(std::string_view function) { return function == "regexp.match" || function == "labels_matching"; }

// ---------------------------------------------------------------------------
// Type checking: Syntax -> Node.

std::string ordinal(std::size_t i) {
  static constexpr std::string_view kWords[] = {"first", "second", "third"};
  return i < 3 ? std::string(kWords[i]) : "argument " + std::to_string(i + 1);
}

std::unique_ptr<Node> leaf(Node::Op op, Type type) {
  auto node = std::make_unique<Node>();
  node->op = op;
  node->type = type;
  return node;
}

// Converts `node` to `want`, as typical's coerce: a string stands for a
// one-element list.
Result<std::unique_ptr<Node>> coerce(std::unique_ptr<Node> node, Type want) {
  if (node->type == want) return node;
  if (want == Type::list && node->type == Type::string) {
    auto wrap = leaf(Node::Op::wrap, Type::list);
    wrap->args.push_back(std::move(node));
    return wrap;
  }
  return expr_error("expected type " + type_name(want) + ", got value of type " + type_name(node->type));
}

class Checker {
 public:
  explicit Checker(ExpressionLanguage language) : language_(language) {}

  Result<std::unique_ptr<Node>> check(const Syntax& s) {
    switch (s.kind) {
      case Syntax::Kind::string: {
        auto node = leaf(Node::Op::literal, Type::string);
        node->literal.string = s.text;
        return node;
      }
      case Syntax::Kind::integer: {
        auto node = leaf(Node::Op::literal, Type::integer);
        node->literal.integer = s.number;
        return node;
      }
      case Syntax::Kind::path: return path(s.text);
      case Syntax::Kind::index: {
        MID_TRY(base, check(*s.args[0]));
        MID_TRY(key, check(*s.args[1]));
        return lookup(std::move(base), std::move(key));
      }
      case Syntax::Kind::call: return call(s);
      case Syntax::Kind::not_: {
        MID_TRY(operand, check(*s.args[0]));
        auto typed = coerce(std::move(operand), Type::boolean);
        if (!typed.ok()) return with_context(typed.error(), "parsing target of (!) operator");
        auto node = leaf(Node::Op::not_, Type::boolean);
        node->args.push_back(std::move(*typed));
        return node;
      }
      case Syntax::Kind::and_:
      case Syntax::Kind::or_: return logical(s);
      case Syntax::Kind::eq:
      case Syntax::Kind::ne: return comparison(s);
    }
    return expr_error("unknown expression");
  }

 private:
  bool templates() const { return language_ == ExpressionLanguage::trait_template; }

  // The variables of the language, by full name.
  std::optional<std::unique_ptr<Node>> variable(const std::string& name) const {
    std::optional<Type> type;
    if (templates()) {
      if (name == "internal" || name == "external") type = Type::traits;
    } else if (name == "labels") {
      type = Type::labels;
    } else if (name == "user.spec.traits") {
      type = Type::traits;
    } else if (name == "user.metadata.name") {
      type = Type::string;
    }
    if (!type) return std::nullopt;
    auto node = leaf(Node::Op::variable, *type);
    node->name = name;
    return node;
  }

  // A dotted name: the longest variable it starts with, and map.key as
  // map["key"] (typical's getIdentifier).
  Result<std::unique_ptr<Node>> path(const std::string& dotted) {
    std::vector<std::string> parts;
    for (std::size_t start = 0;;) {
      std::size_t dot = dotted.find('.', start);
      parts.push_back(dotted.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    std::string joined;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      joined += (i ? "." : "") + parts[i];
      auto var = variable(joined);
      if (!var) continue;
      if (i + 1 == parts.size()) return std::move(*var);
      if (i + 2 == parts.size() && is_map((*var)->type)) return lookup(std::move(*var), key_literal(parts.back()));
    }
    // Old Teleport versions read "<anything>.trait" as "external.trait" in
    // templates, and Teleport keeps reading it so.
    if (templates() && parts.size() < 3) {
      auto external = *variable("external");
      if (parts.size() == 1) return external;
      return lookup(std::move(external), key_literal(parts[1]));
    }
    return expr_error("unknown identifier: " + in_quotes(dotted));
  }

  static bool is_map(Type t) { return t == Type::labels || t == Type::traits; }

  static std::unique_ptr<Node> key_literal(const std::string& key) {
    auto node = leaf(Node::Op::literal, Type::string);
    node->literal.string = key;
    return node;
  }

  Result<std::unique_ptr<Node>> lookup(std::unique_ptr<Node> base, std::unique_ptr<Node> key) {
    if (!is_map(base->type))
      return expr_error("cannot take index of unexpected type " + type_name(base->type));
    auto typed_key = coerce(std::move(key), Type::string);
    if (!typed_key.ok()) return with_context(typed_key.error(), "parsing key of index expression");
    auto node = leaf(Node::Op::lookup, base->type == Type::labels ? Type::string : Type::list);
    node->args.push_back(std::move(base));
    node->args.push_back(std::move(*typed_key));
    return node;
  }

  Result<std::unique_ptr<Node>> call(const Syntax& s) {
    if (!templates() && s.text == "ifelse") return ifelse(s);
    const Function* f = nullptr;
    for (const auto& candidate : functions())
      if (candidate.language == language_ && candidate.name == s.text) f = &candidate;
    if (f == nullptr) return expr_error("unsupported function: " + s.text);
    std::size_t n = s.args.size();
    if (n < f->params.size() || (!f->variadic && n > f->params.size()) || (f->variadic && n == 0))
      return expr_error("function (" + s.text + ") accepts " +
                        (f->variadic ? "1 or more" : std::to_string(f->params.size())) +
                        " arguments, given " + std::to_string(n));
    auto node = leaf(Node::Op::call, f->result);
    node->name = s.text;
    node->function = f;
    for (std::size_t i = 0; i < n; ++i) {
      MID_TRY(arg, check(*s.args[i]));
      Type want = i < f->params.size() ? f->params[i] : *f->variadic;
      auto typed = coerce(std::move(arg), want);
      if (!typed.ok())
        return with_context(typed.error(), "parsing " + ordinal(i) + " argument to (" + s.text + ")");
      node->args.push_back(std::move(*typed));
    }
    if (auto at = regex_param(s.text); at && node->args[*at]->op == Node::Op::literal) {
      const std::string& text = node->args[*at]->literal.string;
      auto re = compile_regex(glob_regex(s.text) ? glob_regex_program(text) : text);
      if (re.ok()) {
        node->regex = std::move(*re);
      } else {
        node->regex_error = re.error().message;
      }
    }
    return node;
  }

  // ifelse(cond, a, b): both branches of one type.
  Result<std::unique_ptr<Node>> ifelse(const Syntax& s) {
    if (s.args.size() != 3)
      return expr_error("function (ifelse) accepts 3 arguments, given " + std::to_string(s.args.size()));
    MID_TRY(cond, check(*s.args[0]));
    auto typed = coerce(std::move(cond), Type::boolean);
    if (!typed.ok()) return with_context(typed.error(), "parsing first argument to (ifelse)");
    MID_TRY(a, check(*s.args[1]));
    MID_TRY(b, check(*s.args[2]));
    Type type = a->type == Type::list || b->type == Type::list ? Type::list : a->type;
    auto ta = coerce(std::move(a), type);
    if (!ta.ok()) return with_context(ta.error(), "parsing second argument to (ifelse)");
    auto tb = coerce(std::move(b), type);
    if (!tb.ok()) return with_context(tb.error(), "parsing third argument to (ifelse)");
    auto node = leaf(Node::Op::ifelse, type);
    node->args.push_back(std::move(*typed));
    node->args.push_back(std::move(*ta));
    node->args.push_back(std::move(*tb));
    return node;
  }

  Result<std::unique_ptr<Node>> logical(const Syntax& s) {
    bool is_and = s.kind == Syntax::Kind::and_;
    std::string op = is_and ? "&&" : "||";
    auto node = leaf(is_and ? Node::Op::and_ : Node::Op::or_, Type::boolean);
    for (std::size_t i = 0; i < 2; ++i) {
      MID_TRY(operand, check(*s.args[i]));
      auto typed = coerce(std::move(operand), Type::boolean);
      if (!typed.ok())
        return with_context(typed.error(), std::string("parsing ") + (i ? "rhs" : "lhs") + " of (" + op + ") operator");
      node->args.push_back(std::move(*typed));
    }
    return node;
  }

  // == and != compare strings or integers, as typical's eq and neq.
  Result<std::unique_ptr<Node>> comparison(const Syntax& s) {
    bool eq = s.kind == Syntax::Kind::eq;
    std::string op = eq ? "==" : "!=";
    MID_TRY(lhs, check(*s.args[0]));
    MID_TRY(rhs, check(*s.args[1]));
    Type type = lhs->type;
    if (type != Type::string && type != Type::integer)
      return expr_error("operator (" + op + ") not supported for type: " + type_name(type));
    auto node = leaf(eq ? Node::Op::eq : Node::Op::ne, Type::boolean);
    auto tl = coerce(std::move(lhs), type);
    if (!tl.ok()) return with_context(tl.error(), "parsing lhs of (" + op + ") operator");
    auto tr = coerce(std::move(rhs), type);
    if (!tr.ok()) return with_context(tr.error(), "parsing rhs of (" + op + ") operator");
    node->args.push_back(std::move(*tl));
    node->args.push_back(std::move(*tr));
    return node;
  }

  ExpressionLanguage language_;
};

// ---------------------------------------------------------------------------
// Evaluation.

Result<Value> evaluate(const Node& node, const ExpressionInput& in) {
  switch (node.op) {
    case Node::Op::literal: return node.literal;
    case Node::Op::variable:
      if (node.type == Type::string) {
        Value v;
        v.string = std::string(in.user);
        return v;
      }
      return eval_error(node.name + " is a map and has no value of its own");
    case Node::Op::lookup: {
      MID_TRY(key, evaluate(*node.args[1], in));
      const Node& base = *node.args[0];
      Value v;
      if (base.type == Type::labels) {
        if (in.labels != nullptr)
          if (auto it = in.labels->find(key.string); it != in.labels->end()) v.string = it->second;
        return v;
      }
      // Templates: internal.X only for Teleport's internal trait names, and
      // a missing trait is an error (the template is skipped).
      if (base.name == "internal" &&
          std::find(std::begin(kInternalTraits), std::end(kInternalTraits), key.string) == std::end(kInternalTraits))
        return eval_error("unsupported variable " + in_quotes(key.string));
      const Traits* traits = in.traits;
      auto it = traits != nullptr ? traits->find(key.string) : Traits::const_iterator{};
      if (traits == nullptr || it == traits->end()) {
        if (base.name == "user.spec.traits") return v;
        return eval_error("trait not found: " + base.name + "." + key.string);
      }
      v.list = it->second;
      return v;
    }
    case Node::Op::wrap: {
      MID_TRY(inner, evaluate(*node.args[0], in));
      Value v;
      v.list.push_back(std::move(inner.string));
      return v;
    }
    case Node::Op::call: {
      Args args;
      args.reserve(node.args.size());
      for (const auto& arg : node.args) {
        MID_TRY(value, evaluate(*arg, in));
        args.push_back(std::move(value));
      }
      auto result = node.function->impl(args, node, in);
      if (!result.ok()) return with_context(result.error(), "evaluating function (" + node.name + ")");
      return result;
    }
    case Node::Op::ifelse: {
      MID_TRY(cond, evaluate(*node.args[0], in));
      return evaluate(*node.args[cond.boolean ? 1 : 2], in);
    }
    case Node::Op::not_: {
      MID_TRY(operand, evaluate(*node.args[0], in));
      return boolean(!operand.boolean);
    }
    case Node::Op::and_:
    case Node::Op::or_: {
      bool is_and = node.op == Node::Op::and_;
      MID_TRY(lhs, evaluate(*node.args[0], in));
      if (lhs.boolean != is_and) return lhs;  // short-circuit, as Go
      return evaluate(*node.args[1], in);
    }
    case Node::Op::eq:
    case Node::Op::ne: {
      MID_TRY(lhs, evaluate(*node.args[0], in));
      MID_TRY(rhs, evaluate(*node.args[1], in));
      bool equal = lhs.string == rhs.string && lhs.integer == rhs.integer;
      return boolean(node.op == Node::Op::eq ? equal : !equal);
    }
  }
  return eval_error("unknown expression");
}

std::string glob_regex_program(std::string_view pattern) {
  if (pattern.starts_with('^') && pattern.ends_with('$')) return std::string(pattern);
  std::string out = "^";
  for (std::size_t start = 0;;) {
    std::size_t star = pattern.find('*', start);
    out += RE2::QuoteMeta(pattern.substr(start, star - start));
    if (star == std::string_view::npos) break;
    out += "(.*)";
    start = star + 1;
  }
  return out + "$";
}

}  // namespace

Result<std::string> parse_go_string(std::string_view text, std::size_t& pos) {
  if (pos >= text.size() || (text[pos] != '"' && text[pos] != '`')) return expr_error("expected a string");
  char quote = text[pos++];
  std::string out;
  for (;;) {
    if (pos >= text.size()) return expr_error("unterminated string");
    char c = text[pos++];
    if (c == quote) return out;
    if (quote == '"' && c == '\n') return expr_error("newline in string");
    if (quote == '`' || c != '\\') {
      out += c;
      continue;
    }
    if (pos >= text.size()) return expr_error("unterminated string");
    char e = text[pos++];
    // Pairs of escape letter and the byte it stands for.
    static constexpr std::string_view kEscapes = "a\ab\bf\fn\nr\rt\tv\v\\\\\"\"";
    if (auto at = kEscapes.find(e); at != std::string_view::npos && at % 2 == 0) {
      out += kEscapes[at + 1];
    } else if (e == 'x' || e == 'u' || e == 'U') {
      MID_TRY(cp, escape_digits(text, pos, e == 'x' ? 2 : e == 'u' ? 4 : 8, 16));
      if (e == 'x') {
        out += static_cast<char>(cp);
      } else if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) {
        return expr_error("string escape is not a Unicode code point");
      } else {
        append_utf8(out, cp);
      }
    } else if (e >= '0' && e <= '7') {
      --pos;
      MID_TRY(byte, escape_digits(text, pos, 3, 8));
      if (byte > 0xFF) return expr_error("octal escape above \\377");
      out += static_cast<char>(byte);
    } else {
      return expr_error("unknown escape \\" + std::string(1, e));
    }
  }
}

Result<Expression> Expression::parse(std::string_view text, ExpressionLanguage language) {
  if (text.size() > kMaxExpressionBytes)
    return expr_error("expression longer than " + std::to_string(kMaxExpressionBytes) + " bytes");
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return expr_error("empty expression");
  MID_TRY(syntax, Parser(text).parse());
  Checker checker(language);
  MID_TRY(node, checker.check(*syntax));
  Type want = language == ExpressionLanguage::label_expression ? Type::boolean : Type::list;
  auto typed = coerce(std::move(node), want);
  if (!typed.ok()) return with_context(typed.error(), "expression evaluated to unexpected type");
  Expression e;
  e.root_ = std::shared_ptr<const Node>(std::move(*typed));
  return e;
}

Result<bool> Expression::matches(const ExpressionInput& input) const {
  MID_TRY(value, evaluate(*root_, input));
  return value.boolean;
}

Result<std::vector<std::string>> Expression::values(const ExpressionInput& input) const {
  MID_TRY(value, evaluate(*root_, input));
  return std::move(value.list);
}

}  // namespace machineid
