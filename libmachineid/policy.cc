// Teleport role and lock resources as `tctl get` prints them, their trait
// templates, node label selectors and lock targets.
#include "machineid/policy.h"

#include <re2/re2.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <limits>
#include <sstream>

#include "machineid/config.h"
#include "machineid/io.h"

namespace machineid {
namespace {

// How deeply template functions may nest, as in
// email.local(regexp.replace(external.x, "...", "...")).
constexpr int kMaxTemplateDepth = 8;
// Teleport's IsValidUnixUser bound.
constexpr std::size_t kMaxLoginBytes = 32;

Error config_error(std::string what) { return make_error(Errc::config, std::move(what)); }

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

bool is_template(std::string_view text) {
  return text.find("{{") != std::string_view::npos || text.find("}}") != std::string_view::npos;
}

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

RE2::Options regex_options() {
  RE2::Options options;
  options.set_log_errors(false);  // errors are returned, not printed
  return options;
}

// ---------------------------------------------------------------------------
// Trait templates: "prefix{{expression}}suffix" as Teleport's parse package.

struct Expr {
  enum class Op { trait, email_local, regexp_replace };
  Op op = Op::trait;
  std::string trait;           // Op::trait: internal.X and external.X both read traits[X]
  std::unique_ptr<Expr> arg;   // the functions' input
  std::unique_ptr<RE2> regex;  // Op::regexp_replace
  std::string rewrite;         // Op::regexp_replace, in RE2's "\1" form
};

// A literal has no expression and is all prefix.
struct Template {
  std::string prefix;
  std::unique_ptr<Expr> expr;
  std::string suffix;
};

// Translates a Go replacement ("$1", "$name", "$$") into an RE2 rewrite
// ("\1", "$"). Go's "${1}" cannot occur: Teleport allows no braces inside
// "{{...}}". As Go's Regexp.Expand, the name is the longest run of word
// characters, a group that does not exist expands to nothing and a "$" not
// followed by a name stays literal.
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
    std::size_t next = i + 1;  // just past the reference
    while (next < repl.size() && is_name_char(repl[next])) ++next;
    std::string_view name = repl.substr(i + 1, next - i - 1);
    if (name.empty()) {
      out += '$';
      continue;
    }
    int group = std::numeric_limits<int>::max();
    if (std::all_of(name.begin(), name.end(), is_digit)) {
      std::from_chars(name.data(), name.data() + name.size(), group);  // too large stays max
    } else if (auto it = re.NamedCapturingGroups().find(std::string(name));
               it != re.NamedCapturingGroups().end()) {
      group = it->second;
    }
    if (group <= re.NumberOfCapturingGroups()) {
      if (group > 9)
        return config_error("regexp.replace: RE2 cannot refer to group $" + std::string(name));
      out += '\\';
      out += static_cast<char>('0' + group);
    }
    i = next - 1;
  }
  return out;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Parses the expression between the braces: a variable (internal.X,
// external.X, external["X"]) or a call of email.local / regexp.replace.
// Teleport parses it as a Go expression, so strings are Go literals.
class ExprParser {
 public:
  explicit ExprParser(std::string_view text) : text_(text) {}

  Result<std::unique_ptr<Expr>> parse() {
    MID_TRY(expr, expression(0));
    skip_blanks();
    if (pos_ != text_.size()) return error("unexpected " + in_quotes(text_.substr(pos_)));
    return expr;
  }

 private:
  // A function argument: a string literal or an expression.
  struct Arg {
    std::unique_ptr<Expr> expr;
    std::optional<std::string> literal;
  };

  Error error(std::string what) const {
    return config_error("template expression " + in_quotes(text_) + ": " + std::move(what));
  }

  void skip_blanks() {
    while (pos_ < text_.size() && is_blank(text_[pos_])) ++pos_;
  }
  bool eat(char c) {
    skip_blanks();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  std::string_view identifier() {
    skip_blanks();
    std::size_t start = pos_;
    if (pos_ < text_.size() && !is_digit(text_[pos_]))
      while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  Result<std::unique_ptr<Expr>> expression(int depth) {
    if (depth > kMaxTemplateDepth) return error("functions nested too deeply");
    std::string_view ns = identifier();
    if (ns.empty()) return error("expected a name at " + in_quotes(text_.substr(pos_)));
    if (eat('[')) {
      skip_blanks();
      MID_TRY(name, string_literal());
      if (!eat(']')) return error("expected ']'");
      return variable(ns, std::move(name));
    }
    if (!eat('.')) return error("expected '.' after " + in_quotes(ns));
    std::string_view name = identifier();
    if (name.empty()) return error("expected a name after " + in_quotes(std::string(ns) + "."));
    if (!eat('(')) return variable(ns, std::string(name));
    std::vector<Arg> args;
    if (!eat(')')) {
      do {
        MID_TRY(arg, argument(depth));
        args.push_back(std::move(arg));
      } while (eat(','));
      if (!eat(')')) return error("expected ',' or ')'");
    }
    return call(std::string(ns) + "." + std::string(name), std::move(args));
  }

  Result<Arg> argument(int depth) {
    skip_blanks();
    Arg arg;
    if (pos_ < text_.size() && (text_[pos_] == '"' || text_[pos_] == '`')) {
      MID_TRY(literal, string_literal());
      arg.literal = std::move(literal);
    } else {
      MID_TRY(expr, expression(depth + 1));
      arg.expr = std::move(expr);
    }
    return arg;
  }

  Result<std::unique_ptr<Expr>> variable(std::string_view ns, std::string name) {
    if (ns != "internal" && ns != "external")
      return error("unknown namespace " + in_quotes(ns) + " (internal or external)");
    if (name.empty()) return error("empty trait name");
    auto expr = std::make_unique<Expr>();
    expr->trait = std::move(name);
    return expr;
  }

  Result<std::unique_ptr<Expr>> call(const std::string& function, std::vector<Arg> args) {
    auto expr = std::make_unique<Expr>();
    if (function == "email.local") {
      if (args.size() != 1 || !args[0].expr) return error("email.local takes one trait expression");
      expr->op = Expr::Op::email_local;
      expr->arg = std::move(args[0].expr);
      return expr;
    }
    if (function == "regexp.replace") {
      if (args.size() != 3 || !args[0].expr || !args[1].literal || !args[2].literal)
        return error(
            "regexp.replace takes a trait expression, a regexp string and a replacement string");
      auto regex = std::make_unique<RE2>(*args[1].literal, regex_options());
      if (!regex->ok())
        return error("bad regexp " + in_quotes(*args[1].literal) + ": " + regex->error());
      MID_TRY(rewrite, rewrite_from_go(*args[2].literal, *regex));
      expr->op = Expr::Op::regexp_replace;
      expr->arg = std::move(args[0].expr);
      expr->regex = std::move(regex);
      expr->rewrite = std::move(rewrite);
      return expr;
    }
    if (function == "regexp.match" || function == "regexp.not_match")
      return error(function + " is a matcher and cannot give a value");
    return error("unsupported function " + in_quotes(function) + " (email.local, regexp.replace)");
  }

  // A Go string literal: "..." with Go's escapes, or `raw`.
  Result<std::string> string_literal() {
    if (pos_ >= text_.size() || (text_[pos_] != '"' && text_[pos_] != '`'))
      return error("expected a string");
    char quote = text_[pos_++];
    std::string out;
    for (;;) {
      if (pos_ >= text_.size()) return error("unterminated string");
      char c = text_[pos_++];
      if (c == quote) return out;
      if (quote == '"' && c == '\n') return error("newline in string");
      if (quote == '`' || c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) return error("unterminated string");
      char e = text_[pos_++];
      // Pairs of escape letter and the byte it stands for.
      static constexpr std::string_view kEscapes = "a\ab\bf\fn\nr\rt\tv\v\\\\\"\"";
      if (auto at = kEscapes.find(e); at != std::string_view::npos && at % 2 == 0) {
        out += kEscapes[at + 1];
      } else if (e == 'x' || e == 'u' || e == 'U') {
        MID_TRY(cp, digits(e == 'x' ? 2 : e == 'u' ? 4 : 8, 16));
        if (e == 'x') {
          out += static_cast<char>(cp);
        } else if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) {
          return error("escape is not a Unicode code point");
        } else {
          append_utf8(out, cp);
        }
      } else if (e >= '0' && e <= '7') {
        --pos_;
        MID_TRY(byte, digits(3, 8));
        if (byte > 0xFF) return error("octal escape above \\377");
        out += static_cast<char>(byte);
      } else {
        return error("unknown escape \\" + std::string(1, e));
      }
    }
  }

  Result<std::uint32_t> digits(std::size_t count, std::uint32_t base) {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < count; ++i, ++pos_) {
      if (pos_ >= text_.size()) return error("short escape");
      char c = text_[pos_];
      std::uint32_t d = is_digit(c)              ? static_cast<std::uint32_t>(c - '0')
                        : (c >= 'a' && c <= 'f') ? static_cast<std::uint32_t>(c - 'a' + 10)
                        : (c >= 'A' && c <= 'F') ? static_cast<std::uint32_t>(c - 'A' + 10)
                                                 : base;
      if (d >= base) return error("bad digit in escape");
      value = value * base + d;
    }
    return value;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// Teleport accepts one "{{...}}" with no other brace in the value; the
// prefix loses its leading and the suffix its trailing blanks.
Result<Template> parse_template(std::string_view text) {
  Template t;
  if (!is_template(text)) {
    t.prefix = std::string(text);
    return t;
  }
  constexpr auto npos = std::string_view::npos;
  auto has_brace = [](std::string_view s) { return s.find_first_of("{}") != npos; };
  std::size_t open = text.find("{{");
  std::size_t close = open == npos ? npos : text.find("}}", open + 2);
  if (close == npos || has_brace(text.substr(0, open)) ||
      has_brace(text.substr(open + 2, close - open - 2)) || has_brace(text.substr(close + 2)))
    return config_error(in_quotes(text) +
                        " uses template braces but is not of the form prefix{{expression}}suffix");
  ExprParser parser(text.substr(open + 2, close - open - 2));
  MID_TRY(expr, parser.parse());
  std::string_view prefix = text.substr(0, open), suffix = text.substr(close + 2);
  while (!prefix.empty() && is_blank(prefix.front())) prefix.remove_prefix(1);
  while (!suffix.empty() && is_blank(suffix.back())) suffix.remove_suffix(1);
  t.prefix = std::string(prefix);
  t.expr = std::move(expr);
  t.suffix = std::string(suffix);
  return t;
}

// The local part of an e-mail address ("alice" of "alice@example.com" or of
// "Alice <alice@example.com>"), or nullopt when the value is not one.
std::optional<std::string> email_local(std::string_view value) {
  if (std::size_t open = value.rfind('<'); open != std::string_view::npos && value.ends_with('>'))
    value = value.substr(open + 1, value.size() - open - 2);
  std::size_t at = value.find('@');
  if (at == 0 || at == std::string_view::npos || at + 1 == value.size() ||
      value.find('@', at + 1) != std::string_view::npos ||
      value.find_first_of(" \t\r\n<>") != std::string_view::npos)
    return std::nullopt;
  return std::string(value.substr(0, at));
}

// The values of an expression, or nullopt when a function fails on one of
// them: Teleport then drops the whole template, not just that value.
std::optional<std::vector<std::string>> evaluate(const Expr& expr, const Traits& traits) {
  if (expr.op == Expr::Op::trait) {
    auto it = traits.find(expr.trait);
    return it == traits.end() ? std::vector<std::string>{} : it->second;
  }
  auto values = evaluate(*expr.arg, traits);
  if (!values) return std::nullopt;
  for (auto& value : *values) {
    if (expr.op == Expr::Op::email_local) {
      auto local = email_local(value);
      if (!local) return std::nullopt;
      value = std::move(*local);
    } else if (!RE2::PartialMatch(value, *expr.regex)) {
      value.clear();  // Teleport gives "" for a value the regexp does not match; it is dropped
    } else {
      RE2::GlobalReplace(&value, *expr.regex, expr.rewrite);
    }
  }
  return values;
}

// Every non-empty value of a template; nothing when it does not parse.
std::vector<std::string> interpolate(std::string_view text, const Traits& traits) {
  std::vector<std::string> out;
  auto parsed = parse_template(text);
  if (!parsed.ok()) return out;
  const Template& t = *parsed;
  if (!t.expr) {
    if (!t.prefix.empty()) out.push_back(t.prefix);
    return out;
  }
  auto values = evaluate(*t.expr, traits);
  if (!values) return out;
  for (const auto& value : *values)
    if (!value.empty()) out.push_back(t.prefix + value + t.suffix);
  return out;
}

// Teleport's IsValidUnixUser, checking ASCII blanks and controls.
bool valid_login(std::string_view login) {
  if (login.empty() || login.size() > kMaxLoginBytes || login.front() == '-') return false;
  return std::none_of(login.begin(), login.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return c == ':' || c == '/' || u <= 0x20 || u == 0x7F;
  });
}

// ---------------------------------------------------------------------------
// Label patterns.

// Teleport's glob: every character literal but '*', which matches any run.
std::string glob_to_regex(std::string_view glob) {
  std::string out = "^";
  for (std::size_t start = 0;;) {
    std::size_t star = glob.find('*', start);
    out += RE2::QuoteMeta(glob.substr(start, star - start));  // to the end when there is no star
    if (star == std::string_view::npos) break;
    out += "(.*)";
    start = star + 1;
  }
  return out + "$";
}

// Compiles a value without templates: '*' and plain literals need no
// program; '^...$' is a regexp searched in the value with its own anchors,
// as Teleport does (so '^a|b$' matches "ax"); other values with '*' are globs.
Result<LabelPattern> make_pattern(std::string text) {
  LabelPattern pattern{std::move(text), nullptr};
  std::string program;
  if (pattern.text == "*") return pattern;
  if (pattern.text.starts_with('^') && pattern.text.ends_with('$')) {
    program = pattern.text;
  } else if (pattern.text.find('*') != std::string::npos) {
    program = glob_to_regex(pattern.text);
  } else {
    return pattern;
  }
  auto regex = std::make_shared<const RE2>(program, regex_options());
  if (!regex->ok())
    return config_error("bad regexp " + in_quotes(pattern.text) + ": " + regex->error());
  pattern.regex = std::move(regex);
  return pattern;
}

bool pattern_matches(const LabelPattern& pattern, std::string_view value) {
  if (pattern.text == "*") return true;
  if (pattern.regex) return RE2::PartialMatch(value, *pattern.regex);
  return pattern.text == value;
}

// Every key present on the node with a value matching one of its patterns.
template <class Entries>
bool entries_match(const Entries& entries, const NodeLabels& labels) {
  for (const auto& [key, patterns] : entries) {
    auto it = labels.find(key);
    if (it == labels.end()) return false;
    if (std::none_of(patterns.begin(), patterns.end(),
                     [&](const LabelPattern& p) { return pattern_matches(p, it->second); }))
      return false;
  }
  return true;
}

bool selector_has_template(const LabelSelector& selector) {
  for (const auto& [key, patterns] : selector) {
    if (is_template(key)) return true;
    for (const auto& p : patterns)
      if (is_template(p.text)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Timestamps.

// Unix seconds of an RFC 3339 time ("2026-01-02T15:04:05Z", with optional
// fraction and numeric offset). A fraction rounds up, so a lock is in force
// through the whole second in which it ends.
Result<std::int64_t> parse_rfc3339(std::string_view s) {
  std::size_t pos = 0;
  auto number = [&](std::size_t count, int& out) {
    out = 0;
    for (std::size_t i = 0; i < count; ++i, ++pos) {
      if (pos >= s.size() || !is_digit(s[pos])) return false;
      out = out * 10 + (s[pos] - '0');
    }
    return true;
  };
  auto literal = [&](std::string_view any_of) {
    if (pos >= s.size() || any_of.find(s[pos]) == std::string_view::npos) return false;
    ++pos;
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  bool ok = number(4, year) && literal("-") && number(2, month) && literal("-") && number(2, day) &&
            literal("Tt") && number(2, hour) && literal(":") && number(2, minute) && literal(":") &&
            number(2, second);
  bool fraction = false;
  if (ok && literal(".")) {
    std::size_t start = pos;
    for (; pos < s.size() && is_digit(s[pos]); ++pos) fraction = fraction || s[pos] != '0';
    ok = pos > start;
  }
  int offset = 0;
  if (ok && !literal("Zz")) {
    int sign = pos < s.size() && s[pos] == '-' ? -1 : 1;
    int offset_hours = 0, offset_minutes = 0;
    ok = literal("+-") && number(2, offset_hours) && literal(":") && number(2, offset_minutes) &&
         offset_hours < 24 && offset_minutes < 60;
    offset = sign * (offset_hours * 3600 + offset_minutes * 60);
  }
  std::chrono::year_month_day date{std::chrono::year{year},
                                   std::chrono::month{static_cast<unsigned>(month)},
                                   std::chrono::day{static_cast<unsigned>(day)}};
  if (!ok || pos != s.size() || !date.ok() || hour > 23 || minute > 59 || second > 59)
    return config_error(in_quotes(s) + " is not an RFC 3339 time (like 2026-01-02T15:04:05Z)");
  std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  return days * 86400 + hour * 3600 + minute * 60 + second - offset + (fraction ? 1 : 0);
}

// ---------------------------------------------------------------------------
// YAML resources.

bool present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

// parent[key], or an absent node when parent is not a mapping. Only const
// access: yaml-cpp's non-const operator[] would insert the key.
YAML::Node child(const YAML::Node& parent, const char* key) {
  return present(parent) && parent.IsMap() ? parent[key] : YAML::Node(YAML::NodeType::Undefined);
}

// Counts documents without building them, so a file of many tiny documents
// is refused before it is loaded.
class DocumentCounter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Whether a string list may hold trait templates: logins expand them; in
// host_groups and host_sudoers (used literally) they are dropped with a notice.
enum class Templates { expand, unsupported };

// Reads the documents of one file into `staged`; every error names the
// file, the line and the field.
class ResourceReader {
 public:
  ResourceReader(std::string_view source, const Policy& existing, Policy& staged)
      : source_(source), existing_(existing), staged_(staged) {}

  Status count_documents(const std::string& text) const {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentCounter counter;
    for (std::size_t n = 1; parser.HandleNextDocument(counter); ++n)
      if (n > kMaxResources)
        return make_error(Errc::limit, std::string(source_) + ": more than " +
                                           std::to_string(kMaxResources) + " documents");
    return {};
  }

  Error malformed(const YAML::Exception& e) const {
    std::string where = std::string(source_);
    if (!e.mark.is_null()) where += ":" + std::to_string(e.mark.line + 1);
    return make_error(Errc::malformed, where + ": malformed YAML: " + e.msg);
  }

  Status document(const YAML::Node& doc) {
    if (!present(doc)) return {};  // an empty document, as after a trailing "---"
    if (!doc.IsMap())
      return error(doc, "document", "must be a mapping of kind, version, metadata and spec");
    YAML::Node kind_node = child(doc, "kind");
    MID_TRY(kind, scalar(kind_node, "kind"));
    if (kind.empty()) return error(doc, "kind", "missing");
    if (kind != "role" && kind != "lock") {
      staged_.notices.push_back(where(doc) + ": skipping kind " + in_quotes(kind));
      return {};
    }
    YAML::Node metadata = child(doc, "metadata");
    if (present(metadata) && !metadata.IsMap())
      return error(metadata, "metadata", "must be a mapping");
    MID_TRY(name, scalar(child(metadata, "name"), "metadata.name"));
    if (name.empty()) return error(present(metadata) ? metadata : doc, "metadata.name", "missing");
    return kind == "role" ? role(doc, std::move(name)) : lock(doc, std::move(name));
  }

 private:
  std::string where(const YAML::Node& at) const {
    const YAML::Mark mark = at.Mark();
    return std::string(source_) + (mark.is_null() ? "" : ":" + std::to_string(mark.line + 1));
  }
  Error error(const YAML::Node& at, std::string_view field, std::string_view what) const {
    return config_error(where(at) + ": " + std::string(field) + ": " + std::string(what));
  }

  // A string: "" when absent or null, an error when not a scalar.
  Result<std::string> scalar(const YAML::Node& node, std::string_view field) const {
    if (!present(node)) return std::string();
    if (!node.IsScalar()) return error(node, field, "must be a string");
    return node.Scalar();
  }

  // A mapping: absent when absent or null, an error when not a mapping.
  Result<YAML::Node> mapping(const YAML::Node& parent, const char* key,
                             std::string_view field) const {
    YAML::Node node = child(parent, key);
    if (present(node) && !node.IsMap()) return error(node, field, "must be a mapping");
    return node;
  }

  Result<std::vector<std::string>> strings(const YAML::Node& node, const std::string& field,
                                           Templates templates) {
    std::vector<std::string> out;
    if (!present(node)) return out;
    if (!node.IsSequence()) return error(node, field, "must be a list of strings");
    for (const auto& item : node) {
      if (!item.IsScalar()) return error(item, field, "must be a list of strings");
      const std::string& text = item.Scalar();
      if (is_template(text)) {
        if (templates == Templates::unsupported) {
          staged_.notices.push_back(where(item) + ": " + field + ": ignoring " + in_quotes(text) +
                                    ": trait templates are not supported here");
          continue;
        }
        if (auto valid = validate_template(text); !valid.ok())
          return error(item, field, valid.error().message);
      }
      out.push_back(text);
    }
    return out;
  }

  // node_labels: label name -> a value or a list of values.
  Status labels(const YAML::Node& node, const std::string& field, LabelSelector& out) const {
    if (!present(node)) return {};
    if (!node.IsMap())
      return error(node, field, "must be a mapping of label names to strings or lists of strings");
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) return error(entry.first, field, "label names must be strings");
      const std::string& key = entry.first.Scalar();
      const std::string key_field = field + "." + key;
      if (auto valid = validate_template(key); !valid.ok())
        return error(entry.first, key_field, valid.error().message);
      std::vector<LabelPattern> patterns;
      auto add = [&](const YAML::Node& item) -> Status {
        if (!item.IsScalar())
          return error(item, key_field, "must be a string or a list of strings");
        const std::string& text = item.Scalar();
        if (is_template(text)) {
          if (auto valid = validate_template(text); !valid.ok())
            return error(item, key_field, valid.error().message);
          patterns.push_back(LabelPattern{text, nullptr});  // compiled once expanded, at match time
          return {};
        }
        auto pattern = make_pattern(text);
        if (!pattern.ok()) return error(item, key_field, pattern.error().message);
        patterns.push_back(std::move(*pattern));
        return {};
      };
      if (entry.second.IsSequence()) {
        for (const auto& item : entry.second) MID_CHECK(add(item));
      } else {
        MID_CHECK(add(entry.second));
      }
      out[key] = std::move(patterns);
    }
    return {};
  }

  Status conditions(const YAML::Node& node, const std::string& field, RoleConditions& out) {
    MID_TRY(logins, strings(child(node, "logins"), field + ".logins", Templates::expand));
    MID_TRY(groups,
            strings(child(node, "host_groups"), field + ".host_groups", Templates::unsupported));
    MID_TRY(sudoers,
            strings(child(node, "host_sudoers"), field + ".host_sudoers", Templates::unsupported));
    out.logins = std::move(logins);
    out.host_groups = std::move(groups);
    out.host_sudoers = std::move(sudoers);
    return labels(child(node, "node_labels"), field + ".node_labels", out.node_labels);
  }

  Status options(const YAML::Node& node, Role& role) const {
    YAML::Node mode_node = child(node, "create_host_user_mode");
    MID_TRY(mode, scalar(mode_node, "spec.options.create_host_user_mode"));
    if (mode == "keep" || mode == "insecure-drop") {
      role.create_host_user_mode = mode;
    } else if (mode == "drop") {
      role.create_host_user_mode = "insecure-drop";  // Teleport reads its deprecated "drop" so
    } else if (!mode.empty() && mode != "off" && mode != "false") {  // Teleport: false means off
      return error(mode_node, "spec.options.create_host_user_mode",
                   "must be keep, insecure-drop or off, not " + in_quotes(mode));
    }
    YAML::Node ttl_node = child(node, "max_session_ttl");
    MID_TRY(ttl, scalar(ttl_node, "spec.options.max_session_ttl"));
    if (ttl.empty()) return {};
    auto seconds = parse_duration(ttl);
    if (!seconds.ok())
      return error(ttl_node, "spec.options.max_session_ttl", seconds.error().message);
    // Zero is Teleport's "unset", which it replaces by its default.
    if (seconds->count() > 0) role.max_session_ttl = *seconds;
    return {};
  }

  Status role(const YAML::Node& doc, std::string name) {
    YAML::Node version_node = child(doc, "version");
    MID_TRY(version, scalar(version_node, "version"));
    static constexpr std::string_view kVersions[] = {"v3", "v4", "v5", "v6", "v7", "v8"};
    if (std::find(std::begin(kVersions), std::end(kVersions), version) == std::end(kVersions))
      return error(present(version_node) ? version_node : doc, "version",
                   "unsupported role version " + in_quotes(version) + " (v3 to v8)");
    for (const Policy* p : {&existing_, static_cast<const Policy*>(&staged_)})
      if (auto it = p->roles.find(name); it != p->roles.end())
        return error(child(child(doc, "metadata"), "name"), "metadata.name",
                     "role " + in_quotes(name) + " is already defined at " + it->second.source);
    Role role;
    role.name = name;
    role.source = where(doc);
    MID_TRY(spec, mapping(doc, "spec", "spec"));
    MID_TRY(options_node, mapping(spec, "options", "spec.options"));
    MID_TRY(allow, mapping(spec, "allow", "spec.allow"));
    MID_TRY(deny, mapping(spec, "deny", "spec.deny"));
    MID_CHECK(options(options_node, role));
    MID_CHECK(conditions(allow, "spec.allow", role.allow));
    MID_CHECK(conditions(deny, "spec.deny", role.deny));
    // Teleport gives a v3 role with logins and no node_labels every node.
    if (version == "v3" && !present(child(allow, "node_labels")) && !role.allow.logins.empty())
      role.allow.node_labels["*"] = {LabelPattern{"*", nullptr}};
    staged_.roles.emplace(std::move(name), std::move(role));
    return {};
  }

  Status lock(const YAML::Node& doc, std::string name) {
    Lock lock;
    lock.name = std::move(name);
    lock.source = where(doc);
    MID_TRY(spec, mapping(doc, "spec", "spec"));
    MID_TRY(target, mapping(spec, "target", "spec.target"));
    if (!present(target)) return error(present(spec) ? spec : doc, "spec.target", "missing");
    LockTarget& t = lock.target;
    std::string node;  // the deprecated synonym of server_id
    for (const auto& entry : target) {
      if (!entry.first.IsScalar())
        return error(entry.first, "spec.target", "field names must be strings");
      const std::string& key = entry.first.Scalar();
      if (!present(entry.second) || (entry.second.IsScalar() && entry.second.Scalar().empty()))
        continue;
      std::string* slot = key == "user"              ? &t.user
                          : key == "role"            ? &t.role
                          : key == "login"           ? &t.login
                          : key == "server_id"       ? &t.server_id
                          : key == "node"            ? &node
                          : key == "bot_instance_id" ? &t.bot_instance_id
                                                     : nullptr;
      if (slot == nullptr) {
        t.has_other =
            true;  // mfa_device, device, join_token ...: nothing here to match them against
        continue;
      }
      if (!entry.second.IsScalar())
        return error(entry.second, "spec.target." + key, "must be a string");
      *slot = entry.second.Scalar();
    }
    if (!node.empty()) {
      if (!t.server_id.empty() && t.server_id != node)
        return error(target, "spec.target.node",
                     "differs from server_id, which it is a synonym of");
      t.server_id = node;
    }
    if (t.user.empty() && t.role.empty() && t.login.empty() && t.server_id.empty() &&
        t.bot_instance_id.empty() && !t.has_other)
      return error(target, "spec.target", "names no target");
    YAML::Node expires_node = child(spec, "expires");
    MID_TRY(expires, scalar(expires_node, "spec.expires"));
    if (!expires.empty()) {
      auto when = parse_rfc3339(expires);
      if (!when.ok()) return error(expires_node, "spec.expires", when.error().message);
      lock.expires = *when;
    }
    MID_TRY(message, scalar(child(spec, "message"), "spec.message"));
    lock.message = std::move(message);
    staged_.locks.push_back(std::move(lock));
    return {};
  }

  std::string_view source_;
  const Policy& existing_;
  Policy& staged_;
};

// Loads the directory's *.yaml and *.yml files in name order. Hidden files
// are skipped as the shell's glob skips them; anything else with those
// names that cannot be read as a file is an error, not silently no policy.
Status load_directory(const std::string& dir, Policy& into) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status status = fs::status(dir, ec);
  if (status.type() == fs::file_type::not_found) return {};
  if (ec) return make_error(Errc::io, dir + ": " + ec.message());
  if (!fs::is_directory(status)) return make_error(Errc::io, dir + ": not a directory");
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::string extension = it->path().extension().string();
    if (!name.starts_with('.') && (extension == ".yaml" || extension == ".yml"))
      names.push_back(std::move(name));
  }
  if (ec) return make_error(Errc::io, dir + ": cannot list: " + ec.message());
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    std::string path = (fs::path(dir) / name).string();
    MID_TRY(text, read_file(path, kMaxResourceFileBytes));
    MID_CHECK(parse_resources(text, path, into));
  }
  return {};
}

}  // namespace

Status parse_resources(std::string_view yaml, std::string_view source, Policy& into) {
  if (yaml.size() > kMaxResourceFileBytes)
    return make_error(Errc::limit, std::string(source) + ": larger than " +
                                       std::to_string(kMaxResourceFileBytes) + " bytes");
  // Staged, so that a file with an error adds nothing.
  Policy staged;
  ResourceReader reader(source, into, staged);
  const std::string text(yaml);
  try {
    MID_CHECK(reader.count_documents(text));
    for (const YAML::Node& doc : YAML::LoadAll(text)) MID_CHECK(reader.document(doc));
  } catch (const YAML::Exception& e) {
    return reader.malformed(e);
  }
  into.roles.merge(staged.roles);
  std::move(staged.locks.begin(), staged.locks.end(), std::back_inserter(into.locks));
  std::move(staged.notices.begin(), staged.notices.end(), std::back_inserter(into.notices));
  return {};
}

Result<Policy> load_policy(const std::string& roles_dir, const std::string& locks_dir) {
  Policy policy;
  MID_CHECK(load_directory(roles_dir, policy));
  // One directory given for both is read once, not found to duplicate itself.
  std::error_code ec;
  if (!std::filesystem::equivalent(roles_dir, locks_dir, ec))
    MID_CHECK(load_directory(locks_dir, policy));
  return policy;
}

std::vector<std::string> expand_template(std::string_view tmpl, const Traits& traits) {
  std::vector<std::string> logins = interpolate(tmpl, traits);
  std::erase_if(logins, [](const std::string& login) { return !valid_login(login); });
  return logins;
}

Status validate_template(std::string_view tmpl) {
  auto parsed = parse_template(tmpl);
  if (!parsed.ok()) return parsed.error();
  return {};
}

bool labels_match(const LabelSelector& selector, const NodeLabels& labels, const Traits& traits) {
  if (selector.empty()) return false;
  // As Teleport, '*': '*' matches every node whatever the other keys say.
  if (auto it = selector.find("*");
      it != selector.end() && it->second.size() == 1 && it->second[0].text == "*")
    return true;
  if (!selector_has_template(selector)) return entries_match(selector, labels);
  // Teleport expands a key to its first value and each value to all of
  // its; a key that expands to nothing matches no node.
  std::vector<std::pair<std::string, std::vector<LabelPattern>>> expanded;
  for (const auto& [key, patterns] : selector) {
    std::vector<std::string> keys = interpolate(key, traits);
    if (keys.empty()) return false;
    std::vector<LabelPattern> values;
    for (const auto& pattern : patterns) {
      if (!is_template(pattern.text)) {
        values.push_back(pattern);
        continue;
      }
      for (auto& value : interpolate(pattern.text, traits))
        if (auto compiled = make_pattern(std::move(value)); compiled.ok())
          values.push_back(std::move(*compiled));
    }
    expanded.emplace_back(std::move(keys.front()), std::move(values));
  }
  return entries_match(expanded, labels);
}

bool lock_applies(const Lock& lock, const LockSubject& subject, std::int64_t now) {
  const LockTarget& t = lock.target;
  if (lock.expires && *lock.expires <= now) return false;
  if (t.has_other) return false;
  if (t.user.empty() && t.role.empty() && t.login.empty() && t.server_id.empty() &&
      t.bot_instance_id.empty())
    return false;  // names nothing; parse_resources refuses such locks
  auto has_role = [&] {
    return subject.roles != nullptr &&
           std::find(subject.roles->begin(), subject.roles->end(), t.role) != subject.roles->end();
  };
  return (t.user.empty() || t.user == subject.user) && (t.role.empty() || has_role()) &&
         (t.login.empty() || t.login == subject.login) &&
         (t.server_id.empty() || t.server_id == subject.server_id) &&
         (t.bot_instance_id.empty() || t.bot_instance_id == subject.bot_instance_id);
}

}  // namespace machineid
