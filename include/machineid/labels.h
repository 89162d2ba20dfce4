// Node labels and the role selectors (node_labels) that match them, as
// Teleport's MatchLabels does.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "machineid/identity.h"
#include "machineid/result.h"

namespace re2 {
class RE2;
}

namespace machineid {

using NodeLabels = std::map<std::string, std::string, std::less<>>;

// One value pattern: '*', '^regex$' (an RE2 regexp searched with its own
// anchors, as Teleport does, so '^a|b$' matches "ax"), or a literal in which
// '*' matches any run of characters (Teleport's glob). Templates are kept as
// text and compiled once expanded.
// The regexp program a pattern's text stands for, or "" when it needs none.
std::string regex_program(std::string_view text);

// A pattern's regexp, compiled from its text on its first match by
// whichever thread comes first; a thread that loses the race drops its
// copy. A node may load 10 000 roles of which a certificate names two, and
// an RE2 program costs more than the role around it, so nothing else is
// kept: the program is made again from the text. A copy starts
// uncompiled; a move takes the program along.
class LazyRegex {
 public:
  LazyRegex() = default;
  explicit LazyRegex(std::unique_ptr<const re2::RE2> compiled) : compiled_(compiled.release()) {}
  LazyRegex(const LazyRegex&) {}
  LazyRegex(LazyRegex&& other) noexcept : compiled_(other.compiled_.exchange(nullptr)) {}
  LazyRegex& operator=(LazyRegex other) noexcept;
  ~LazyRegex();
  // The program for `text` (whose regex_program is not empty).
  const re2::RE2& get(std::string_view text) const;
  bool compiled() const { return compiled_.load(std::memory_order_acquire) != nullptr; }

 private:
  mutable std::atomic<const re2::RE2*> compiled_{nullptr};
};

struct LabelPattern {
  std::string text;
  LazyRegex regex;  // used when regex_program(text) is not empty and `text` has no template
};

// key -> acceptable values. Matches when every key matches some value.
// A flat list in document order (YAML refuses a key twice): a role has a
// handful of keys, and a node keeps thousands of roles.
using LabelSelector = std::vector<std::pair<std::string, std::vector<LabelPattern>>>;

// A value without templates; a bad regexp is an error naming it. The
// program is compiled to check it, and kept only when `keep_compiled` (a
// pattern about to be matched); otherwise it is compiled again on first use.
Result<LabelPattern> make_pattern(std::string text, bool keep_compiled = false);
bool pattern_matches(const LabelPattern& pattern, std::string_view value);

// Whether `selector` matches `labels`, once its templates are expanded with
// `traits` as Teleport's applyLabelsTraits does: a key takes its first
// value (a key that does not expand matches no node), each value all of
// its own. An empty selector matches nothing; '*': '*' matches every node.
// A value that expands to a bad regexp is an error: Teleport then denies the
// whole request. labels_match is the same with an error as no match.
Result<bool> match_labels(const LabelSelector& selector, const NodeLabels& labels, const Traits& traits);
bool labels_match(const LabelSelector& selector, const NodeLabels& labels, const Traits& traits);

}  // namespace machineid
