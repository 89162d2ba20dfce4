// A Teleport user CA rotation as a node sees it: the user CA file that
// `tctl auth export --type=user` prints in each phase, and which
// certificates `machineidctl verify` then lets in.
//
// standby (before)  old key only           certificates signed by the old key
// init              old and new keys       still signed by the old key
// update_clients    old and new keys       tbot now gets certificates from the new key
// update_servers    old and new keys       both kinds still in use
// standby (after)   new key only           only the new key's certificates log in
// rollback          old and new keys       (from any phase before standby)
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "fixtures.h"

namespace machineid {
namespace {

using testing::CertSpec;
using testing::run;
using testing::write_file;

constexpr const char* kCtl = MID_BIN_DIR "/machineidctl";
constexpr const char* kNow = "1767227400";  // 2026-01-01T00:30:00Z
constexpr const char* kCluster = "example.teleport.sh";

// The line `tctl auth export --type=user` prints for one CA key.
std::string export_line(const std::string& pub_path) {
  std::string pub = testing::read_file(pub_path);
  std::string type = pub.substr(0, pub.find(' '));
  std::string rest = pub.substr(pub.find(' ') + 1);
  std::string base64 = rest.substr(0, rest.find_first_of(" \n"));
  return "cert-authority " + type + " " + base64 + " clustername=" + kCluster + "&type=user\n";
}

class CaRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_ca = kg.make_key("old-ca");
    new_ca = kg.make_key("new-ca");
    user = kg.make_key("user");
    const auto& d = kg.dir();
    mkdir(d.file("roles.d").c_str(), 0755);
    write_file(
        d.file("roles.d/ci.yaml"),
        "kind: role\nversion: v7\nmetadata:\n  name: ci\nspec:\n  allow:\n    logins: [deploy]\n"
        "    node_labels:\n      '*': '*'\n");
    ca_file = d.file("user_ca.pub");
    config = d.file("verifierd.toml");
    write_file(config, std::string("[cluster]\nname = \"") + kCluster + "\"\nuser_ca_file = \"" +
                           ca_file + "\"\n[policy]\nroles_dir = \"" + d.file("roles.d") +
                           "\"\nlocks_dir = \"" + d.file("locks.d") + "\"\n");
    old_cert = sign(old_ca, 1);
    new_cert = sign(new_ca, 2);
  }

  std::string sign(const std::string& ca, std::uint64_t serial) {
    CertSpec spec{.ca = ca, .key = user + ".pub"};
    spec.principals = {"deploy"};
    spec.validity = "20260101000000:20260101010000";
    spec.serial = serial;
    spec.options = {R"(extension:teleport-roles={"version":"v1","roles":["ci"]})",
                    "extension:impersonator=bot-ci"};
    return kg.sign(spec);
  }

  // The CA file in a phase: the keys `tctl auth export --type=user` lists.
  void phase(const std::vector<std::string>& cas) {
    std::string content;
    for (const auto& ca : cas) content += export_line(ca + ".pub");
    write_file(ca_file, content);
  }

  // "allow", or the reason of the denial.
  std::string decide(const std::string& cert) {
    auto r = run({kCtl, "verify", "--config", config, "--cert", cert, "--login", "deploy", "--at",
                  kNow, "--json"});
    EXPECT_TRUE(r.status == 0 || r.status == 1) << r.output;
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    if (j.is_discarded()) return "unreadable: " + r.output;
    return j["decision"] == "allow" ? "allow" : j["reason"].get<std::string>();
  }

  std::string fingerprint(const std::string& cert) {
    auto r = run({kCtl, "verify", "--config", config, "--cert", cert, "--login", "deploy", "--at",
                  kNow, "--json"});
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    return j.is_discarded() ? "" : j["ca_fingerprint"].get<std::string>();
  }

  testing::Keygen kg;
  std::string old_ca, new_ca, user, ca_file, config, old_cert, new_cert;
};

TEST_F(CaRotationTest, EveryPhaseTrustsExactlyTheKeysTheClusterExports) {
  // standby, before the rotation: only the old key.
  phase({old_ca});
  EXPECT_EQ(decide(old_cert), "allow");
  EXPECT_EQ(decide(new_cert), "ca_untrusted");

  // init, update_clients, update_servers: both keys are trusted, so the
  // bots that already have new certificates and those still holding old
  // ones both log in, whichever order the file lists the keys in.
  for (const char* name : {"init", "update_clients", "update_servers"}) {
    SCOPED_TRACE(name);
    phase({old_ca, new_ca});
    EXPECT_EQ(decide(old_cert), "allow");
    EXPECT_EQ(decide(new_cert), "allow");
    phase({new_ca, old_ca});
    EXPECT_EQ(decide(old_cert), "allow");
    EXPECT_EQ(decide(new_cert), "allow");
  }

  // Each certificate is verified against the key that signed it.
  phase({old_ca, new_ca});
  EXPECT_NE(fingerprint(old_cert), fingerprint(new_cert));

  // standby, after: the old key is gone, and with it every certificate it signed.
  phase({new_ca});
  EXPECT_EQ(decide(old_cert), "ca_untrusted");
  EXPECT_EQ(decide(new_cert), "allow");
}

TEST_F(CaRotationTest, RollbackTrustsBothKeysUntilItCompletes) {
  phase({old_ca, new_ca});  // rollback from update_clients
  EXPECT_EQ(decide(old_cert), "allow");
  EXPECT_EQ(decide(new_cert), "allow");
  phase({old_ca});  // rollback done: standby on the old key
  EXPECT_EQ(decide(old_cert), "allow");
  EXPECT_EQ(decide(new_cert), "ca_untrusted");
}

TEST_F(CaRotationTest, AnotherClustersKeyInTheFileIsRefused) {
  // The file must only hold this cluster's user CA: a line naming another
  // cluster makes the file unusable (exit 2), not one more trusted key.
  std::string other = export_line(new_ca + ".pub");
  other.replace(other.find(kCluster), std::string(kCluster).size(), "other.teleport.sh");
  write_file(ca_file, export_line(old_ca + ".pub") + other);
  auto r = run(
      {kCtl, "verify", "--config", config, "--cert", new_cert, "--login", "deploy", "--at", kNow});
  EXPECT_NE(r.status, 0) << r.output;
}

}  // namespace
}  // namespace machineid
