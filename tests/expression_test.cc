// Teleport's label expression language (node_labels_expression). The table
// is Teleport's own TestLabelExpressions (lib/services/parser_test.go):
// facts carried over, code written here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "machineid/expression.h"

namespace machineid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Case {
  const char* desc;
  const char* expr;
  NodeLabels labels;
  Traits traits;
  const char* parse_error = nullptr;     // a part of the parse error, when parsing must fail
  const char* evaluate_error = nullptr;  // a part of the evaluation error, when it must fail
  bool match = false;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.desc; }

class TeleportLabelExpressions : public ::testing::TestWithParam<Case> {};

TEST_P(TeleportLabelExpressions, ParseAndEvaluateAsTeleport) {
  const Case& c = GetParam();
  auto parsed = Expression::parse(c.expr, ExpressionLanguage::label_expression);
  if (c.parse_error) {
    ASSERT_FALSE(parsed.ok()) << c.desc;
    EXPECT_THAT(parsed.error().message, HasSubstr(c.parse_error)) << c.desc;
    return;
  }
  ASSERT_TRUE(parsed.ok()) << c.desc << ": " << parsed.error().message;
  auto matched = parsed->matches(ExpressionInput{&c.labels, &c.traits, "alice"});
  if (c.evaluate_error) {
    ASSERT_FALSE(matched.ok()) << c.desc;
    EXPECT_THAT(matched.error().message, HasSubstr(c.evaluate_error)) << c.desc;
    return;
  }
  ASSERT_TRUE(matched.ok()) << c.desc << ": " << matched.error().message;
  EXPECT_EQ(*matched, c.match) << c.desc;
}

INSTANTIATE_TEST_SUITE_P(
    TestLabelExpressions, TeleportLabelExpressions,
    ::testing::Values(
        Case{"label equality", R"(labels["env"] == "staging")", {{"env", "staging"}}, {}, nullptr, nullptr, true},
        Case{"label inequality", R"(labels["env"] != "production")", {{"env", "production"}}, {}, nullptr, nullptr,
             false},
        Case{"wrong type", R"(user.spec.traits["allow-env"] == "staging")", {}, {}, "operator (==) not supported for type: []string"},
        Case{"contains match", R"(contains(user.spec.traits["allow-env"], labels["env"]))", {{"env", "staging"}},
             {{"allow-env", {"dev", "staging"}}}, nullptr, nullptr, true},
        Case{"contains not match", R"(contains(user.spec.traits["allow-env"], labels["env"]))",
             {{"env", "production"}}, {{"allow-env", {"dev", "staging"}}}, nullptr, nullptr, false},
        Case{"contains wrong type", R"(contains(labels, "env"))", {{"env", "staging"}}, {},
             "parsing first argument to (contains)"},
        Case{"boolean logic",
             "contains(user.spec.traits[\"allow-env\"], labels[\"env\"]) &&\n"
             "  contains(user.spec.traits[\"groups\"], labels[\"group\"]) ||\n"
             "  contains(user.spec.traits[\"groups\"], \"super-admin\")",
             {{"env", "staging"}, {"group", "devs"}},
             {{"allow-env", {"dev", "staging", "production"}}, {"groups", {"devs", "security"}}}, nullptr, nullptr,
             true},
        Case{"regexp.match", "regexp.match(labels[\"owner\"], \"dev-*\") &&\n  !regexp.match(labels[\"env\"], \"^prod.*$\")",
             {{"owner", "dev-123"}, {"env", "staging"}}, {}, nullptr, nullptr, true},
        Case{"regexp.replace",
             "\n contains(\n    // call with list\n  regexp.replace(user.spec.traits[\"groups\"], \"^team-(.*)$\", \"$1\"),\n"
             "  labels[\"team\"]) &&\n contains(\n    // call with single string\n"
             "  regexp.replace(labels[\"env\"], \"^(.*)$\", \"env-$1\"),\n  \"env-staging\")",
             {{"team", "security"}, {"env", "staging"}}, {{"groups", {"team-security"}}}, nullptr, nullptr, true},
        Case{"email.local",
             "contains(email.local(user.spec.traits[\"email\"]), labels[\"owner\"]) &&\n"
             "  contains(email.local(user.spec.traits[\"full email\"]), labels[\"owner\"])",
             {{"owner", "test"}}, {{"email", {"test@example.com"}}, {"full email", {"Test <test@example.com>"}}},
             nullptr, nullptr, true},
        Case{"email.local error", R"(contains(email.local(user.spec.traits["email"]), labels["owner"]))",
             {{"owner", "test"}}, {{"email", {"test"}}}, nullptr, "failed to parse \"email.local\" argument"},
        Case{"string helpers",
             "contains(strings.lower(user.spec.traits[\"logins\"]), \"name\") &&\n"
             "  contains(strings.upper(labels[\"env\"]), \"STAGING\")",
             {{"env", "staging"}}, {{"logins", {"test", "Name"}}}, nullptr, nullptr, true},
        Case{"labels_matching name", R"(contains(labels_matching("^project-(name|label)$"), "skunkworks"))",
             {{"project-name", "skunkworks"}, {"project-label", "secret"}}, {}, nullptr, nullptr, true},
        Case{"labels_matching label", R"(contains(labels_matching("^project-(name|label)$"), "skunkworks"))",
             {{"project-name", "secret"}, {"project-label", "skunkworks"}}, {}, nullptr, nullptr, true},
        Case{"labels_matching glob", R"(contains(labels_matching("project-*"), "skunkworks"))",
             {{"project-name", "skunkworks"}, {"project-label", "secret"}}, {}, nullptr, nullptr, true},
        Case{"labels_matching no match", R"(contains(labels_matching("project-*"), "skunkworks"))",
             {{"project", "skunkworks"}}, {}, nullptr, nullptr, false},
        Case{"contains_any match", R"(contains_any(user.spec.traits["projects"], labels_matching("project-*")))",
             {{"project-name", "skunkworks"}, {"project-label", "secret"}},
             {{"projects", {"parser", "skunkworks", "algorithms"}}}, nullptr, nullptr, true},
        Case{"contains_any no match", R"(contains_any(user.spec.traits["projects"], labels_matching("project-*")))",
             {{"project-name", "skunkworks"}, {"project-label", "secret"}}, {{"projects", {"parser", "algorithms"}}},
             nullptr, nullptr, false},
        Case{"contains_any empty first arg",
             R"(contains_any(user.spec.traits["projects"], labels_matching("project-*")))",
             {{"project-name", "skunkworks"}, {"project-label", "secret"}}, {}, nullptr, nullptr, false},
        Case{"contains_any empty second arg",
             R"(contains_any(user.spec.traits["projects"], labels_matching("project-*")))", {{"team", "security"}},
             {{"projects", {"parser", "algorithms"}}}, nullptr, nullptr, false},
        Case{"contains_all match", R"(contains_all(user.spec.traits["projects"], labels_matching("project-*")))",
             {{"project-primary", "parser"}, {"project-secondary", "algorithms"}},
             {{"projects", {"parser", "skunkworks", "algorithms"}}}, nullptr, nullptr, true},
        Case{"contains_all no match", R"(contains_all(user.spec.traits["projects"], labels_matching("project-*")))",
             {{"project-primary", "parser"}, {"project-secondary", "algorithms"}, {"project-label", "secret"}},
             {{"projects", {"parser", "skunkworks", "algorithms"}}}, nullptr, nullptr, false},
        Case{"contains_all empty first arg",
             R"(contains_all(user.spec.traits["projects"], labels_matching("project-*")))",
             {{"project-primary", "parser"}, {"project-secondary", "algorithms"}, {"project-label", "secret"}}, {},
             nullptr, nullptr, false},
        Case{"contains_all empty second arg",
             R"(contains_all(user.spec.traits["projects"], labels_matching("project-*")))", {{"team", "security"}},
             {{"projects", {"parser", "skunkworks", "algorithms"}}}, nullptr, nullptr, false}));

bool eval(const std::string& expr, const NodeLabels& labels = {{"env", "prod"}, {"team", "api"}},
          const Traits& traits = {{"teams", {"api", "web"}}}) {
  auto parsed = Expression::parse(expr, ExpressionLanguage::label_expression);
  EXPECT_TRUE(parsed.ok()) << expr << ": " << (parsed.ok() ? "" : parsed.error().message);
  if (!parsed.ok()) return false;
  auto matched = parsed->matches(ExpressionInput{&labels, &traits, "bot-ci"});
  EXPECT_TRUE(matched.ok()) << expr << ": " << (matched.ok() ? "" : matched.error().message);
  return matched.ok() && *matched;
}

std::string parse_error(const std::string& expr) {
  auto parsed = Expression::parse(expr, ExpressionLanguage::label_expression);
  EXPECT_FALSE(parsed.ok()) << expr;
  return parsed.ok() ? "" : parsed.error().message;
}

TEST(LabelExpressions, SelectorAndIndexReadTheSameLabel) {
  EXPECT_TRUE(eval("labels.env == \"prod\""));
  EXPECT_TRUE(eval("labels[\"env\"] == labels.env"));
  EXPECT_TRUE(eval("labels.missing == \"\""));
  EXPECT_TRUE(eval("contains(user.spec.traits.teams, labels.team)"));
  EXPECT_FALSE(eval("contains(user.spec.traits.missing, labels.team)"));
}

TEST(LabelExpressions, OperatorsFollowGoPrecedenceAndShortCircuit) {
  EXPECT_TRUE(eval("labels.env == \"dev\" || labels.env == \"prod\" && labels.team == \"api\""));
  EXPECT_FALSE(eval("(labels.env == \"dev\" || labels.env == \"prod\") && labels.team == \"web\""));
  EXPECT_TRUE(eval("!(labels.env == \"dev\")"));
  EXPECT_TRUE(eval("!!(labels.env == \"prod\")"));
  // The right-hand side of a decided && or || is never evaluated.
  EXPECT_FALSE(eval("labels.env == \"dev\" && contains(email.local(user.spec.traits.teams), \"x\")"));
}

TEST(LabelExpressions, SetUnionHasPrefixAndIfelse) {
  EXPECT_TRUE(eval("contains(set(\"prod\", \"staging\"), labels.env)"));
  EXPECT_TRUE(eval("contains_all(union(user.spec.traits.teams, set(\"x\")), set(\"web\", \"x\"))"));
  EXPECT_TRUE(eval("hasPrefix(user.metadata.name, \"bot-\")"));
  EXPECT_TRUE(eval("ifelse(labels.env == \"prod\", labels.team, \"none\") == \"api\""));
  EXPECT_TRUE(eval("contains(ifelse(labels.env == \"dev\", set(\"a\"), user.spec.traits.teams), \"web\")"));
}

TEST(LabelExpressions, TypeAndNameErrorsAreParseErrors) {
  EXPECT_THAT(parse_error("labels.env"), HasSubstr("expression evaluated to unexpected type"));
  EXPECT_THAT(parse_error("nosuch == \"x\""), HasSubstr("unknown identifier: \"nosuch\""));
  EXPECT_THAT(parse_error("labels.a.b == \"x\""), HasSubstr("unknown identifier"));
  EXPECT_THAT(parse_error("frobnicate(labels.env)"), HasSubstr("unsupported function: frobnicate"));
  EXPECT_THAT(parse_error("contains(labels.env)"), HasSubstr("accepts 2 arguments, given 1"));
  EXPECT_THAT(parse_error("labels.env == 1"), HasSubstr("parsing rhs of (==) operator"));
  EXPECT_THAT(parse_error("!labels.env"), HasSubstr("parsing target of (!) operator"));
  EXPECT_THAT(parse_error("labels.env && true"), HasSubstr("parsing lhs of (&&) operator"));
  EXPECT_THAT(parse_error("email.local(user.spec.traits.email) == \"x\""), HasSubstr("not supported for type"));
  EXPECT_THAT(parse_error(""), HasSubstr("empty expression"));
  EXPECT_THAT(parse_error("labels.env == \"x"), HasSubstr("unterminated string"));
  EXPECT_THAT(parse_error("labels.env = \"x\""), HasSubstr("unexpected"));
  EXPECT_THAT(parse_error("labels.env == \"x\" )"), HasSubstr("unexpected"));
}

TEST(LabelExpressions, BadRegexpIsAnEvaluationErrorAsInTeleport) {
  auto parsed = Expression::parse("regexp.match(labels.env, \"^(prod$\")", ExpressionLanguage::label_expression);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  NodeLabels labels = {{"env", "prod"}};
  Traits traits;
  auto matched = parsed->matches(ExpressionInput{&labels, &traits, "x"});
  ASSERT_FALSE(matched.ok());
  EXPECT_THAT(matched.error().message, HasSubstr("invalid regular expression"));
}

TEST(LabelExpressions, NestingAndSizeAreBounded) {
  std::string deep(100, '(');
  deep += "labels.env == \"prod\"" + std::string(100, ')');
  EXPECT_THAT(parse_error(deep), HasSubstr("nested too deeply"));
  std::string nots(100, '!');
  EXPECT_THAT(parse_error(nots + "(labels.env == \"x\")"), HasSubstr("nested too deeply"));
  EXPECT_THAT(parse_error("labels.env == \"" + std::string(kMaxExpressionBytes, 'x') + "\""), HasSubstr("longer than"));
}

TEST(TraitTemplateExpressions, ValuesComeFromTraits) {
  auto parsed = Expression::parse("regexp.replace(external.groups, \"^team-(.*)$\", \"$1\")",
                                  ExpressionLanguage::trait_template);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  Traits traits = {{"groups", {"team-api", "admins", "team-web"}}};
  auto values = parsed->values(ExpressionInput{nullptr, &traits, {}});
  ASSERT_TRUE(values.ok());
  EXPECT_THAT(*values, ElementsAre("api", "web"));
  // Label expression functions are not template functions.
  EXPECT_FALSE(Expression::parse("strings.upper(external.x)", ExpressionLanguage::trait_template).ok());
  EXPECT_FALSE(Expression::parse("labels.a.b", ExpressionLanguage::trait_template).ok());
  // Teleport reads any other namespace as "external" in templates.
  EXPECT_TRUE(Expression::parse("labels.env", ExpressionLanguage::trait_template).ok());
}

}  // namespace
}  // namespace machineid
