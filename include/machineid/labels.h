// Node labels and the role selectors (node_labels) that match them, as
// Teleport's MatchLabels does.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
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
// A regular expression compiled on its first match, once, by whichever
// thread comes first: a node may load 10 000 roles of which a certificate
// names two, and an RE2 program costs more than the role around it.
class LazyRegex {
 public:
  // `program` compiles (make_pattern checked it); `compiled` is kept if given.
  LazyRegex(std::string program, std::unique_ptr<const re2::RE2> compiled);
  ~LazyRegex();
  const re2::RE2& get() const;
  bool compiled() const { return compiled_flag_.load(std::memory_order_acquire); }

 private:
  std::string program_;
  mutable std::once_flag once_;
  mutable std::unique_ptr<const re2::RE2> compiled_;
  mutable std::atomic<bool> compiled_flag_{false};
};

struct LabelPattern {
  std::string text;
  std::shared_ptr<const LazyRegex> regex;  // when `text` needs one and has no template
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
