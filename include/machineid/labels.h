// Node labels and the role selectors (node_labels) that match them, as
// Teleport's MatchLabels does.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
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
struct LabelPattern {
  std::string text;
  std::shared_ptr<const re2::RE2> regex;  // compiled when `text` needs one and has no template
};

// key -> acceptable values. Matches when every key matches some value.
using LabelSelector = std::map<std::string, std::vector<LabelPattern>, std::less<>>;

// Compiles a value without templates; a bad regexp is an error naming it.
Result<LabelPattern> make_pattern(std::string text);
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
