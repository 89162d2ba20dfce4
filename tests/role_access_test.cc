// SPEC §4 rule 11 as Teleport's RoleSet.checkAccess decides a node login.
// The first cases are Teleport's own TestCheckAccessToServer
// (lib/services/role_test.go) for the nodes this product can be — a node is
// always in the "default" namespace here — then greedy deny, whole role sets,
// label expressions and host-user settings. Certificates come from
// ssh-keygen with the extensions Teleport's sshca.Identity.Encode writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fixtures.h"
#include "machineid/decision.h"
#include "machineid/resources.h"

namespace machineid {
namespace {

using testing::CertSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const NodeLabels kNoLabels = {};
const NodeLabels kWorker = {{"role", "worker"}, {"status", "follower"}};
const NodeLabels kDb = {{"role", "db"}, {"status", "follower"}};
const NodeLabels kDbWithSuffix = {{"role", "db01"}, {"status", "follower01"}};

// A v6 role as Teleport's test helper newRole makes it: node_labels
// '*': '*' and namespaces ['*'] unless `body` says otherwise.
std::string role(const std::string& name, const std::string& allow, const std::string& deny = "",
                 const std::string& options = "") {
  std::string yaml = "kind: role\nversion: v6\nmetadata:\n  name: " + name + "\nspec:\n";
  if (!options.empty()) yaml += "  options:\n" + options;
  yaml += std::string("  allow:\n") + (allow.find("node_labels") == std::string::npos ? "    node_labels: {'*': '*'}\n" : "") +
          (allow.find("namespaces") == std::string::npos ? "    namespaces: ['*']\n" : "") + allow;
  if (!deny.empty()) yaml += "  deny:\n" + deny;
  return yaml;
}

class RoleAccess : public ::testing::Test {
 protected:
  void SetUp() override {
    ca = kg.make_key("ca");
    user = kg.make_key("user");
    np.config.cluster.name = "example.teleport.sh";
    np.config.node.name = "node-1";
    auto set = CaSet::parse(testing::read_file(ca + ".pub"), "user_ca.pub", np.config.cluster.name);
    ASSERT_TRUE(set.ok()) << set.error().message;
    np.cas = std::move(*set);
  }

  void load(const std::vector<std::string>& documents) {
    np.policy = Policy{};
    std::string yaml;
    for (const auto& d : documents) yaml += "---\n" + d;
    auto ok = parse_resources(yaml, "roles.yaml", np.policy);
    ASSERT_TRUE(ok.ok()) << ok.error().message;
  }

  // A certificate holding `roles` with `traits` (JSON), for every login asked.
  void holding(const std::vector<std::string>& roles, const std::string& traits = "") {
    std::string list;
    for (const auto& r : roles) list += (list.empty() ? "\"" : ",\"") + r + "\"";
    CertSpec spec{.ca = ca, .key = user + ".pub"};
    spec.identity = "bot-ci";
    spec.principals = {"root", "admin", "deploy", "postgres", "alice", "ubuntu"};
    spec.options = {"extension:teleport-roles={\"version\":\"v1\",\"roles\":[" + list + "]}",
                    "extension:impersonator=bot-ci"};
    if (!traits.empty()) spec.options.push_back("extension:teleport-traits=" + traits);
    blob = testing::read_key_blob(kg.sign(spec));
  }

  Decision decide_on(const NodeLabels& labels, const std::string& login) {
    np.config.node.labels = labels;
    return decide(Request{blob, login, std::nullopt, std::time(nullptr)}, np);
  }
  bool allowed(const NodeLabels& labels, const std::string& login) {
    Decision d = decide_on(labels, login);
    if (!d.allowed) {
      EXPECT_EQ(d.reason, Reason::role) << d.detail;  // nothing but rule 11 may deny here
    }
    return d.allowed;
  }

  testing::Keygen kg;
  std::string ca, user;
  NodePolicy np;
  ByteVector blob;
};

// TestCheckAccessToServer: "empty role set has access to nothing".
TEST_F(RoleAccess, EmptyRoleSetHasAccessToNothing) {
  load({});
  holding({});
  EXPECT_FALSE(allowed(kNoLabels, "root"));
  EXPECT_FALSE(allowed(kWorker, "root"));
}

// "role is limited to default namespace".
TEST_F(RoleAccess, RoleIsLimitedToDefaultNamespace) {
  load({role("r", "    logins: [admin]\n    namespaces: [default]\n")});
  holding({"r"});
  EXPECT_FALSE(allowed(kNoLabels, "root"));
  EXPECT_TRUE(allowed(kNoLabels, "admin"));
  EXPECT_FALSE(allowed(kWorker, "root"));
  EXPECT_TRUE(allowed(kWorker, "admin"));
}

// "role is limited to labels in default namespace".
TEST_F(RoleAccess, RoleIsLimitedToLabels) {
  load({role("r", "    logins: [admin]\n    node_labels: {role: [worker]}\n")});
  holding({"r"});
  EXPECT_FALSE(allowed(kNoLabels, "root"));
  EXPECT_FALSE(allowed(kNoLabels, "admin"));
  EXPECT_FALSE(allowed(kWorker, "root"));
  EXPECT_TRUE(allowed(kWorker, "admin"));
  EXPECT_FALSE(allowed(kDb, "admin"));
}

// "role matches any label out of multiple labels".
TEST_F(RoleAccess, RoleMatchesAnyValueOutOfSeveral) {
  load({role("r", "    logins: [admin]\n    node_labels: {role: [worker2, worker]}\n")});
  holding({"r"});
  EXPECT_FALSE(allowed(kNoLabels, "admin"));
  EXPECT_TRUE(allowed(kWorker, "admin"));
  EXPECT_FALSE(allowed(kWorker, "root"));
  EXPECT_FALSE(allowed(kDb, "admin"));
}

// "node_labels with empty list value matches nothing".
TEST_F(RoleAccess, EmptyListValueMatchesNothing) {
  load({role("r", "    logins: [admin]\n    node_labels: {role: []}\n")});
  holding({"r"});
  EXPECT_FALSE(allowed(kNoLabels, "admin"));
  EXPECT_FALSE(allowed(kWorker, "admin"));
  EXPECT_FALSE(allowed(kDb, "admin"));
}

// "one role is more permissive than another".
TEST_F(RoleAccess, OneRoleMorePermissiveThanAnother) {
  load({role("a", "    logins: [admin]\n    namespaces: [default]\n    node_labels: {role: [worker]}\n"),
        role("b", "    logins: [root, admin]\n")});
  holding({"a", "b"});
  for (const auto* labels : {&kNoLabels, &kWorker, &kDb}) {
    EXPECT_TRUE(allowed(*labels, "root"));
    EXPECT_TRUE(allowed(*labels, "admin"));
  }
}

// "one role needs to access servers sharing the partially same label value".
TEST_F(RoleAccess, RegexAndGlobValuesMatchPartiallySharedValues) {
  load({role("r", "    logins: [admin]\n    node_labels: {role: ['^db(.*)$'], status: ['follow*']}\n")});
  holding({"r"});
  EXPECT_FALSE(allowed(kNoLabels, "admin"));
  EXPECT_FALSE(allowed(kWorker, "admin"));
  EXPECT_FALSE(allowed(kDb, "root"));
  EXPECT_TRUE(allowed(kDb, "admin"));
  EXPECT_TRUE(allowed(kDbWithSuffix, "admin"));
  EXPECT_FALSE(allowed(kDbWithSuffix, "root"));
}

// "no logins means no access".
TEST_F(RoleAccess, NoLoginsMeansNoAccess) {
  load({role("r", "    logins: []\n")});
  holding({"r"});
  EXPECT_FALSE(allowed(kNoLabels, "root"));
  EXPECT_FALSE(allowed(kWorker, "admin"));
}

// Deny rules are greedy: a deny node matcher alone denies, whatever the
// login, and deny.logins alone denies, whatever the labels.
TEST_F(RoleAccess, DenyNodeLabelsAloneDenyEveryLogin) {
  load({role("access", "    logins: [root, admin]\n"), role("no-prod", "", "    node_labels: {env: prod}\n")});
  holding({"access", "no-prod"});
  Decision d = decide_on({{"env", "prod"}}, "admin");
  EXPECT_FALSE(d.allowed);
  EXPECT_THAT(d.detail, HasSubstr("role 'no-prod' denies this node (deny.node_labels)"));
  EXPECT_TRUE(allowed({{"env", "dev"}}, "admin"));
}

TEST_F(RoleAccess, DenyLoginsAloneDenyOnEveryNode) {
  load({role("access", "    logins: [root, postgres]\n"), role("no-pg", "", "    logins: [postgres]\n")});
  holding({"access", "no-pg"});
  for (const auto* labels : {&kNoLabels, &kWorker}) {
    Decision d = decide_on(*labels, "postgres");
    EXPECT_FALSE(d.allowed);
    EXPECT_THAT(d.detail, HasSubstr("role 'no-pg' denies login 'postgres' (deny.logins)"));
    EXPECT_TRUE(allowed(*labels, "root"));
  }
}

TEST_F(RoleAccess, DenyByLabelsOrExpressionEitherIsEnough) {
  load({role("access", "    logins: [root]\n"),
        role("deny", "", "    node_labels: {env: prod}\n    node_labels_expression: 'labels.team == \"db\"'\n")});
  holding({"access", "deny"});
  EXPECT_FALSE(allowed({{"env", "prod"}, {"team", "web"}}, "root"));
  EXPECT_FALSE(allowed({{"env", "dev"}, {"team", "db"}}, "root"));
  EXPECT_TRUE(allowed({{"env", "dev"}, {"team", "web"}}, "root"));
}

TEST_F(RoleAccess, DenyInAnotherNamespaceDoesNotApply) {
  load({role("access", "    logins: [root]\n"),
        role("deny", "", "    namespaces: [apps]\n    node_labels: {'*': '*'}\n    logins: [root]\n")});
  holding({"access", "deny"});
  EXPECT_TRUE(allowed(kWorker, "root"));
}

TEST_F(RoleAccess, AllowNeedsLabelsAndExpressionWhenBothAreSet) {
  load({role("r", "    logins: [root]\n    node_labels: {env: prod}\n"
                  "    node_labels_expression: 'contains(user.spec.traits[\"teams\"], labels[\"team\"])'\n")});
  holding({"r"}, R"({"teams":["api"]})");
  EXPECT_TRUE(allowed({{"env", "prod"}, {"team", "api"}}, "root"));
  EXPECT_FALSE(allowed({{"env", "prod"}, {"team", "web"}}, "root"));
  EXPECT_FALSE(allowed({{"env", "dev"}, {"team", "api"}}, "root"));
}

TEST_F(RoleAccess, AllowByExpressionAlone) {
  load({role("r", "    logins: [root]\n    node_labels: {}\n    node_labels_expression: 'labels.env == \"prod\"'\n")});
  holding({"r"});
  EXPECT_TRUE(allowed({{"env", "prod"}}, "root"));
  EXPECT_FALSE(allowed({{"env", "dev"}}, "root"));
}

// An expression that fails to evaluate makes Teleport deny the request,
// even when another role would allow it.
TEST_F(RoleAccess, ExpressionThatFailsDeniesTheRequest) {
  load({role("bad", "    logins: [root]\n    node_labels: {}\n"
                    "    node_labels_expression: 'contains(email.local(user.spec.traits.email), \"x\")'\n"),
        role("access", "    logins: [root]\n")});
  holding({"bad", "access"}, R"({"email":["not-an-address"]})");
  Decision d = decide_on(kWorker, "root");
  EXPECT_FALSE(d.allowed);
  EXPECT_THAT(d.detail, HasSubstr("role 'bad': allow: evaluating node_labels_expression"));
  // The same role set with the role that allows first: Teleport stops there.
  holding({"access", "bad"}, R"({"email":["not-an-address"]})");
  EXPECT_TRUE(allowed(kWorker, "root"));
}

TEST_F(RoleAccess, ExpressionThatDoesNotParseLoadsAndDeniesWhenReached) {
  load({role("bad", "    logins: [root]\n    node_labels: {}\n    node_labels_expression: 'labels.env =='\n")});
  holding({"bad"});
  Decision d = decide_on(kWorker, "root");
  EXPECT_FALSE(d.allowed);
  EXPECT_THAT(d.detail, HasSubstr("node_labels_expression does not parse"));
}

// Teleport refuses a role set it cannot fetch whole.
TEST_F(RoleAccess, AnUndefinedOrBrokenRoleDeniesTheWholeSet) {
  np.policy = Policy{};
  (void)parse_resources(role("access", "    logins: [root]\n") + "---\n" +
                            "kind: role\nversion: v7\nmetadata: {name: broken}\nspec: {allow: {logins: root}}\n",
                        "roles.yaml", np.policy);
  holding({"access"});
  EXPECT_TRUE(allowed(kWorker, "root"));
  holding({"access", "missing"});
  EXPECT_THAT(decide_on(kWorker, "root").detail, HasSubstr("role 'missing' is not defined on this node"));
  holding({"access", "broken"});
  EXPECT_THAT(decide_on(kWorker, "root").detail, HasSubstr("role 'broken' did not load"));
}

TEST_F(RoleAccess, TemplatesExpandFromTheCertificatesTraits) {
  load({role("r", "    logins: ['{{internal.logins}}', '{{email.local(external.email)}}']\n"
                  "    node_labels: {team: '{{external.teams}}'}\n",
             "    logins: ['{{external.banned}}']\n")});
  holding({"r"}, R"({"logins":["ubuntu"],"email":["alice@example.com"],"teams":["api"],"banned":["ubuntu"]})");
  EXPECT_FALSE(allowed({{"team", "api"}}, "ubuntu"));  // deny.logins expands too
  EXPECT_TRUE(allowed({{"team", "api"}}, "alice"));
  EXPECT_FALSE(allowed({{"team", "web"}}, "alice"));
}

// Teleport's HostUsers: every role matching the node must enable host users.
TEST_F(RoleAccess, HostUserSettingsComeFromEveryRoleMatchingTheNode) {
  load({role("bot", "    logins: [deploy]\n    host_groups: [docker, '{{external.group}}']\n"
                    "    host_sudoers: ['ALL=(ALL) NOPASSWD: ALL']\n",
             "", "    create_host_user_mode: keep\n"),
        role("extra", "    logins: []\n    node_labels: {env: prod}\n    host_groups: [adm]\n", "",
             "    create_host_user_mode: insecure-drop\n")});
  holding({"bot", "extra"}, R"({"group":["ci"]})");
  Decision d = decide_on({{"env", "dev"}}, "deploy");
  ASSERT_TRUE(d.allowed) << d.detail;
  EXPECT_EQ(d.create_host_user_mode, "keep");
  EXPECT_THAT(d.host_groups, ElementsAre("docker", "ci"));
  EXPECT_THAT(d.host_sudoers, ElementsAre("ALL=(ALL) NOPASSWD: ALL"));
  d = decide_on({{"env", "prod"}}, "deploy");
  ASSERT_TRUE(d.allowed) << d.detail;
  EXPECT_EQ(d.create_host_user_mode, "keep");  // keep wins over insecure-drop
  EXPECT_THAT(d.host_groups, ElementsAre("docker", "ci", "adm"));
  load({role("bot", "    logins: [deploy]\n", "", "    create_host_user_mode: keep\n"),
        role("plain", "    logins: [root]\n")});
  holding({"bot", "plain"});
  d = decide_on(kWorker, "deploy");
  ASSERT_TRUE(d.allowed) << d.detail;
  EXPECT_FALSE(d.create_host_user_mode) << "a matching role without create_host_user_mode prevents host users";
}

// Role options combine as Teleport's SSHPortForwardMode, CheckAgentForward,
// PermitX11Forwarding and AdjustSessionTTL combine them.
TEST_F(RoleAccess, SessionOptionsCombineAsTeleport) {
  load({role("plain", "    logins: [root]\n")});
  holding({"plain"});
  Decision d = decide_on(kWorker, "root");
  ASSERT_TRUE(d.allowed) << d.detail;
  EXPECT_EQ(d.session.port_forwarding, PortForwarding::on);
  EXPECT_FALSE(d.session.agent_forwarding);
  EXPECT_FALSE(d.session.x11_forwarding);
  EXPECT_THAT(authorized_keys_options(d), ::testing::StartsWith("no-agent-forwarding,no-X11-forwarding,expiry-time=\""));

  load({role("a", "    logins: [root]\n", "", "    port_forwarding: false\n    forward_agent: true\n    max_session_ttl: 8h\n"),
        role("b", "    logins: [deploy]\n", "", "    permit_x11_forwarding: true\n    max_session_ttl: 2h\n")});
  holding({"a", "b"});
  d = decide_on(kWorker, "root");
  ASSERT_TRUE(d.allowed) << d.detail;
  EXPECT_EQ(d.session.port_forwarding, PortForwarding::off);
  EXPECT_TRUE(d.session.agent_forwarding);
  EXPECT_TRUE(d.session.x11_forwarding);
  EXPECT_EQ(d.session.max_session_ttl, std::chrono::hours(2));
  EXPECT_THAT(authorized_keys_options(d), ::testing::StartsWith("no-port-forwarding,expiry-time=\""));
  // Agent forwarding needs a role that forwards it and holds the login.
  d = decide_on(kWorker, "deploy");
  ASSERT_TRUE(d.allowed) << d.detail;
  EXPECT_FALSE(d.session.agent_forwarding);

  // A legacy allow wins; an explicit ssh_port_forwarding deny beats a legacy one.
  load({role("a", "    logins: [root]\n", "", "    port_forwarding: false\n"),
        role("b", "    logins: [root]\n", "", "    port_forwarding: true\n")});
  holding({"a", "b"});
  EXPECT_EQ(decide_on(kWorker, "root").session.port_forwarding, PortForwarding::on);
  load({role("a", "    logins: [root]\n", "", "    ssh_port_forwarding: {remote: {enabled: false}}\n")});
  holding({"a"});
  d = decide_on(kWorker, "root");
  EXPECT_EQ(d.session.port_forwarding, PortForwarding::local_only);
  EXPECT_THAT(authorized_keys_options(d), ::testing::StartsWith("no-port-forwarding,"));
}

}  // namespace
}  // namespace machineid
