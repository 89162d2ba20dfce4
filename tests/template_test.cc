// Trait templates, as Teleport's ApplyValueTraits applies them. The table
// cases cite the Teleport test they come from (lib/services/role_test.go
// TestApplyTraits); facts carried over, code written here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "machineid/template.h"

namespace machineid {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

// --- trait templates ----------------------------------------------------------

const Traits kTraits = {
    {"logins", {"ubuntu", "ec2-user"}},
    {"email", {"alice.smith@example.com"}},
    {"groups", {"team-api", "team-web", "admins"}},
    {"http://schemas.example.com/claims/unixuser", {"asmith"}},
    {"empty", {""}},
};

TEST(Templates, LiteralExpandsToItself) {
  EXPECT_THAT(expand_template("root", kTraits), ElementsAre("root"));
  EXPECT_THAT(expand_template("", kTraits), IsEmpty());
}

TEST(Templates, InternalAndExternalBothReadTheTrait) {
  EXPECT_THAT(expand_template("{{internal.logins}}", kTraits), ElementsAre("ubuntu", "ec2-user"));
  EXPECT_THAT(expand_template("{{external.logins}}", kTraits), ElementsAre("ubuntu", "ec2-user"));
  EXPECT_THAT(expand_template("{{ internal.logins }}", kTraits), ElementsAre("ubuntu", "ec2-user"));
  EXPECT_THAT(
      expand_template("{{external[\"http://schemas.example.com/claims/unixuser\"]}}", kTraits),
      ElementsAre("asmith"));
}

TEST(Templates, PrefixAndSuffixWrapEveryValue) {
  EXPECT_THAT(expand_template("u-{{internal.logins}}-x", kTraits),
              ElementsAre("u-ubuntu-x", "u-ec2-user-x"));
  // Blanks before the prefix and after the suffix are trimmed, as Teleport does.
  EXPECT_THAT(expand_template("  u-{{internal.logins}}  ", kTraits),
              ElementsAre("u-ubuntu", "u-ec2-user"));
}

TEST(Templates, MissingTraitGivesNoValues) {
  EXPECT_THAT(expand_template("{{internal.nosuch}}", kTraits), IsEmpty());
  EXPECT_THAT(expand_template("x-{{external.nosuch}}", kTraits), IsEmpty());
  EXPECT_THAT(expand_template("{{internal.empty}}", kTraits), IsEmpty());
}

TEST(Templates, EmailLocalTakesTheLocalPart) {
  EXPECT_THAT(expand_template("{{email.local(external.email)}}", kTraits),
              ElementsAre("alice.smith"));
  EXPECT_THAT(expand_template("{{email.local(external.email)}}",
                              {{"email", {"Alice <alice@example.com>"}}}),
              ElementsAre("alice"));
  // A value that is not an address drops the whole template, as in Teleport.
  EXPECT_THAT(expand_template("{{email.local(external.email)}}",
                              {{"email", {"bob@example.com", "not-an-email"}}}),
              IsEmpty());
}

TEST(Templates, RegexpReplaceRewritesMatchingValuesAndDropsTheRest) {
  EXPECT_THAT(
      expand_template("{{regexp.replace(external.groups, \"^team-(.*)$\", \"$1-dev\")}}", kTraits),
      ElementsAre("api-dev", "web-dev"));
  EXPECT_THAT(
      expand_template("{{regexp.replace(external.groups, \"^team-(?P<name>.*)$\", \"$name\")}}",
                      kTraits),
      ElementsAre("api", "web"));
  // As Go's Expand: "$1x" names a group "1x", which does not exist.
  EXPECT_THAT(
      expand_template("{{regexp.replace(external.groups, \"^team-(.*)$\", \"$1x\")}}", kTraits),
      IsEmpty());
  // Every match is replaced, and "$$" is a dollar sign.
  EXPECT_THAT(expand_template("{{regexp.replace(external.logins, \"u\", \"$$\")}}", kTraits),
              ElementsAre("$b$nt$", "ec2-$ser"));
  EXPECT_THAT(
      expand_template("{{regexp.replace(email.local(external.email), \"\\\\.\", \"_\")}}", kTraits),
      ElementsAre("alice_smith"));
}

TEST(Templates, ValuesThatAreNotValidLoginsAreDropped) {
  Traits traits = {{"names",
                    {"good", "-oProxyCommand", "a:b", "with space", "a/b",
                     "x234567890123456789012345678901234"}}};
  EXPECT_THAT(expand_template("{{external.names}}", traits), ElementsAre("good"));
  EXPECT_THAT(expand_template("bad login", traits), IsEmpty());
}

TEST(Templates, ValidateRejectsWhatTeleportCannotParse) {
  for (const char* bad :
       {"{{internal.logins", "internal.logins}}", "{{internal}}", "{{internal.a.b}}",
"{{}}", "a{{internal.x}}{{internal.y}}", "{b}{{internal.x}}",
        "{{email.local(external.email, external.x)}}",
        "{{regexp.replace(external.x, external.y, \"\")}}", "{{regexp.match(\"a\")}}",
        "{{strings.upper(external.x)}}", "{{external[\"x]}}", "{{internal.logins trailing}}"}) {
    EXPECT_FALSE(validate_template(bad).ok()) << bad;
    EXPECT_THAT(expand_template(bad, kTraits), IsEmpty()) << bad;
  }
  for (const char* good : {"root", "a{b}", "^a{2}$", "{{ external.x }}",
                           "p{{regexp.replace(internal.x, `\\d+`, `n`)}}s",
                           "{{email.local(regexp.replace(external.email, \"\\x41\", \"a\"))}}"}) {
    EXPECT_TRUE(validate_template(good).ok())
        << good << ": " << validate_template(good).error().message;
  }
}

TEST(Templates, OtherNamespacesReadExternalTraitsAsTeleportKeepsDoing) {
  EXPECT_TRUE(validate_template("{{other.logins}}").ok());
  EXPECT_THAT(expand_template("{{other.logins}}", kTraits), ElementsAre("ubuntu", "ec2-user"));
  EXPECT_FALSE(validate_template("{{a.b.c}}").ok());
}

TEST(Templates, InternalReadsOnlyTeleportsInternalTraitNames) {
  Traits traits = {{"logins", {"ubuntu"}}, {"groups", {"admins"}}, {"db_users", {"alice"}}};
  EXPECT_THAT(expand_values("{{internal.logins}}", traits), ElementsAre("ubuntu"));
  EXPECT_THAT(expand_values("{{internal.db_users}}", traits), ElementsAre("alice"));
  EXPECT_THAT(expand_values("{{internal.groups}}", traits), IsEmpty());
  EXPECT_THAT(expand_values("{{internal[\"groups\"]}}", traits), IsEmpty());
  EXPECT_THAT(expand_values("{{external.groups}}", traits), ElementsAre("admins"));
}

TEST(Templates, StringLiteralsMayStandForTraitValues) {
  EXPECT_THAT(expand_template("{{\"literal\"}}", {}), ElementsAre("literal"));
  EXPECT_THAT(expand_template("{{email.local(\"vitor@goteleport.com\")}}", {}), ElementsAre("vitor"));
}

TEST(Templates, RegexpThatDoesNotCompileParsesButExpandsToNothing) {
  // Teleport compiles regexp.replace's pattern when it evaluates, so the
  // role loads and the value is skipped.
  EXPECT_TRUE(validate_template("{{regexp.replace(external.x, \"(\", \"\")}}").ok());
  EXPECT_THAT(expand_template("{{regexp.replace(external.x, \"(\", \"\")}}", {{"x", {"a"}}}), IsEmpty());
}

TEST(Templates, ExpressionsAreBounded) {
  std::string deep = "{{";
  for (int i = 0; i < 100; ++i) deep += "email.local(";
  deep += "external.x";
  for (int i = 0; i < 100; ++i) deep += ")";
  deep += "}}";
  EXPECT_FALSE(validate_template(deep).ok());
  EXPECT_FALSE(validate_template("{{external.x" + std::string(20000, ' ') + "}}").ok());
}

// TestApplyTraits: logins, one case at a time.
struct LoginCase {
  const char* comment;
  Traits traits;
  std::vector<std::string> in, out;
};

void PrintTo(const LoginCase& c, std::ostream* os) { *os << c.comment; }

class ApplyTraitsLogins : public ::testing::TestWithParam<LoginCase> {};

TEST_P(ApplyTraitsLogins, ExpandAsTeleport) {
  const LoginCase& c = GetParam();
  std::vector<std::string> out;
  for (const auto& tmpl : c.in)
    for (auto& login : expand_template(tmpl, c.traits))
      if (std::find(out.begin(), out.end(), login) == out.end()) out.push_back(login);  // Deduplicate
  EXPECT_THAT(out, ElementsAreArray(c.out)) << c.comment;
}

INSTANTIATE_TEST_SUITE_P(
    TeleportTestApplyTraits, ApplyTraitsLogins,
    ::testing::Values(
        LoginCase{"logins substitute in allow rule", {{"foo", {"bar"}}}, {"{{external.foo}}", "root"}, {"bar", "root"}},
        LoginCase{"logins substitute in allow rule with function",
                  {{"foo", {"Bar <bar@example.com>"}}},
                  {"{{email.local(external.foo)}}", "root"},
                  {"bar", "root"}},
        LoginCase{"logins substitute in allow rule with regexp",
                  {{"foo", {"bar-baz"}}},
                  {"{{regexp.replace(external.foo, \"^bar-(.*)$\", \"$1\")}}", "root"},
                  {"baz", "root"}},
        LoginCase{"logins substitute in allow rule with multiple functions and regexps",
                  {{"email", {"ab_cd@example.com"}}},
                  {"{{regexp.replace(external.email, \"_\", \"\")}}", "{{email.local(external.email)}}",
                   "{{regexp.replace(email.local(external.email), \"_\", \"\")}}",
                   "{{regexp.replace(external.email, \"d\", \"e\")}}",
                   "{{email.local(regexp.replace(external.email, \"d\", \"e\"))}}",
                   "{{regexp.replace(regexp.replace(email.local(regexp.replace(external.email, \"cd\", \"z\")), "
                   "\"ab\", \"xy\"), \"_\", \"\")}}",
                   "root"},
                  {"abcd@example.com", "ab_cd", "abcd", "ab_ce@example.com", "ab_ce", "xyz", "root"}},
        LoginCase{"logins substitute in allow rule can have constant expressions",
                  {},
                  {"{{regexp.replace(\"vitor@gravitational.com\", \"gravitational\", \"goteleport\")}}",
                   "{{email.local(\"vitor@goteleport.com\")}}",
                   "{{email.local(regexp.replace(\"vitor.enes@gravitational.com\", \"gravitational\", "
                   "\"goteleport\"))}}",
                   "root"},
                  {"vitor@goteleport.com", "vitor", "vitor.enes", "root"}},
        LoginCase{"no variable in logins", {{"foo", {"bar"}}}, {"root"}, {"root"}},
        LoginCase{"invalid variable in logins does not get passed along", {{"foo", {"bar"}}}, {"external.foo}}"}, {}},
        LoginCase{"invalid function call in logins does not get passed along",
                  {{"foo", {"bar"}}},
                  {"{{email.local(external.foo, 1)}}", "{{email.local()}}", "{{email.local(email.local)}}",
                   "{{email.local(email.local())}}"},
                  {}},
        LoginCase{"invalid regexp in logins does not get passed along",
                  {{"foo", {"bar"}}},
                  {"{{regexp.replace(external.foo, \"(()\", \"baz\")}}"},
                  {}},
        LoginCase{"logins which to not match regexp get filtered out",
                  {{"foo", {"dev-alice", "dev-bob", "prod-charlie"}}},
                  {"{{regexp.replace(external.foo, \"^dev-([a-zA-Z]+)$\", \"$1-admin\")}}"},
                  {"alice-admin", "bob-admin"}},
        LoginCase{"variable in logins, none in traits", {{"foo", {"bar"}}}, {"{{internal.bar}}", "root"}, {"root"}},
        LoginCase{"multiple variables in traits", {{"logins", {"bar", "baz"}}}, {"{{internal.logins}}", "root"},
                  {"bar", "baz", "root"}},
        LoginCase{"deduplicate", {{"foo", {"bar"}}}, {"{{external.foo}}", "bar"}, {"bar"}},
        LoginCase{"invalid unix login", {{"foo", {"-foo"}}}, {"{{external.foo}}", "bar"}, {"bar"}}));

}  // namespace
}  // namespace machineid
