// Node label selectors, as Teleport's MatchLabels and applyLabelsTraits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "machineid/labels.h"
#include "resource_yaml.h"

namespace machineid {
namespace {

using testing::parse_error;
using testing::parse_ok;
using testing::role_with_labels;

LabelSelector selector(const std::string& node_labels) {
  Policy policy = parse_ok(role_with_labels(node_labels));
  return policy.roles.count("web") ? policy.roles.at("web").allow.node_labels : LabelSelector{};
}

bool matches(const std::string& node_labels, const NodeLabels& labels, const Traits& traits = {}) {
  return labels_match(selector(node_labels), labels, traits);
}

// --- node_labels ------------------------------------------------------------

TEST(NodeLabels, ExactValueMatchesOnlyThatValue) {
  EXPECT_TRUE(matches("      env: prod\n", {{"env", "prod"}}));
  EXPECT_FALSE(matches("      env: prod\n", {{"env", "production"}}));
  EXPECT_FALSE(matches("      env: prod\n", {{"team", "prod"}}));
}

TEST(NodeLabels, StarValueMatchesAnyValueOfAPresentKey) {
  EXPECT_TRUE(matches("      env: '*'\n", {{"env", "anything at all"}}));
  EXPECT_TRUE(matches("      env: '*'\n", {{"env", ""}}));
  EXPECT_FALSE(matches("      env: '*'\n", {{"team", "a"}}));
}

TEST(NodeLabels, StarInsideAValueIsAGlob) {
  EXPECT_TRUE(matches("      host: api-*\n", {{"host", "api-1"}}));
  EXPECT_TRUE(matches("      host: api-*\n", {{"host", "api-"}}));
  EXPECT_FALSE(matches("      host: api-*\n", {{"host", "web-api-1"}}));
  EXPECT_TRUE(matches("      host: '*.prod.example.com'\n", {{"host", "db1.prod.example.com"}}));
  // Everything but '*' is literal, dots included.
  EXPECT_FALSE(matches("      host: '*.prod.example.com'\n", {{"host", "db1-prodXexample.com"}}));
  EXPECT_FALSE(matches("      host: a.b\n", {{"host", "axb"}}));
}

TEST(NodeLabels, AnchoredValueIsARegexp) {
  EXPECT_TRUE(matches("      host: '^api-[0-9]+$'\n", {{"host", "api-42"}}));
  EXPECT_FALSE(matches("      host: '^api-[0-9]+$'\n", {{"host", "api-42x"}}));
  EXPECT_FALSE(matches("      host: '^api-[0-9]+$'\n", {{"host", "xapi-42"}}));
  EXPECT_TRUE(matches("      env: '^(prod|staging)$'\n", {{"env", "staging"}}));
}

// A role's regexp is checked when it loads but compiled only when a
// decision first matches it, once, whichever decision thread comes first.
TEST(NodeLabels, ARegexpIsCompiledOnItsFirstMatchOnceAcrossThreads) {
  LabelSelector sel = selector("      env: '^prod-[0-9]+$'\n");
  ASSERT_EQ(sel.size(), 1u);
  ASSERT_EQ(sel[0].first, "env");
  const LazyRegex& regex = sel[0].second.at(0).regex;
  EXPECT_FALSE(regex.compiled());
  std::vector<std::thread> threads;
  std::atomic<int> matched{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i)
        matched += labels_match(sel, {{"env", t % 2 ? "prod-" + std::to_string(i) : "staging"}}, {});
    });
  for (auto& th : threads) th.join();
  EXPECT_TRUE(regex.compiled());
  EXPECT_EQ(matched.load(), 4 * 100);
  // A bad one is still refused at load, naming it.
  EXPECT_THAT(parse_error(role_with_labels("      env: '^prod-($'\n")), ::testing::HasSubstr("bad regexp '^prod-($'"));
}

// A role's own regexp, in a selector whose key holds a template, is
// matched in place: it compiles once, on the role, not once per request.
TEST(NodeLabels, ARegexpBesideATemplatedKeyCompilesOnTheRole) {
  LabelSelector sel = selector("      '{{external.label}}': '^prod-[0-9]+$'\n");
  ASSERT_EQ(sel.size(), 1u);
  const LazyRegex& regex = sel[0].second.at(0).regex;
  EXPECT_FALSE(regex.compiled());
  const Traits traits = {{"label", {"env"}}};
  EXPECT_TRUE(labels_match(sel, {{"env", "prod-1"}}, traits));
  EXPECT_FALSE(labels_match(sel, {{"env", "staging"}}, traits));
  EXPECT_TRUE(regex.compiled());
  // A copied role starts uncompiled and still matches; a moved one keeps
  // the program.
  LabelSelector copy = sel;
  EXPECT_FALSE(copy[0].second[0].regex.compiled());
  EXPECT_TRUE(labels_match(copy, {{"env", "prod-2"}}, traits));
  LabelSelector moved = std::move(copy);
  EXPECT_TRUE(moved[0].second[0].regex.compiled());
  EXPECT_TRUE(labels_match(moved, {{"env", "prod-3"}}, traits));
}

TEST(NodeLabels, StarKeyWithStarValueMatchesEveryNode) {
  EXPECT_TRUE(matches("      '*': '*'\n", {}));
  EXPECT_TRUE(matches("      '*': '*'\n", {{"env", "dev"}}));
  // As Teleport: the wildcard pair wins over the other keys.
  EXPECT_TRUE(matches("      '*': '*'\n      env: prod\n", {{"env", "dev"}}));
  // A '*' key with another value names a label called '*'.
  EXPECT_FALSE(matches("      '*': prod\n", {{"env", "prod"}}));
}

TEST(NodeLabels, ListValueMatchesAnyOfItsValues) {
  const std::string labels = "      env:\n      - prod\n      - '^stag.*$'\n";
  EXPECT_TRUE(matches(labels, {{"env", "prod"}}));
  EXPECT_TRUE(matches(labels, {{"env", "staging"}}));
  EXPECT_FALSE(matches(labels, {{"env", "dev"}}));
}

TEST(NodeLabels, EveryKeyMustMatch) {
  const std::string labels = "      env: prod\n      group: api-servers\n";
  EXPECT_TRUE(matches(labels, {{"env", "prod"}, {"group", "api-servers"}, {"extra", "x"}}));
  EXPECT_FALSE(matches(labels, {{"env", "prod"}, {"group", "db-servers"}}));
  EXPECT_FALSE(matches(labels, {{"env", "prod"}}));
}

TEST(NodeLabels, EmptySelectorMatchesNothing) {
  EXPECT_FALSE(labels_match(LabelSelector{}, {}, {}));
  EXPECT_FALSE(labels_match(LabelSelector{}, {{"env", "prod"}}, {}));
  EXPECT_FALSE(matches("      {}\n", {{"env", "prod"}}));
}

TEST(NodeLabels, TemplateInValueExpandsFromTraits) {
  const std::string labels =
      "      env: '{{external.envs}}'\n      host: '{{external.prefix}}-*'\n";
  Traits traits = {{"envs", {"dev", "staging"}}, {"prefix", {"api"}}};
  EXPECT_TRUE(matches(labels, {{"env", "staging"}, {"host", "api-3"}}, traits));
  EXPECT_FALSE(matches(labels, {{"env", "prod"}, {"host", "api-3"}}, traits));
  EXPECT_FALSE(matches(labels, {{"env", "dev"}, {"host", "web-3"}}, traits));
  // A missing trait leaves the key no value to match.
  EXPECT_FALSE(matches(labels, {{"env", "staging"}, {"host", "api-3"}}, {{"envs", {"staging"}}}));
}

TEST(NodeLabels, TemplateInKeyExpandsToItsFirstValue) {
  const std::string labels = "      '{{external.label}}': prod\n";
  EXPECT_TRUE(matches(labels, {{"env", "prod"}}, {{"label", {"env", "tier"}}}));
  EXPECT_FALSE(matches(labels, {{"tier", "prod"}}, {{"label", {"env", "tier"}}}));
  EXPECT_FALSE(matches(labels, {{"env", "prod"}}, {}));
}

TEST(NodeLabels, BadRegexpIsAnErrorNamingFileLineAndField) {
  EXPECT_EQ(
      parse_error(role_with_labels("      env: prod\n      host: '^api-(+$'\n")),
      "roles.d/ci.yaml:13: spec.allow.node_labels.host: bad regexp '^api-(+$': no argument for "
      "repetition operator: +");
}

TEST(NodeLabels, ValueThatIsNeitherStringNorListIsAnError) {
  EXPECT_EQ(
      parse_error(role_with_labels("      env:\n        nested: map\n")),
      "roles.d/ci.yaml:13: spec.allow.node_labels.env: must be a string or a list of strings");
}

// applyLabelsTraits: a value that does not expand stands for "", so it
// matches a label whose value is empty, as in Teleport.
TEST(NodeLabels, ValueTemplateThatDoesNotExpandStandsForTheEmptyValue) {
  EXPECT_TRUE(matches("      env: '{{external.missing}}'\n", {{"env", ""}}));
  EXPECT_FALSE(matches("      env: '{{external.missing}}'\n", {{"env", "prod"}}));
  // internal.X reads only Teleport's internal trait names.
  EXPECT_FALSE(matches("      env: '{{internal.envs}}'\n", {{"env", "prod"}}, {{"envs", {"prod"}}}));
  EXPECT_TRUE(matches("      env: '{{internal.logins}}'\n", {{"env", "prod"}}, {{"logins", {"prod"}}}));
}

TEST(NodeLabels, WildcardPairAfterExpansionMatchesEveryNode) {
  EXPECT_TRUE(matches("      '{{external.k}}': '{{external.v}}'\n", {}, {{"k", {"*"}}, {"v", {"*"}}}));
}

TEST(NodeLabels, TraitExpandingToABadRegexpIsAnErrorNotAMatch) {
  auto sel = selector("      env: '{{external.re}}'\n");
  auto matched = match_labels(sel, {{"env", "prod"}}, {{"re", {"^(prod$"}}});
  EXPECT_FALSE(matched.ok());
  EXPECT_FALSE(labels_match(sel, {{"env", "prod"}}, {{"re", {"^(prod$"}}}));
}

}  // namespace
}  // namespace machineid
