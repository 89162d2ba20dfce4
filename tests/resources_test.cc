// Teleport role and lock resources read from YAML as `tctl get` prints them:
// every field, every error naming file, line and field, and the bounds on
// hostile YAML.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "fixtures.h"
#include "machineid/node_policy.h"
#include "resource_yaml.h"

namespace machineid {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::lock_yaml;
using testing::parse_error;
using testing::parse_ok;

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
  EXPECT_THAT(ci.allow.host_sudoers(),
              ElementsAre("ALL=(ALL) NOPASSWD: /usr/bin/systemctl restart api"));
  EXPECT_EQ(ci.allow.node_labels.size(), 2u);
  EXPECT_TRUE(
      labels_match(ci.allow.node_labels, {{"env", "staging"}, {"group", "api-servers"}}, {}));
  EXPECT_THAT(ci.deny.logins, ElementsAre("root"));
  EXPECT_TRUE(ci.deny.node_labels.empty());
  EXPECT_STREQ(ci.create_host_user_mode(), "keep");
  EXPECT_EQ(ci.max_session_ttl, std::chrono::hours(8));

  const Role& access = policy.roles.at("access");
  EXPECT_EQ(access.source, "roles.d/dump.yaml:58");
  EXPECT_EQ(access.max_session_ttl, std::chrono::hours(30));
  EXPECT_FALSE(access.create_host_user_mode());
  EXPECT_TRUE(labels_match(access.allow.node_labels, {}, {}));

  const Role& deny = policy.roles.at("no-postgres");
  EXPECT_TRUE(deny.allow.logins.empty());
  EXPECT_THAT(deny.deny.logins, ElementsAre("postgres"));
  EXPECT_TRUE(labels_match(deny.deny.node_labels, {{"env", "prod"}}, {}));
  EXPECT_STREQ(deny.create_host_user_mode(), "insecure-drop");
  EXPECT_EQ(deny.max_session_ttl.count(), 0);
}

std::string role_with_options(const std::string& options) {
  return "kind: role\nmetadata:\n  name: r\nspec:\n  options:\n" + options + "version: v7\n";
}

TEST(Roles, HostUserModeOffAndTeleportsOldDropAreUnderstood) {
  EXPECT_FALSE(parse_ok(role_with_options("    create_host_user_mode: 'off'\n"))
                   .roles.at("r")
                   .create_host_user_mode());
  EXPECT_FALSE(parse_ok(role_with_options("    create_host_user_mode: false\n"))
                   .roles.at("r")
                   .create_host_user_mode());
  EXPECT_STREQ(parse_ok(role_with_options("    create_host_user_mode: drop\n"))
                   .roles.at("r")
                   .create_host_user_mode(),
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
  EXPECT_EQ(
      parse_ok(role_with_options("    max_session_ttl: 0s\n")).roles.at("r").max_session_ttl.count(), 0);
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

TEST(Roles, BadTemplateInLoginsLoadsWithANoticeAndExpandsToNothing) {
  const char* yaml =
      "kind: role\nmetadata:\n  name: ci\nspec:\n  allow:\n    logins:\n    - ok\n    - "
      "'{{internal}}'\n"
      "version: v7\n";
  Policy policy = parse_ok(yaml, "roles.d/ci.yaml");
  EXPECT_THAT(policy.roles.at("ci").allow.logins, ElementsAre("ok", "{{internal}}"));
  ASSERT_EQ(policy.notices.size(), 1u);
  EXPECT_EQ(policy.notices[0].rfind("roles.d/ci.yaml:8: spec.allow.logins: template '{{internal}}'", 0), 0u)
      << policy.notices[0];
}

TEST(Roles, WildcardLoginIsRefusedAsTeleportRefusesIt) {
  const char* yaml = "kind: role\nmetadata:\n  name: ci\nspec:\n  allow:\n    logins: ['*']\nversion: v7\n";
  EXPECT_EQ(parse_error(yaml), "roles.d/ci.yaml:6: spec.allow.logins: the wildcard '*' is not allowed in logins");
}

TEST(Roles, NamespacesAndLabelExpressionsAreRead) {
  const char* yaml = R"(kind: role
metadata:
  name: ci
spec:
  allow:
    namespaces: [default]
    logins: [ci]
    node_labels_expression: labels["env"] == "prod" && contains(user.spec.traits["teams"], labels.team)
  deny:
    namespaces: ['*']
    node_labels_expression: 'labels.env =='
version: v7
)";
  Policy policy = parse_ok(yaml, "roles.d/ci.yaml");
  const Role& ci = policy.roles.at("ci");
  ASSERT_TRUE(ci.allow.rare);
  EXPECT_THAT(ci.allow.rare->namespaces, ElementsAre("default"));
  EXPECT_TRUE(ci.allow.in_default_namespace());
  ASSERT_NE(ci.allow.node_labels_expression(), nullptr);
  EXPECT_TRUE(ci.allow.node_labels_expression()->parsed.has_value());
  EXPECT_TRUE(ci.deny.in_default_namespace());
  // Teleport loads a role whose expression does not parse, warning only.
  ASSERT_NE(ci.deny.node_labels_expression(), nullptr);
  EXPECT_FALSE(ci.deny.node_labels_expression()->parsed.has_value());
  EXPECT_FALSE(ci.deny.node_labels_expression()->error.empty());
  ASSERT_EQ(policy.notices.size(), 1u);
  EXPECT_EQ(policy.notices[0].rfind("roles.d/ci.yaml:11: spec.deny.node_labels_expression: ", 0), 0u)
      << policy.notices[0];
  Policy other = parse_ok("kind: role\nmetadata:\n  name: o\nspec:\n  allow:\n    namespaces: [apps]\nversion: v7\n");
  EXPECT_FALSE(other.roles.at("o").allow.in_default_namespace());
}

TEST(Roles, TemplatesInHostGroupsAndSudoersAreKeptForEachRequest) {
  const char* yaml =
      "kind: role\nmetadata:\n  name: ci\nspec:\n  allow:\n    host_groups:\n    - docker\n"
      "    - '{{external.groups}}'\n    host_sudoers:\n    - '{{external.sudo}}'\nversion: v7\n";
  Policy policy = parse_ok(yaml, "roles.d/ci.yaml");
  EXPECT_THAT(policy.roles.at("ci").allow.host_groups, ElementsAre("docker", "{{external.groups}}"));
  EXPECT_THAT(policy.roles.at("ci").allow.host_sudoers(), ElementsAre("{{external.sudo}}"));
  EXPECT_THAT(policy.notices, IsEmpty());
}

TEST(Roles, MissingNameIsAnError) {
  EXPECT_EQ(parse_error("kind: role\nversion: v7\nmetadata:\n  description: x\nspec: {}\n"),
            "roles.d/ci.yaml:4: metadata.name: missing");
  EXPECT_EQ(parse_error("kind: role\nversion: v7\nspec: {}\n"),
            "roles.d/ci.yaml:1: metadata.name: missing");
}

TEST(Roles, UnsupportedVersionIsAnError) {
  EXPECT_EQ(parse_error("kind: role\nmetadata:\n  name: r\nversion: v2\n"),
            "roles.d/ci.yaml:4: version: unsupported role version 'v2' (v3 to v9)");
  EXPECT_EQ(parse_ok("kind: role\nmetadata:\n  name: r\nversion: v9\n").roles.count("r"), 1u);
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

TEST(Roles, DuplicateNamesBreakTheRoleAndNameBothPlaces) {
  const std::string role = "kind: role\nmetadata:\n  name: ci\nversion: v7\n";
  Policy policy;
  ASSERT_TRUE(parse_resources(role, "roles.d/a.yaml", policy).ok());
  ASSERT_TRUE(parse_resources("# again\n" + role, "roles.d/b.yaml", policy).ok());
  EXPECT_EQ(policy.roles.count("ci"), 0u);
  ASSERT_EQ(policy.broken_roles.count("ci"), 1u);
  EXPECT_EQ(policy.broken_roles.at("ci"), "defined twice, at roles.d/a.yaml:1 and at roles.d/b.yaml:2");
  EXPECT_EQ(parse_error(role + "---\n" + role),
            "roles.d/ci.yaml:8: metadata.name: role 'ci' is defined twice in this file");
}

TEST(Roles, ABadDocumentHurtsOnlyWhatItDefines) {
  Policy policy;
  const std::string yaml =
      "kind: role\nmetadata:\n  name: good\nversion: v7\n---\nkind: user\nmetadata:\n"
      "  name: u\n---\nkind: role\nmetadata:\n  name: bad\nversion: v1\n";
  Status status = parse_resources(yaml, "roles.d/x.yaml", policy);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "roles.d/x.yaml:13: version: unsupported role version 'v1' (v3 to v9)");
  EXPECT_EQ(policy.roles.count("good"), 1u);
  EXPECT_EQ(policy.broken_roles.count("bad"), 1u);
  EXPECT_THAT(policy.role_errors, ElementsAre(status.error().message));
  EXPECT_THAT(policy.lock_errors, IsEmpty());
}

// Documents are built one at a time from their own text: anchors within a
// later document, directives before one, and each document's line numbers
// are as the whole stream has them.
TEST(Roles, EachDocumentOfAStreamIsReadAsTheStreamHasIt) {
  Policy policy;
  const std::string yaml =
      "kind: role\nmetadata:\n  name: a\nversion: v7\nspec:\n  allow:\n    logins: [x]\n"
      "---\nkind: role\nmetadata:\n  name: b\nversion: v7\nspec:\n  allow:\n    logins: &l [y, z]\n"
      "  deny:\n    logins: *l\n";
  ASSERT_TRUE(parse_resources(yaml, "roles.d/x.yaml", policy).ok());
  ASSERT_EQ(policy.roles.count("b"), 1u);
  EXPECT_THAT(policy.roles.at("b").deny.logins, ElementsAre("y", "z"));
  Policy with_directive;
  ASSERT_TRUE(parse_resources("%YAML 1.2\n---\n" + yaml, "roles.d/y.yaml", with_directive).ok());
  EXPECT_EQ(with_directive.roles.size(), 2u);
  EXPECT_EQ(parse_error("kind: role\nmetadata: {name: a}\nversion: v7\n---\n---\nkind: role\nmetadata: {name: b}\n"
                        "version: v7\nspec:\n  allow:\n    logins: x\n"),
            "roles.d/ci.yaml:11: spec.allow.logins: must be a list of strings");
}

TEST(Roles, AFileThatIsNotYamlLoadsNothingAndIsRecordedByItsKind) {
  Policy policy;
  EXPECT_FALSE(parse_resources("kind: role\nmetadata: [x\n", "roles.d/x.yaml", policy).ok());
  EXPECT_TRUE(policy.roles.empty());
  EXPECT_EQ(policy.role_errors.size(), 1u);
  EXPECT_FALSE(parse_resources("kind: lock\nspec: [x\n", "locks.d/x.yaml", policy, ResourceFile::locks).ok());
  EXPECT_EQ(policy.lock_errors.size(), 1u);
}

TEST(Roles, TooManyDocumentsIsALimitError) {
  std::string yaml;
  for (std::size_t i = 0; i <= kMaxResources; ++i) yaml += "---\n";
  Policy policy;
  Status status = parse_resources(yaml, "roles.d/many.yaml", policy);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, Errc::limit);
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
  EXPECT_EQ(policy.roles.size(), 2u);
  EXPECT_EQ(policy.roles.at("a").source, roles + "/10-a.yaml:1");
  EXPECT_EQ(policy.locks.size(), 1u);
  EXPECT_THAT(policy.notices, ElementsAre(roles + "/10-a.yaml:6: skipping kind 'user'",
                                           roles + "/20-b.yml:6: skipping kind 'user'"));
}

TEST_F(LoadPolicy, MissingDirectoriesAreEmpty) {
  auto policy = load_policy(tmp_.file("no-roles"), tmp_.file("no-locks"));
  EXPECT_TRUE(policy.roles.empty());
  EXPECT_TRUE(policy.locks.empty());
}

TEST_F(LoadPolicy, LockInRolesDirectoryAndRoleInLocksDirectoryBothLoad) {
  std::string roles = dir("roles.d"), locks = dir("locks.d");
  testing::write_file(roles + "/lock.yaml", lock_yaml("    login: root\n"));
  testing::write_file(locks + "/role.yaml", role("from-locks"));
  auto policy = load_policy(roles, locks);
  EXPECT_EQ(policy.locks.size(), 1u);
  EXPECT_EQ(policy.roles.count("from-locks"), 1u);
}

TEST_F(LoadPolicy, OneDirectoryForBothIsReadOnce) {
  std::string both = dir("policy.d");
  testing::write_file(both + "/all.yaml", role("a") + "---\n" + lock_yaml("    login: root\n"));
  auto policy = load_policy(both, both + "/");
  EXPECT_EQ(policy.roles.size(), 1u);
  EXPECT_EQ(policy.locks.size(), 1u);
}

TEST_F(LoadPolicy, ErrorsNameTheFile) {
  std::string roles = dir("roles.d");
  testing::write_file(
      roles + "/ci.yaml",
      "kind: role\nversion: v7\nmetadata:\n  name: ci\nspec:\n  allow:\n    logins: ci\n");
  auto policy = load_policy(roles, tmp_.file("locks.d"));
  EXPECT_THAT(policy.role_errors, ElementsAre(roles + "/ci.yaml:7: spec.allow.logins: must be a list of strings"));
  EXPECT_EQ(policy.broken_roles.count("ci"), 1u);
}

TEST_F(LoadPolicy, DuplicateAcrossFilesNamesBothFiles) {
  std::string roles = dir("roles.d");
  testing::write_file(roles + "/a.yaml", role("ci"));
  testing::write_file(roles + "/b.yaml", role("ci"));
  auto policy = load_policy(roles, tmp_.file("locks.d"));
  EXPECT_THAT(policy.role_errors, ElementsAre(roles + "/b.yaml:1: metadata.name: role 'ci' defined twice, at " +
                                              roles + "/a.yaml:1 and at " + roles + "/b.yaml:1"));
}

TEST_F(LoadPolicy, UnreadableEntryWithAYamlNameIsAnError) {
  std::string roles = dir("roles.d");
  std::filesystem::create_symlink(tmp_.file("missing"), roles + "/dangling.yaml");
  testing::write_file(roles + "/ok.yaml", role("ok"));
  auto policy = load_policy(roles, tmp_.file("locks.d"));
  ASSERT_EQ(policy.role_errors.size(), 1u);
  EXPECT_EQ(policy.role_errors[0].rfind(roles + "/dangling.yaml: ", 0), 0u) << policy.role_errors[0];
  EXPECT_EQ(policy.roles.count("ok"), 1u);
}

TEST_F(LoadPolicy, BadLockFileIsALockErrorWhateverItHolds) {
  std::string locks = dir("locks.d");
  testing::write_file(locks + "/bad.yaml", "not: [yaml");
  auto policy = load_policy(tmp_.file("roles.d"), locks);
  EXPECT_EQ(policy.lock_errors.size(), 1u);
  EXPECT_THAT(policy.role_errors, IsEmpty());
}

TEST_F(LoadPolicy, BestEffortKeepsTheLastGoodLocksStrictDoesNot) {
  std::string locks = dir("locks.d");
  NodePolicy np;
  np.config.policy.roles_dir = tmp_.file("roles.d");
  np.config.policy.locks_dir = locks;
  testing::write_file(locks + "/a.yaml", lock_yaml("    user: bot-ci\n"));
  load_roles_and_locks(np, nullptr);
  ASSERT_EQ(np.policy.locks.size(), 1u);
  NodePolicy last_good;
  last_good.policy = np.policy;
  testing::write_file(locks + "/a.yaml", lock_yaml("    usr: bot-ci\n"));
  np.config.policy.lock_mode = LockMode::best_effort;
  load_roles_and_locks(np, &last_good);
  EXPECT_EQ(np.policy.locks.size(), 1u);
  EXPECT_EQ(np.policy.lock_errors.size(), 1u);
  np.config.policy.lock_mode = LockMode::strict;
  load_roles_and_locks(np, &last_good);
  EXPECT_TRUE(np.policy.locks.empty());
  EXPECT_EQ(np.policy.lock_errors.size(), 1u);
}

// --- hostile YAML ------------------------------------------------------------

TEST(HostileYaml, AliasBombIsRefusedBeforeItIsBuilt) {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 12; ++i)
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + [&] {
      std::string items;
      for (int k = 0; k < 10; ++k) items += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
      return items;
    }() + "]\n";
  Policy policy;
  Status status = parse_resources(yaml, "roles.d/bomb.yaml", policy);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, Errc::limit);
  EXPECT_NE(status.error().message.find("aliases expand to more than"), std::string::npos) << status.error().message;
  EXPECT_EQ(policy.role_errors.size(), 1u);
}

TEST(HostileYaml, AFewAliasesAreFine) {
  const char* yaml = R"(kind: role
metadata:
  name: a
spec:
  allow:
    logins: &logins [ubuntu, deploy]
  deny:
    logins: *logins
version: v7
)";
  Policy policy = parse_ok(yaml);
  EXPECT_THAT(policy.roles.at("a").deny.logins, ElementsAre("ubuntu", "deploy"));
}

TEST(HostileYaml, DeepNestingIsRefused) {
  std::string yaml = std::string(200, '[') + std::string(200, ']') + "\n";
  Policy policy;
  Status status = parse_resources(yaml, "roles.d/deep.yaml", policy);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("nested deeper than"), std::string::npos) << status.error().message;
}

TEST(HostileYaml, DuplicateKeyIsAnErrorNamingItsLine) {
  const char* yaml = R"(kind: role
metadata:
  name: ci
spec:
  allow:
    logins: [ci]
  deny:
    logins: [root]
  deny: {}
version: v7
)";
  EXPECT_EQ(parse_error(yaml), "roles.d/ci.yaml:9: duplicate key 'deny'");
}

}  // namespace
}  // namespace machineid
