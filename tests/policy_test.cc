// Teleport roles and locks: YAML as `tctl get` prints it, label selectors,
// trait templates and lock targets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "fixtures.h"
#include "machineid/policy.h"

namespace machineid {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// 2026-01-02T15:04:05Z
constexpr std::int64_t kExpiry = 1767366245;

Policy parse_ok(const std::string& yaml, const std::string& source = "roles.d/test.yaml") {
  Policy policy;
  Status status = parse_resources(yaml, source, policy);
  EXPECT_TRUE(status.ok()) << status.error().message;
  return policy;
}

std::string parse_error(const std::string& yaml, const std::string& source = "roles.d/ci.yaml") {
  Policy policy;
  Status status = parse_resources(yaml, source, policy);
  EXPECT_FALSE(status.ok());
  return status.ok() ? "" : status.error().message;
}

// A v7 role as `tctl get role/NAME` prints it, with the given allow.node_labels block.
std::string role_with_labels(const std::string& node_labels) {
  return "kind: role\n"
         "metadata:\n"
         "  name: web\n"
         "  revision: 2b1c9f0e-33a4-4a7e-9d6c-0b8e5d1f7a21\n"
         "spec:\n"
         "  allow:\n"
         "    app_labels:\n"
         "      '*': '*'\n"
         "    logins:\n"
         "    - deploy\n"
         "    node_labels:\n" +
         node_labels +
         "  options:\n"
         "    forward_agent: false\n"
         "version: v7\n";
}

LabelSelector selector(const std::string& node_labels) {
  Policy policy = parse_ok(role_with_labels(node_labels));
  return policy.roles.count("web") ? policy.roles.at("web").allow.node_labels : LabelSelector{};
}

bool matches(const std::string& node_labels, const NodeLabels& labels, const Traits& traits = {}) {
  return labels_match(selector(node_labels), labels, traits);
}

std::string lock_yaml(const std::string& target, const std::string& expires = "") {
  return "kind: lock\n"
         "metadata:\n"
         "  name: 6f0c1d8e-4b2a-4c55-8a0e-2d9b7c3e1f40\n"
         "  revision: 9a7d3c21-0e4f-4b6a-8c15-7e2f9d0b3a64\n"
         "spec:\n"
         "  created_at: \"2025-06-01T10:00:00Z\"\n"
         "  created_by: alice\n" +
         (expires.empty() ? "" : "  expires: \"" + expires + "\"\n") +
         "  message: runner compromised\n"
         "  target:\n" +
         target + "version: v2\n";
}

Lock lock_from(const std::string& target, const std::string& expires = "") {
  Policy policy = parse_ok(lock_yaml(target, expires), "locks.d/lock.yaml");
  return policy.locks.empty() ? Lock{} : policy.locks.front();
}

struct Subject {
  std::string user = "bot-ci";
  std::vector<std::string> roles = {"ci", "deploy"};
  std::string login = "deploy";
  std::string server_id = "my-host";
  std::string bot_instance_id = "7d3e6a90-1b2c-4d5e-8f90-a1b2c3d4e5f6";

  LockSubject view() const { return LockSubject{user, &roles, login, server_id, bot_instance_id}; }
};

bool applies(const Lock& lock, const Subject& subject = {}, std::int64_t now = kExpiry - 3600) {
  return lock_applies(lock, subject.view(), now);
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
      "      env: '{{external.envs}}'\n      host: '{{internal.prefix}}-*'\n";
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
  EXPECT_THAT(expand_template("{{internal.names}}", traits), ElementsAre("good"));
  EXPECT_THAT(expand_template("bad login", traits), IsEmpty());
}

TEST(Templates, ValidateRejectsWhatTeleportCannotParse) {
  for (const char* bad :
       {"{{internal.logins", "internal.logins}}", "{{internal}}", "{{internal.a.b}}",
        "{{other.logins}}", "{{}}", "a{{internal.x}}{{internal.y}}", "{b}{{internal.x}}",
        "{{email.local(external.email, external.x)}}",
        "{{regexp.replace(external.x, \"(\", \"\")}}",
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

// --- roles -------------------------------------------------------------------

// Three roles as `tctl get roles` prints them, with the many fields this
// node does not use.
const char* const kRoleDump = R"(kind: role
metadata:
  description: CI runners deploy to the API servers
  labels:
    team: platform
  name: ci
  revision: 5a1c2f3e-8c7d-4d39-9b51-1f9c2d0e7a11
spec:
  allow:
    app_labels:
      '*': '*'
    db_labels:
      env: dev
    host_groups:
    - docker
    - deploy
    host_sudoers:
    - 'ALL=(ALL) NOPASSWD: /usr/bin/systemctl restart api'
    logins:
    - ci
    - '{{internal.logins}}'
    node_labels:
      env:
      - prod
      - staging
      group: api-*
    rules:
    - resources:
      - event
      verbs:
      - list
      - read
  deny:
    logins:
    - root
  options:
    cert_format: standard
    create_db_user: false
    create_host_user_default_shell: /bin/bash
    create_host_user_mode: keep
    desktop_clipboard: true
    enhanced_recording:
    - command
    - network
    forward_agent: false
    idp:
      saml:
        enabled: true
    max_session_ttl: 8h0m0s
    pin_source_ip: false
    port_forwarding: true
    record_session:
      default: best_effort
      desktop: true
    ssh_file_copy: true
version: v7
---
kind: role
metadata:
  name: access
  revision: 0c6e0d1b-5f7a-4e61-9b1d-3c2a8f4e7d90
spec:
  allow:
    logins:
    - '{{internal.logins}}'
    node_labels:
      '*': '*'
  deny: {}
  options:
    max_session_ttl: 30h0m0s
version: v8
---
kind: role
metadata:
  name: no-postgres
spec:
  allow: {}
  deny:
    logins:
    - postgres
    node_labels:
      env: prod
  options:
    create_host_user_mode: insecure-drop
version: v5
)";

TEST(Roles, TctlDumpOfThreeRolesLoads) {
  Policy policy = parse_ok(kRoleDump, "roles.d/dump.yaml");
  ASSERT_EQ(policy.roles.size(), 3u);
  EXPECT_THAT(policy.notices, IsEmpty());

  const Role& ci = policy.roles.at("ci");
  EXPECT_EQ(ci.name, "ci");
  EXPECT_EQ(ci.source, "roles.d/dump.yaml:1");
  EXPECT_THAT(ci.allow.logins, ElementsAre("ci", "{{internal.logins}}"));
  EXPECT_THAT(ci.allow.host_groups, ElementsAre("docker", "deploy"));
  EXPECT_THAT(ci.allow.host_sudoers,
              ElementsAre("ALL=(ALL) NOPASSWD: /usr/bin/systemctl restart api"));
  EXPECT_EQ(ci.allow.node_labels.size(), 2u);
  EXPECT_TRUE(
      labels_match(ci.allow.node_labels, {{"env", "staging"}, {"group", "api-servers"}}, {}));
  EXPECT_THAT(ci.deny.logins, ElementsAre("root"));
  EXPECT_TRUE(ci.deny.node_labels.empty());
  EXPECT_EQ(ci.create_host_user_mode, "keep");
  EXPECT_EQ(ci.max_session_ttl, std::chrono::hours(8));

  const Role& access = policy.roles.at("access");
  EXPECT_EQ(access.source, "roles.d/dump.yaml:58");
  EXPECT_EQ(access.max_session_ttl, std::chrono::hours(30));
  EXPECT_FALSE(access.create_host_user_mode);
  EXPECT_TRUE(labels_match(access.allow.node_labels, {}, {}));

  const Role& deny = policy.roles.at("no-postgres");
  EXPECT_TRUE(deny.allow.logins.empty());
  EXPECT_THAT(deny.deny.logins, ElementsAre("postgres"));
  EXPECT_TRUE(labels_match(deny.deny.node_labels, {{"env", "prod"}}, {}));
  EXPECT_EQ(deny.create_host_user_mode, "insecure-drop");
  EXPECT_FALSE(deny.max_session_ttl);
}

std::string role_with_options(const std::string& options) {
  return "kind: role\nmetadata:\n  name: r\nspec:\n  options:\n" + options + "version: v7\n";
}

TEST(Roles, HostUserModeOffAndTeleportsOldDropAreUnderstood) {
  EXPECT_FALSE(parse_ok(role_with_options("    create_host_user_mode: 'off'\n"))
                   .roles.at("r")
                   .create_host_user_mode);
  EXPECT_FALSE(parse_ok(role_with_options("    create_host_user_mode: false\n"))
                   .roles.at("r")
                   .create_host_user_mode);
  EXPECT_EQ(parse_ok(role_with_options("    create_host_user_mode: drop\n"))
                .roles.at("r")
                .create_host_user_mode,
            "insecure-drop");
}

TEST(Roles, BadHostUserModeIsAnError) {
  EXPECT_EQ(parse_error(role_with_options("    create_host_user_mode: always\n")),
            "roles.d/ci.yaml:6: spec.options.create_host_user_mode: must be keep, insecure-drop or "
            "off, not 'always'");
}

TEST(Roles, MaxSessionTtlIsAGoDuration) {
  EXPECT_EQ(
      parse_ok(role_with_options("    max_session_ttl: 1h30m\n")).roles.at("r").max_session_ttl,
      std::chrono::seconds(5400));
  EXPECT_EQ(parse_ok(role_with_options("    max_session_ttl: 90s\n")).roles.at("r").max_session_ttl,
            std::chrono::seconds(90));
  EXPECT_FALSE(
      parse_ok(role_with_options("    max_session_ttl: 0s\n")).roles.at("r").max_session_ttl);
  std::string error =
      parse_error(role_with_options("    cert_format: standard\n    max_session_ttl: ten hours\n"));
  EXPECT_EQ(error.rfind("roles.d/ci.yaml:7: spec.options.max_session_ttl: ", 0), 0u) << error;
}

TEST(Roles, V3RoleWithLoginsAndNoNodeLabelsGetsEveryNodeAsInTeleport) {
  const std::string v3 =
      "kind: role\nmetadata:\n  name: old\nspec:\n  allow:\n    logins: [ubuntu]\nversion: v3\n";
  EXPECT_TRUE(labels_match(parse_ok(v3).roles.at("old").allow.node_labels, {{"env", "prod"}}, {}));
  std::string v7 = v3;
  v7.replace(v7.find("v3"), 2, "v7");
  EXPECT_TRUE(parse_ok(v7).roles.at("old").allow.node_labels.empty());
}

TEST(Roles, LoginsThatAreNotAListAreAnErrorNamingFileLineAndField) {
  const char* yaml = R"(kind: role
metadata:
  name: ci
  revision: 5a1c2f3e-8c7d-4d39-9b51-1f9c2d0e7a11
spec:
  allow:
    logins: ci
version: v7
)";
  EXPECT_EQ(parse_error(yaml), "roles.d/ci.yaml:7: spec.allow.logins: must be a list of strings");
  const char* nested =
      "kind: role\nmetadata:\n  name: ci\nspec:\n  deny:\n    logins:\n    - [root]\nversion: v7\n";
  EXPECT_EQ(parse_error(nested), "roles.d/ci.yaml:7: spec.deny.logins: must be a list of strings");
}

TEST(Roles, BadTemplateInLoginsIsAnError) {
  const char* yaml =
      "kind: role\nmetadata:\n  name: ci\nspec:\n  allow:\n    logins:\n    - ok\n    - "
      "'{{internal}}'\n"
      "version: v7\n";
  std::string error = parse_error(yaml);
  EXPECT_EQ(error.rfind("roles.d/ci.yaml:8: spec.allow.logins: template expression 'internal'", 0),
            0u)
      << error;
}

TEST(Roles, TemplateInHostGroupsIsDroppedWithANotice) {
  const char* yaml =
      "kind: role\nmetadata:\n  name: ci\nspec:\n  allow:\n    host_groups:\n    - docker\n"
      "    - '{{internal.groups}}'\nversion: v7\n";
  Policy policy = parse_ok(yaml, "roles.d/ci.yaml");
  EXPECT_THAT(policy.roles.at("ci").allow.host_groups, ElementsAre("docker"));
  EXPECT_THAT(policy.notices,
              ElementsAre("roles.d/ci.yaml:8: spec.allow.host_groups: ignoring "
                          "'{{internal.groups}}': trait templates are not supported here"));
}

TEST(Roles, MissingNameIsAnError) {
  EXPECT_EQ(parse_error("kind: role\nversion: v7\nmetadata:\n  description: x\nspec: {}\n"),
            "roles.d/ci.yaml:4: metadata.name: missing");
  EXPECT_EQ(parse_error("kind: role\nversion: v7\nspec: {}\n"),
            "roles.d/ci.yaml:1: metadata.name: missing");
}

TEST(Roles, UnsupportedVersionIsAnError) {
  EXPECT_EQ(parse_error("kind: role\nmetadata:\n  name: r\nversion: v2\n"),
            "roles.d/ci.yaml:4: version: unsupported role version 'v2' (v3 to v8)");
}

TEST(Roles, MalformedYamlIsAnErrorWithItsLine) {
  std::string error =
      parse_error("kind: role\nmetadata:\n  name: ci\nspec:\n  allow:\n    logins: [ci, root\n");
  EXPECT_EQ(error.rfind("roles.d/ci.yaml:7: malformed YAML: ", 0), 0u) << error;
  error = parse_error("kind: role\nmetadata:\n  name: ci\n   bad: indent\n");
  EXPECT_EQ(error.rfind("roles.d/ci.yaml:4: malformed YAML: ", 0), 0u) << error;
}

TEST(Roles, OtherKindsAreSkippedWithANotice) {
  const char* yaml = R"(kind: user
metadata:
  name: alice
spec:
  roles: [access]
version: v2
---
kind: role
metadata:
  name: access
spec:
  allow:
    logins: [ubuntu]
version: v7
---
---
kind: github
metadata:
  name: github
version: v3
)";
  Policy policy = parse_ok(yaml, "roles.d/all.yaml");
  EXPECT_EQ(policy.roles.size(), 1u);
  EXPECT_EQ(policy.roles.at("access").source, "roles.d/all.yaml:8");
  EXPECT_THAT(policy.notices, ElementsAre("roles.d/all.yaml:1: skipping kind 'user'",
                                          "roles.d/all.yaml:17: skipping kind 'github'"));
}

TEST(Roles, DuplicateNamesAreAnErrorNamingBothPlaces) {
  const std::string role = "kind: role\nmetadata:\n  name: ci\nversion: v7\n";
  Policy policy;
  ASSERT_TRUE(parse_resources(role, "roles.d/a.yaml", policy).ok());
  Status status = parse_resources("# again\n" + role, "roles.d/b.yaml", policy);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message,
            "roles.d/b.yaml:4: metadata.name: role 'ci' is already defined at roles.d/a.yaml:1");
  EXPECT_EQ(parse_error(role + "---\n" + role),
            "roles.d/ci.yaml:8: metadata.name: role 'ci' is already defined at "
            "roles.d/ci.yaml:1");
}

TEST(Roles, FileWithAnErrorAddsNothing) {
  Policy policy;
  const std::string yaml =
      "kind: role\nmetadata:\n  name: good\nversion: v7\n---\nkind: user\nmetadata:\n"
      "  name: u\n---\nkind: role\nmetadata:\n  name: bad\nversion: v1\n";
  EXPECT_FALSE(parse_resources(yaml, "roles.d/x.yaml", policy).ok());
  EXPECT_TRUE(policy.roles.empty());
  EXPECT_TRUE(policy.notices.empty());
}

TEST(Roles, TooManyDocumentsIsALimitError) {
  std::string yaml;
  for (std::size_t i = 0; i <= kMaxResources; ++i) yaml += "---\n";
  Policy policy;
  Status status = parse_resources(yaml, "roles.d/many.yaml", policy);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, Errc::limit);
}

// --- locks -------------------------------------------------------------------

TEST(Locks, LockIsReadAsTctlPrintsIt) {
  Lock lock = lock_from("    user: bot-ci\n", "2026-01-02T15:04:05Z");
  EXPECT_EQ(lock.name, "6f0c1d8e-4b2a-4c55-8a0e-2d9b7c3e1f40");
  EXPECT_EQ(lock.source, "locks.d/lock.yaml:1");
  EXPECT_EQ(lock.target.user, "bot-ci");
  EXPECT_EQ(lock.message, "runner compromised");
  EXPECT_EQ(lock.expires, kExpiry);
}

TEST(Locks, UserLockAppliesToThatUserOnly) {
  Lock lock = lock_from("    user: bot-ci\n");
  EXPECT_TRUE(applies(lock));
  Subject other;
  other.user = "bot-other";
  EXPECT_FALSE(applies(lock, other));
}

TEST(Locks, RoleLockAppliesWhenAnyRoleIsIt) {
  Lock lock = lock_from("    role: deploy\n");
  EXPECT_TRUE(applies(lock));
  Subject other;
  other.roles = {"ci"};
  EXPECT_FALSE(applies(lock, other));
  EXPECT_FALSE(lock_applies(lock, LockSubject{"bot-ci", nullptr, "deploy", "my-host", ""}, 0));
}

TEST(Locks, LoginLockAppliesToThatLogin) {
  Lock lock = lock_from("    login: deploy\n");
  EXPECT_TRUE(applies(lock));
  Subject other;
  other.login = "root";
  EXPECT_FALSE(applies(lock, other));
}

TEST(Locks, ServerIdLockAndItsDeprecatedNodeSynonymApplyToThisNode) {
  for (const char* target : {"    server_id: my-host\n", "    node: my-host\n"}) {
    Lock lock = lock_from(target);
    EXPECT_EQ(lock.target.server_id, "my-host");
    EXPECT_TRUE(applies(lock)) << target;
    Subject other;
    other.server_id = "other-host";
    EXPECT_FALSE(applies(lock, other)) << target;
  }
  EXPECT_EQ(
      parse_error(lock_yaml("    node: a\n    server_id: b\n"), "locks.d/l.yaml"),
      "locks.d/l.yaml:10: spec.target.node: differs from server_id, which it is a synonym of");
}

TEST(Locks, BotInstanceLockAppliesToThatInstance) {
  Lock lock = lock_from("    bot_instance_id: 7d3e6a90-1b2c-4d5e-8f90-a1b2c3d4e5f6\n");
  EXPECT_TRUE(applies(lock));
  Subject other;
  other.bot_instance_id = "";
  EXPECT_FALSE(applies(lock, other));
}

TEST(Locks, EveryTargetFieldMustMatch) {
  Lock lock = lock_from("    user: bot-ci\n    login: root\n");
  EXPECT_FALSE(applies(lock));
  Subject root;
  root.login = "root";
  EXPECT_TRUE(applies(lock, root));
}

TEST(Locks, LockStopsApplyingWhenItExpires) {
  Lock lock = lock_from("    user: bot-ci\n", "2026-01-02T15:04:05Z");
  EXPECT_TRUE(applies(lock, {}, kExpiry - 1));
  EXPECT_FALSE(applies(lock, {}, kExpiry));
  EXPECT_FALSE(applies(lock, {}, kExpiry + 86400));
  // A fraction keeps it in force through its last second.
  Lock fractional = lock_from("    user: bot-ci\n", "2026-01-02T15:04:05.250Z");
  EXPECT_TRUE(applies(fractional, {}, kExpiry));
  EXPECT_FALSE(applies(fractional, {}, kExpiry + 1));
  EXPECT_EQ(lock_from("    user: bot-ci\n", "2026-01-02T17:04:05+02:00").expires, kExpiry);
  EXPECT_EQ(lock_from("    user: bot-ci\n", "2026-01-02T10:34:05.000-04:30").expires, kExpiry);
}

TEST(Locks, LockOnSomethingThisNodeCannotSeeNeverApplies) {
  for (const char* target : {"    mfa_device: 3c9d2a10-7e4b-4f6c-9a8d-1b2c3d4e5f60\n",
                             "    user: bot-ci\n    device: d1\n", "    join_token: github-ci\n",
                             "    windows_desktop: desk\n"}) {
    Lock lock = lock_from(target);
    EXPECT_TRUE(lock.target.has_other) << target;
    EXPECT_FALSE(applies(lock)) << target;
  }
}

TEST(Locks, LockWithoutTargetIsAnError) {
  EXPECT_EQ(parse_error(lock_yaml("    user: ''\n"), "locks.d/l.yaml"),
            "locks.d/l.yaml:10: spec.target: names no target");
  EXPECT_EQ(parse_error("kind: lock\nmetadata:\n  name: l\nspec:\n  message: hi\nversion: v2\n",
                        "locks.d/l.yaml"),
            "locks.d/l.yaml:5: spec.target: missing");
}

TEST(Locks, BadExpiresIsAnErrorNamingFileLineAndField) {
  for (const char* bad :
       {"2026-01-02", "2026-01-02 15:04:05Z", "2026-02-30T15:04:05Z", "2026-01-02T24:00:00Z",
        "2026-01-02T15:04:05", "2026-01-02T15:04:05+0200", "2026-01-02T15:04:05.Z"}) {
    EXPECT_EQ(parse_error(lock_yaml("    user: bot-ci\n", bad), "locks.d/l.yaml"),
              "locks.d/l.yaml:8: spec.expires: '" + std::string(bad) +
                  "' is not an RFC 3339 time (like 2026-01-02T15:04:05Z)");
  }
}

// --- load_policy ---------------------------------------------------------------

class LoadPolicy : public ::testing::Test {
 protected:
  std::string dir(const std::string& name) {
    std::string path = tmp_.file(name);
    std::filesystem::create_directories(path);
    return path;
  }
  std::string role(const std::string& name) {
    return "kind: role\nmetadata:\n  name: " + name + "\nversion: v7\n";
  }
  testing::TempDir tmp_;
};

TEST_F(LoadPolicy, ReadsYamlFilesOfBothDirectoriesInNameOrder) {
  std::string roles = dir("roles.d"), locks = dir("locks.d");
  testing::write_file(roles + "/20-b.yml", role("b") + "---\nkind: user\nmetadata:\n  name: u\n");
  testing::write_file(roles + "/10-a.yaml", role("a") + "---\nkind: user\nmetadata:\n  name: u\n");
  testing::write_file(roles + "/30-c.yaml.disabled", "not: [yaml");
  testing::write_file(roles + "/.editor.yaml", "not: [yaml");
  testing::write_file(roles + "/README", "not: [yaml");
  testing::write_file(locks + "/lock.yaml", lock_yaml("    user: bot-ci\n"));
  auto policy = load_policy(roles, locks);
  ASSERT_TRUE(policy.ok()) << policy.error().message;
  EXPECT_EQ(policy->roles.size(), 2u);
  EXPECT_EQ(policy->roles.at("a").source, roles + "/10-a.yaml:1");
  EXPECT_EQ(policy->locks.size(), 1u);
  EXPECT_THAT(policy->notices, ElementsAre(roles + "/10-a.yaml:6: skipping kind 'user'",
                                           roles + "/20-b.yml:6: skipping kind 'user'"));
}

TEST_F(LoadPolicy, MissingDirectoriesAreEmpty) {
  auto policy = load_policy(tmp_.file("no-roles"), tmp_.file("no-locks"));
  ASSERT_TRUE(policy.ok()) << policy.error().message;
  EXPECT_TRUE(policy->roles.empty());
  EXPECT_TRUE(policy->locks.empty());
}

TEST_F(LoadPolicy, LockInRolesDirectoryAndRoleInLocksDirectoryBothLoad) {
  std::string roles = dir("roles.d"), locks = dir("locks.d");
  testing::write_file(roles + "/lock.yaml", lock_yaml("    login: root\n"));
  testing::write_file(locks + "/role.yaml", role("from-locks"));
  auto policy = load_policy(roles, locks);
  ASSERT_TRUE(policy.ok()) << policy.error().message;
  EXPECT_EQ(policy->locks.size(), 1u);
  EXPECT_EQ(policy->roles.count("from-locks"), 1u);
}

TEST_F(LoadPolicy, OneDirectoryForBothIsReadOnce) {
  std::string both = dir("policy.d");
  testing::write_file(both + "/all.yaml", role("a") + "---\n" + lock_yaml("    login: root\n"));
  auto policy = load_policy(both, both + "/");
  ASSERT_TRUE(policy.ok()) << policy.error().message;
  EXPECT_EQ(policy->roles.size(), 1u);
  EXPECT_EQ(policy->locks.size(), 1u);
}

TEST_F(LoadPolicy, ErrorsNameTheFile) {
  std::string roles = dir("roles.d");
  testing::write_file(
      roles + "/ci.yaml",
      "kind: role\nversion: v7\nmetadata:\n  name: ci\nspec:\n  allow:\n    logins: ci\n");
  auto policy = load_policy(roles, tmp_.file("locks.d"));
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.error().message,
            roles + "/ci.yaml:7: spec.allow.logins: must be a list of strings");
}

TEST_F(LoadPolicy, DuplicateAcrossFilesNamesBothFiles) {
  std::string roles = dir("roles.d");
  testing::write_file(roles + "/a.yaml", role("ci"));
  testing::write_file(roles + "/b.yaml", role("ci"));
  auto policy = load_policy(roles, tmp_.file("locks.d"));
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(
      policy.error().message,
      roles + "/b.yaml:3: metadata.name: role 'ci' is already defined at " + roles + "/a.yaml:1");
}

TEST_F(LoadPolicy, UnreadableEntryWithAYamlNameIsAnError) {
  std::string roles = dir("roles.d");
  std::filesystem::create_symlink(tmp_.file("missing"), roles + "/dangling.yaml");
  auto policy = load_policy(roles, tmp_.file("locks.d"));
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.error().code, Errc::io);
}

}  // namespace
}  // namespace machineid
