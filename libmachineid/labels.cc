// Node label selectors, as Teleport's MatchLabels and applyLabelsTraits.
#include "machineid/labels.h"

#include <re2/re2.h>

#include <algorithm>
#include <deque>

#include "machineid/template.h"

namespace machineid {
namespace {

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

const LabelPattern& pattern_of(const LabelPattern& p) { return p; }
const LabelPattern& pattern_of(const LabelPattern* p) { return *p; }

// Every key present on the node with a value matching one of its patterns.
template <class Entries>
bool entries_match(const Entries& entries, const NodeLabels& labels) {
  for (const auto& [key, patterns] : entries) {
    auto it = labels.find(key);
    if (it == labels.end()) return false;
    if (std::none_of(patterns.begin(), patterns.end(),
                     [&](const auto& p) { return pattern_matches(pattern_of(p), it->second); }))
      return false;
  }
  return true;
}

bool has_template(const LabelSelector& selector) {
  for (const auto& [key, patterns] : selector) {
    if (is_template(key)) return true;
    for (const auto& p : patterns)
      if (is_template(p.text)) return true;
  }
  return false;
}

bool is_match_all(const auto& selector) {
  auto it = std::find_if(selector.begin(), selector.end(), [](const auto& entry) { return entry.first == "*"; });
  return it != selector.end() && it->second.size() == 1 && pattern_of(it->second[0]).text == "*";
}

}  // namespace

namespace {

RE2::Options regex_options() {
  RE2::Options options;
  options.set_log_errors(false);
  return options;
}

}  // namespace

namespace {

bool is_regex(std::string_view text) { return text.starts_with('^') && text.ends_with('$'); }
bool is_glob(std::string_view text) { return text != "*" && text.find('*') != std::string_view::npos; }

}  // namespace

std::string regex_program(std::string_view text) {
  if (is_regex(text)) return std::string(text);
  if (is_glob(text)) return glob_to_regex(text);
  return {};
}

LazyRegex& LazyRegex::operator=(LazyRegex other) noexcept {
  delete compiled_.exchange(other.compiled_.exchange(nullptr));
  return *this;
}

LazyRegex::~LazyRegex() { delete compiled_.load(); }

const re2::RE2& LazyRegex::get(std::string_view text) const {
  if (const RE2* done = compiled_.load(std::memory_order_acquire)) return *done;
  auto fresh = std::make_unique<const RE2>(regex_program(text), regex_options());
  const RE2* expected = nullptr;
  if (compiled_.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) return *fresh.release();
  return *expected;  // another thread came first
}

Result<LabelPattern> make_pattern(std::string text, bool keep_compiled) {
  std::string program = regex_program(text);
  LabelPattern pattern{std::move(text), {}};
  if (program.empty()) return pattern;
  auto regex = std::make_unique<const RE2>(program, regex_options());
  if (!regex->ok())
    return make_error(Errc::config, "bad regexp '" + pattern.text + "': " + regex->error());
  if (keep_compiled) pattern.regex = LazyRegex(std::move(regex));
  return pattern;
}

bool pattern_matches(const LabelPattern& pattern, std::string_view value) {
  const std::string& text = pattern.text;
  if (text == "*") return true;
  if (is_regex(text) || is_glob(text)) return RE2::PartialMatch(value, pattern.regex.get(text));
  return text == value;
}

bool labels_match(const LabelSelector& selector, const NodeLabels& labels, const Traits& traits) {
  auto matched = match_labels(selector, labels, traits);
  return matched.ok() && *matched;
}

Result<bool> match_labels(const LabelSelector& selector, const NodeLabels& labels, const Traits& traits) {
  if (selector.empty()) return false;
  if (!has_template(selector)) return is_match_all(selector) || entries_match(selector, labels);
  // A key takes its first value, or "" (no node has that label) when it does
  // not expand; a value that does not expand stands for "" — Teleport's
  // applyLabelsTraits. A later key expanding like an earlier one replaces it.
  // The role's own patterns are referred to, not copied, so that their
  // regexps compile once; expanded ones live in `made` until the match.
  std::map<std::string, std::vector<const LabelPattern*>, std::less<>> expanded;
  std::deque<LabelPattern> made;
  for (const auto& [key, patterns] : selector) {
    std::vector<std::string> keys = expand_values(key, traits);
    std::vector<const LabelPattern*> values;
    for (const auto& pattern : patterns) {
      if (!is_template(pattern.text)) {
        values.push_back(&pattern);
        continue;
      }
      std::vector<std::string> texts = expand_values(pattern.text, traits);
      if (texts.empty()) texts.emplace_back();
      for (auto& text : texts) {
        MID_TRY(compiled, make_pattern(std::move(text), /*keep_compiled=*/true));
        values.push_back(&made.emplace_back(std::move(compiled)));
      }
    }
    expanded[keys.empty() ? std::string() : keys.front()] = std::move(values);
  }
  return is_match_all(expanded) || entries_match(expanded, labels);
}

}  // namespace machineid
