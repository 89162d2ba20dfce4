// SPEC §4, rule by rule, in both directions, with certificates from ssh-keygen.
#include <gtest/gtest.h>
#include <sodium.h>

#include "fixtures.h"
#include "machineid/decision.h"
#include "machineid/resources.h"
#include "machineid/encoding.h"

namespace machineid {
namespace {

using testing::CertSpec;

// 2026-01-01T00:30:00Z, inside the default window below.
constexpr std::int64_t kNow = 1767227400;
constexpr const char* kWindow = "20260101000000:20260101010000";
const std::string kRoles = R"(extension:teleport-roles={"version":"v1","roles":["ci"]})";

constexpr const char* kCiRole = R"(
kind: role
version: v7
metadata:
  name: ci
spec:
  options:
    create_host_user_mode: keep
  allow:
    logins: ['root', '{{internal.logins}}']
    node_labels:
      env: prod
    host_groups: ['docker']
  deny:
    logins: ['postgres']
)";

class DecisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca = kg.make_key("ca");
    user = kg.make_key("user");
    np.config.cluster.name = "example.teleport.sh";
    np.config.node.name = "api-1";
    np.config.node.labels = {{"env", "prod"}, {"group", "api"}};
    trust({ca});
    add_resources(kCiRole);
  }

  void trust(const std::vector<std::string>& cas) {
    std::string text;
    for (const auto& c : cas) text += testing::read_file(c + ".pub");
    auto set = CaSet::parse(text, "user_ca.pub", np.config.cluster.name);
    ASSERT_TRUE(set.ok()) << set.error().message;
    np.cas = std::move(*set);
  }

  void add_resources(const std::string& yaml) {
    auto ok = parse_resources(yaml, "test.yaml", np.policy);
    ASSERT_TRUE(ok.ok()) << ok.error().message;
  }

  // A bot certificate for role "ci" valid over kWindow, with changes.
  CertSpec bot() {
    CertSpec spec{.ca = ca, .key = user + ".pub"};
    spec.identity = "bot-ci";
    spec.validity = kWindow;
    spec.principals = {"root", "deploy"};
    spec.options = {kRoles, "extension:impersonator=bot-ci"};
    return spec;
  }

  Decision decide_for(const CertSpec& spec, const std::string& login = "root",
                      std::optional<std::string> source = std::nullopt, std::int64_t now = kNow) {
    blob = testing::read_key_blob(kg.sign(spec));
    return decide(Request{blob, login, std::move(source), now, std::nullopt, /*explain=*/true}, np);
  }

  static std::string why(const Decision& d) {
    return std::string(reason_code(d.reason)) + ": " + d.detail;
  }

  testing::Keygen kg;
  std::string ca, user;
  NodePolicy np;
  ByteVector blob;
};

#define EXPECT_ALLOWED(d) EXPECT_TRUE((d).allowed) << why(d)
#define EXPECT_DENIED(d, r)          \
  do {                               \
    Decision d_ = (d);               \
    EXPECT_FALSE(d_.allowed);        \
    EXPECT_EQ(d_.reason, r) << why(d_); \
  } while (0)

TEST_F(DecisionTest, BotWithMatchingRoleIsAllowed) {
  Decision d = decide_for(bot());
  EXPECT_ALLOWED(d);
  EXPECT_EQ(d.reason, Reason::ok);
  EXPECT_EQ(d.identity->bot, "ci");
  EXPECT_EQ(d.granting_roles, std::vector<std::string>{"ci"});
  EXPECT_EQ(d.create_host_user_mode, "keep");
  EXPECT_EQ(d.host_groups, std::vector<std::string>{"docker"});
  EXPECT_EQ(d.ca_fingerprint, fingerprint_sha256(testing::read_key_blob(ca + ".pub")));
  EXPECT_EQ(d.checks.size(), 11u);
  for (const auto& c : d.checks) EXPECT_TRUE(c.passed) << c.rule << ": " << c.detail;
}

TEST_F(DecisionTest, WithoutExplainOnlyTheRulesThatFailedAreRecorded) {
  blob = testing::read_key_blob(kg.sign(bot()));
  Decision allowed = decide(Request{blob, "root", std::nullopt, kNow}, np);
  EXPECT_TRUE(allowed.allowed) << allowed.detail;
  EXPECT_TRUE(allowed.checks.empty());
  Decision denied = decide(Request{blob, "root", std::nullopt, kNow + 86400}, np);
  EXPECT_DENIED(denied, Reason::expired);
  ASSERT_EQ(denied.checks.size(), 1u);
  EXPECT_EQ(denied.checks[0].rule, "validity");
  EXPECT_FALSE(denied.checks[0].passed);
  EXPECT_EQ(denied.checks[0].detail, denied.detail);
}

// Rule 1
TEST_F(DecisionTest, MalformedCertificateIsDeniedAsParse) {
  ByteVector garbage = {0, 0, 0, 3, 'a', 'b'};
  Decision d = decide(Request{garbage, "root", std::nullopt, kNow}, np);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, Reason::parse);
  EXPECT_FALSE(d.cert.has_value());
  ASSERT_EQ(d.checks.size(), 1u);
}

TEST_F(DecisionTest, MalformedTeleportRolesExtensionIsDeniedAsParse) {
  CertSpec spec = bot();
  spec.options = {"extension:teleport-roles={not json"};
  EXPECT_DENIED(decide_for(spec), Reason::parse);
}

// Rule 2
TEST_F(DecisionTest, HostCertificateIsDenied) {
  CertSpec spec = bot();
  spec.host = true;
  spec.options = {};
  EXPECT_DENIED(decide_for(spec), Reason::cert_type);
}

// Rule 3
TEST_F(DecisionTest, CertificateFromAnotherCaIsDenied) {
  CertSpec spec = bot();
  spec.ca = kg.make_key("rogue");
  Decision d = decide_for(spec);
  EXPECT_DENIED(d, Reason::ca_untrusted);
  EXPECT_NE(d.detail.find("not a trusted user CA"), std::string::npos);
}

TEST_F(DecisionTest, BothKeysOfARotationAreTrusted) {
  std::string next = kg.make_key("next", "ecdsa", 384);
  trust({ca, next});
  EXPECT_ALLOWED(decide_for(bot()));
  CertSpec spec = bot();
  spec.ca = next;
  EXPECT_ALLOWED(decide_for(spec));
}

TEST_F(DecisionTest, RsaCaWithSha2IsAllowedAndWithSha1Denied) {
  std::string rsa = kg.make_key("rsa-ca", "rsa", 2048);
  trust({rsa});
  CertSpec spec = bot();
  spec.ca = rsa;
  for (std::string alg : {"rsa-sha2-256", "rsa-sha2-512"}) {
    spec.signature_algorithm = alg;
    EXPECT_ALLOWED(decide_for(spec));
  }
  spec.signature_algorithm = "ssh-rsa";
  Decision d = decide_for(spec);
  EXPECT_DENIED(d, Reason::ca_untrusted);
  EXPECT_NE(d.detail.find("SHA-1"), std::string::npos);
}

TEST_F(DecisionTest, RsaCaBelow2048BitsIsDenied) {
  std::string weak = kg.make_key("weak-ca", "rsa", 1024);
  trust({weak});
  CertSpec spec = bot();
  spec.ca = weak;
  Decision d = decide_for(spec);
  EXPECT_DENIED(d, Reason::ca_untrusted);
  EXPECT_NE(d.detail.find("1024 bits"), std::string::npos);
}

TEST_F(DecisionTest, TamperedSignatureIsDenied) {
  decide_for(bot());
  ByteVector tampered = blob;
  tampered[tampered.size() - 1] ^= 1;  // last byte of the Ed25519 signature
  Decision d = decide(Request{tampered, "root", std::nullopt, kNow}, np);
  EXPECT_DENIED(d, Reason::ca_untrusted);
}

TEST_F(DecisionTest, CaThatIsItselfACertificateIsDenied) {
  // ssh-keygen will not sign with a certificate, so build one by hand: a
  // certificate whose signature key is a (real) certificate blob.
  decide_for(bot());
  auto inner = parse_certificate(blob);
  ASSERT_TRUE(inner.ok());
  ByteVector pk(crypto_sign_PUBLICKEYBYTES), sk(crypto_sign_SECRETKEYBYTES);
  ASSERT_EQ(sodium_init() < 0, false);
  crypto_sign_keypair(pk.data(), sk.data());
  WireWriter w;
  w.string(inner->type_name).string(inner->nonce).string(inner->key.material).u64(1).u32(kUserCert);
  WireWriter principals;
  principals.string("root");
  w.string("bot-ci").string(principals.bytes()).u64(inner->valid_after).u64(inner->valid_before);
  w.string(ByteVector{}).string(ByteVector{}).string(ByteVector{}).string(inner->blob);
  ByteVector sig(crypto_sign_BYTES);
  crypto_sign_detached(sig.data(), nullptr, w.bytes().data(), w.bytes().size(), sk.data());
  WireWriter sigblob;
  sigblob.string("ssh-ed25519").string(sig);
  w.string(sigblob.bytes());
  ByteVector crafted = w.take();
  ASSERT_TRUE(parse_certificate(crafted).ok());
  Decision d = decide(Request{crafted, "root", std::nullopt, kNow}, np);
  EXPECT_DENIED(d, Reason::ca_untrusted);
  EXPECT_NE(d.detail.find("itself a certificate"), std::string::npos) << d.detail;
}

// Rule 4
TEST_F(DecisionTest, ValidityWindowHonoursClockSkewAtBothEnds) {
  const std::int64_t after = 1767225600, before = 1767229200, skew = 60;
  EXPECT_ALLOWED(decide_for(bot(), "root", std::nullopt, after - skew));
  EXPECT_DENIED(decide_for(bot(), "root", std::nullopt, after - skew - 1), Reason::not_yet_valid);
  EXPECT_ALLOWED(decide_for(bot(), "root", std::nullopt, before + skew - 1));
  EXPECT_DENIED(decide_for(bot(), "root", std::nullopt, before + skew), Reason::expired);
}

// Rule 5
TEST_F(DecisionTest, LifetimeUpToMaxTtlPlusOneMinuteIsAllowed) {
  CertSpec spec = bot();
  spec.validity = "20260101000000:20260102000100";  // 24h + 1m
  EXPECT_ALLOWED(decide_for(spec, "root", std::nullopt, kNow));
  spec.validity = "20260101000000:20260102000101";  // one second more
  EXPECT_DENIED(decide_for(spec, "root", std::nullopt, kNow), Reason::ttl_too_long);
}

TEST_F(DecisionTest, ForeverCertificateIsDenied) {
  CertSpec spec = bot();
  spec.validity = "20260101000000:forever";
  Decision d = decide_for(spec);
  EXPECT_DENIED(d, Reason::ttl_too_long);
  EXPECT_NE(d.detail.find("forever"), std::string::npos);
}

// Rule 6
TEST_F(DecisionTest, UnknownCriticalOptionIsDenied) {
  CertSpec spec = bot();
  spec.options.push_back("critical:verify-required");
  EXPECT_DENIED(decide_for(spec), Reason::critical_option);
  spec = bot();
  spec.options.push_back("force-command=/usr/bin/backup");
  EXPECT_ALLOWED(decide_for(spec));
}

TEST_F(DecisionTest, SourceAddressMustContainTheKnownSource) {
  CertSpec spec = bot();
  spec.options.push_back("source-address=10.1.0.0/16,192.0.2.7");
  EXPECT_ALLOWED(decide_for(spec, "root", "10.1.2.3"));
  EXPECT_ALLOWED(decide_for(spec, "root", "192.0.2.7"));
  EXPECT_ALLOWED(decide_for(spec, "root", std::nullopt));  // source unknown
  EXPECT_DENIED(decide_for(spec, "root", "10.2.0.1"), Reason::critical_option);
}

// Rule 7
TEST_F(DecisionTest, CertificateRoutedToAnotherClusterIsDenied) {
  CertSpec spec = bot();
  spec.options.push_back("extension:teleport-route-to-cluster=other.teleport.sh");
  EXPECT_DENIED(decide_for(spec), Reason::cluster);
  spec = bot();
  spec.options.push_back("extension:teleport-route-to-cluster=example.teleport.sh");
  EXPECT_ALLOWED(decide_for(spec));
}

// Rule 8
TEST_F(DecisionTest, LoginMustBeAPrincipalExactly) {
  EXPECT_DENIED(decide_for(bot(), "Root"), Reason::principal);
  EXPECT_DENIED(decide_for(bot(), "roo"), Reason::principal);
  CertSpec spec = bot();
  spec.principals = {"-teleport-internal-join", "root"};
  EXPECT_DENIED(decide_for(spec, "-teleport-internal-join"), Reason::principal);
  EXPECT_ALLOWED(decide_for(spec, "root"));
}

TEST_F(DecisionTest, CertificateWithoutPrincipalsIsDenied) {
  CertSpec spec = bot();
  spec.principals = {};
  Decision d = decide_for(spec);
  EXPECT_DENIED(d, Reason::principal);
  EXPECT_NE(d.detail.find("no principals"), std::string::npos);
}

// Rule 9
TEST_F(DecisionTest, RevokedSerialIsDeniedAndOthersAllowed) {
  CertSpec spec = bot();
  spec.serial = 7;
  auto krl = Krl::load(kg.make_krl("krl", "serial: 7\n", ca + ".pub"));
  ASSERT_TRUE(krl.ok()) << krl.error().message;
  np.krl = std::make_shared<const Krl>(std::move(*krl));
  EXPECT_DENIED(decide_for(spec), Reason::revoked);
  spec.serial = 8;
  EXPECT_ALLOWED(decide_for(spec));
}

TEST_F(DecisionTest, RevokedKeyIdIsDenied) {
  auto krl = Krl::load(kg.make_krl("krl", "id: bot-ci\n", ca + ".pub"));
  ASSERT_TRUE(krl.ok()) << krl.error().message;
  np.krl = std::make_shared<const Krl>(std::move(*krl));
  EXPECT_DENIED(decide_for(bot()), Reason::revoked);
}

TEST_F(DecisionTest, UnusableKrlDeniesEverything) {
  np.krl_error = "revoked.krl: bad magic";
  Decision d = decide_for(bot());
  EXPECT_DENIED(d, Reason::revoked);
  EXPECT_NE(d.detail.find("denying every certificate"), std::string::npos);
}

// Rule 10
TEST_F(DecisionTest, LocksOnEachTargetDeny) {
  CertSpec spec = bot();
  spec.options.push_back("extension:bot-instance-id@goteleport.com=5b3c");
  EXPECT_ALLOWED(decide_for(spec));
  for (std::string target : {"user: bot-ci", "role: ci", "login: root", "server_id: api-1", "bot_instance_id: 5b3c"}) {
    SCOPED_TRACE(target);
    add_resources("kind: lock\nversion: v2\nmetadata:\n  name: l1\nspec:\n  target:\n    " + target +
                  "\n  message: incident 42\n");
    Decision d = decide_for(spec);
    EXPECT_DENIED(d, Reason::locked);
    EXPECT_NE(d.detail.find("incident 42"), std::string::npos);
    np.policy.locks.clear();
  }
}

TEST_F(DecisionTest, ExpiredLockOrLockOnSomeoneElseDoesNotDeny) {
  add_resources(
      "kind: lock\nversion: v2\nmetadata:\n  name: old\nspec:\n  target:\n    user: bot-ci\n"
      "  expires: \"2025-12-31T00:00:00Z\"\n---\n"
      "kind: lock\nversion: v2\nmetadata:\n  name: other\nspec:\n  target:\n    user: bot-other\n");
  EXPECT_ALLOWED(decide_for(bot()));
}

// Rule 11
// Teleport refuses a role set it cannot fetch whole (FetchRoles).
TEST_F(DecisionTest, RoleWithoutLocalDefinitionDeniesTheWholeRoleSet) {
  CertSpec spec = bot();
  spec.options = {R"(extension:teleport-roles={"roles":["unknown"]})"};
  Decision d = decide_for(spec);
  EXPECT_DENIED(d, Reason::role);
  EXPECT_NE(d.detail.find("role 'unknown' is not defined on this node"), std::string::npos) << d.detail;
  spec.options = {R"(extension:teleport-roles={"roles":["ci","unknown"]})"};
  d = decide_for(spec);
  EXPECT_DENIED(d, Reason::role);
  EXPECT_NE(d.detail.find("'unknown'"), std::string::npos) << d.detail;
}

TEST_F(DecisionTest, LockThatDoesNotLoadDeniesEverythingInStrictMode) {
  (void)parse_resources("kind: lock\nversion: v2\nmetadata: {name: typo}\nspec: {target: {usr: bot-x}}\n",
                        "locks.d/typo.yaml", np.policy, ResourceFile::locks);
  ASSERT_EQ(np.policy.lock_errors.size(), 1u);
  Decision d = decide_for(bot());
  EXPECT_DENIED(d, Reason::locked);
  EXPECT_NE(d.detail.find("locks.d/typo.yaml:4: spec.target.usr: unknown lock target field"), std::string::npos)
      << d.detail;
  np.config.policy.lock_mode = LockMode::best_effort;
  EXPECT_ALLOWED(decide_for(bot()));
}

TEST_F(DecisionTest, DenyRuleWinsOverAllow) {
  CertSpec spec = bot();
  spec.principals = {"postgres"};
  add_resources("kind: role\nversion: v7\nmetadata:\n  name: db\nspec:\n  allow:\n    logins: [postgres]\n"
                "    node_labels: {'*': '*'}\n");
  spec.options = {R"(extension:teleport-roles={"roles":["db"]})"};
  EXPECT_ALLOWED(decide_for(spec, "postgres"));
  spec.options = {R"(extension:teleport-roles={"roles":["db","ci"]})"};
  Decision d = decide_for(spec, "postgres");
  EXPECT_DENIED(d, Reason::role);
  EXPECT_NE(d.detail.find("role 'ci' denies"), std::string::npos);
}

TEST_F(DecisionTest, NodeLabelsMustMatch) {
  np.config.node.labels = {{"env", "staging"}};
  EXPECT_DENIED(decide_for(bot()), Reason::role);
}

TEST_F(DecisionTest, EmptyAllowNodeLabelsMatchNoNode) {
  add_resources("kind: role\nversion: v7\nmetadata:\n  name: nolabels\nspec:\n  allow:\n    logins: [root]\n");
  CertSpec spec = bot();
  spec.options = {R"(extension:teleport-roles={"roles":["nolabels"]})"};
  EXPECT_DENIED(decide_for(spec), Reason::role);
}

TEST_F(DecisionTest, LoginsExpandFromCertificateTraits) {
  CertSpec spec = bot();
  spec.options = {kRoles, R"(extension:teleport-traits={"logins":["deploy"]})"};
  EXPECT_ALLOWED(decide_for(spec, "deploy"));
  spec.options = {kRoles};
  EXPECT_DENIED(decide_for(spec, "deploy"), Reason::role);
}

TEST_F(DecisionTest, PrincipalsModeSkipsRoles) {
  np.config.policy.mode = PolicyMode::principals;
  CertSpec spec = bot();
  spec.options = {};
  EXPECT_ALLOWED(decide_for(spec, "deploy"));
}

TEST_F(DecisionTest, FirstFailingRuleInSpecOrderIsTheReason) {
  CertSpec spec = bot();
  spec.ca = kg.make_key("rogue");
  spec.principals = {"nobody"};
  Decision d = decide_for(spec, "root", std::nullopt, kNow + 86400);
  EXPECT_DENIED(d, Reason::ca_untrusted);
  int failures = 0;
  for (const auto& c : d.checks) failures += c.passed ? 0 : 1;
  EXPECT_GE(failures, 3);  // ca, validity, principal (and roles) all reported
}

}  // namespace
}  // namespace machineid
