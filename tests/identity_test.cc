// The Teleport identity read from real ssh-keygen certificates' extensions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fixtures.h"
#include "machineid/cert.h"
#include "machineid/identity.h"

namespace machineid {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

class ReadIdentity : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = keygen_.make_key("ca");
    user_ = keygen_.make_key("user");
  }

  // A user certificate with key id `identity` and the given -O options.
  Certificate certificate(const std::string& identity, const std::vector<std::string>& options) {
    testing::CertSpec spec;
    spec.ca = ca_;
    spec.key = user_ + ".pub";
    spec.identity = identity;
    spec.options = options;
    auto cert = parse_certificate_text(testing::read_file(keygen_.sign(spec)));
    EXPECT_TRUE(cert.ok()) << cert.error().message;
    return cert.ok() ? *cert : Certificate{};
  }

  Identity identity(const std::string& key_id, const std::vector<std::string>& options) {
    auto id = read_identity(certificate(key_id, options));
    EXPECT_TRUE(id.ok()) << id.error().message;
    return id.ok() ? *id : Identity{};
  }

  Error error(const std::vector<std::string>& options) {
    auto id = read_identity(certificate("alice", options));
    EXPECT_FALSE(id.ok());
    return id.ok() ? Error{} : id.error();
  }

  testing::Keygen keygen_;
  std::string ca_, user_;
};

TEST_F(ReadIdentity, PlainCertificateGivesTheKeyIdAndNothingElse) {
  Identity id = identity("alice", {});
  EXPECT_EQ(id.user, "alice");
  EXPECT_THAT(id.roles, IsEmpty());
  EXPECT_THAT(id.traits, IsEmpty());
  EXPECT_FALSE(id.route_to_cluster);
  EXPECT_FALSE(id.bot);
  EXPECT_FALSE(id.bot_instance_id);
}

TEST_F(ReadIdentity, RolesAreReadFromVersionedJson) {
  Identity id =
      identity("alice", {R"(extension:teleport-roles={"version":"v1","roles":["ci","deploy"]})"});
  EXPECT_THAT(id.roles, ElementsAre("ci", "deploy"));
}

TEST_F(ReadIdentity, RolesAreReadWithoutVersion) {
  EXPECT_THAT(identity("alice", {R"(extension:teleport-roles={"roles":["access"]})"}).roles,
              ElementsAre("access"));
}

TEST_F(ReadIdentity, TraitsAreReadAndNullMeansNoValues) {
  Identity id = identity(
      "alice",
      {R"(extension:teleport-traits={"logins":["ubuntu","root"],"kubernetes_groups":null,"email":["a@b.c"]})"});
  EXPECT_THAT(id.traits,
              ElementsAre(Pair("email", ElementsAre("a@b.c")), Pair("kubernetes_groups", IsEmpty()),
                          Pair("logins", ElementsAre("ubuntu", "root"))));
}

TEST_F(ReadIdentity, RouteToClusterIsRead) {
  EXPECT_EQ(identity("alice", {"extension:teleport-route-to-cluster=example.teleport.sh"})
                .route_to_cluster,
            "example.teleport.sh");
}

TEST_F(ReadIdentity, BotKeyIdImpersonatedByItselfIsABot) {
  Identity id = identity("bot-ci", {"extension:impersonator=bot-ci"});
  EXPECT_EQ(id.user, "bot-ci");
  EXPECT_EQ(id.bot, "ci");
}

TEST_F(ReadIdentity, BotKeyIdAloneOrImpersonatedBySomeoneElseIsNotABot) {
  EXPECT_FALSE(identity("bot-ci", {}).bot);
  EXPECT_FALSE(identity("bot-ci", {"extension:impersonator=alice"}).bot);
  EXPECT_FALSE(identity("alice", {"extension:impersonator=alice"}).bot);
}

TEST_F(ReadIdentity, BotNameExtensionNamesTheBot) {
  EXPECT_EQ(identity("bot-ci", {"extension:bot-name@goteleport.com=ci-runner"}).bot, "ci-runner");
  // An empty name comes from the key id.
  EXPECT_EQ(identity("bot-ci", {"extension:bot-name@goteleport.com"}).bot, "ci");
  EXPECT_EQ(identity("ci", {"extension:bot-name@goteleport.com="}).bot, "ci");
}

TEST_F(ReadIdentity, BotInstanceIdIsRead) {
  Identity id = identity(
      "bot-ci", {"extension:impersonator=bot-ci",
                 "extension:bot-instance-id@goteleport.com=7d3e6a90-1b2c-4d5e-8f90-a1b2c3d4e5f6"});
  EXPECT_EQ(id.bot_instance_id, "7d3e6a90-1b2c-4d5e-8f90-a1b2c3d4e5f6");
}

TEST_F(ReadIdentity, MalformedRolesAreAnErrorNamingTheExtension) {
  for (const char* bad :
       {R"(extension:teleport-roles={"roles":["ci")", R"(extension:teleport-roles=["ci"])",
        R"(extension:teleport-roles={"version":"v1"})",
        R"(extension:teleport-roles={"roles":"ci"})",
        R"(extension:teleport-roles={"roles":["ci",7]})"}) {
    Error e = error({bad});
    EXPECT_EQ(e.code, Errc::malformed) << bad;
    EXPECT_THAT(e.message, ::testing::StartsWith("extension teleport-roles: ")) << bad;
  }
  EXPECT_EQ(error({R"(extension:teleport-roles={"version":"v2","roles":[]})"}).code,
            Errc::unsupported);
}

TEST_F(ReadIdentity, MalformedTraitsAreAnErrorNamingTheExtension) {
  for (const char* bad : {"extension:teleport-traits=logins", R"(extension:teleport-traits=["x"])",
                          R"(extension:teleport-traits={"logins":"root"})",
                          R"(extension:teleport-traits={"logins":[1]})"}) {
    Error e = error({bad});
    EXPECT_EQ(e.code, Errc::malformed) << bad;
    EXPECT_THAT(e.message, ::testing::StartsWith("extension teleport-traits: ")) << bad;
  }
}

TEST_F(ReadIdentity, TooManyRolesOrTraitValuesAreLimitErrors) {
  std::string roles = R"(extension:teleport-roles={"roles":[)";
  for (std::size_t i = 0; i <= kMaxRoles; ++i)
    roles += (i ? ",\"r" : "\"r") + std::to_string(i) + "\"";
  EXPECT_EQ(error({roles + "]}"}).code, Errc::limit);

  std::string values = R"(extension:teleport-traits={"a":[)";
  for (std::size_t i = 0; i <= kMaxTraitValues; ++i) values += i ? ",\"v\"" : "\"v\"";
  EXPECT_EQ(error({values + "]}"}).code, Errc::limit);
}

// The JSON is read as Go's encoding/json reads what Teleport writes: escapes
// and surrogate pairs decoded, other members skipped, nothing after the
// object, no invalid UTF-8.
TEST_F(ReadIdentity, ExtensionJsonIsReadStrictly) {
  Identity id = identity("alice", {R"(extension:teleport-roles={"roles":["c\u0069","x\/y"],"extra":{"n":[1,-2.5e3,true,null]}})",
                                   R"(extension:teleport-traits={"email":["a\u00e9@x","\ud83d\ude00"],"none":null})"});
  EXPECT_THAT(id.roles, ::testing::ElementsAre("ci", "x/y"));
  EXPECT_THAT(id.traits.at("email"), ::testing::ElementsAre("a\xC3\xA9@x", "\xF0\x9F\x98\x80"));
  EXPECT_THAT(id.traits.at("none"), IsEmpty());
  for (const char* bad : {R"(extension:teleport-roles={"roles":["ci"]} x)", R"(extension:teleport-roles={"roles":["\ud83d"]})",
                          "extension:teleport-roles={\"roles\":[\"\xC3\"]}", R"(extension:teleport-roles={"roles":["a\qb"]})",
                          R"(extension:teleport-roles={"roles":["ci"],})"}) {
    EXPECT_EQ(error({bad}).code, Errc::malformed) << bad;
  }
}

TEST_F(ReadIdentity, LockTargetExtensionsAreRead) {
  Identity id = identity("bot-ci", {"extension:mfa-verified=dev-9", "extension:teleport-device-id=d1",
                                    "extension:join-token@goteleport.com=tok",
                                    R"(extension:teleport-active-requests={"access_requests":["r1","r2"]})"});
  EXPECT_EQ(id.mfa_device, "dev-9");
  EXPECT_EQ(id.device_id, "d1");
  EXPECT_EQ(id.join_token, "tok");
  EXPECT_THAT(id.access_requests, ::testing::ElementsAre("r1", "r2"));
}

}  // namespace
}  // namespace machineid
