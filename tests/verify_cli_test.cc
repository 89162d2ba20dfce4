// machineidctl verify as SPEC §5 describes it: flags, exit codes, --json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "fixtures.h"

namespace machineid {
namespace {

using testing::CertSpec;
using testing::run;
using testing::write_file;

constexpr const char* kCtl = MID_BIN_DIR "/machineidctl";
constexpr const char* kNow = "1767227400";  // 2026-01-01T00:30:00Z

class VerifyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca = kg.make_key("ca");
    user = kg.make_key("user");
    const auto& d = kg.dir();
    mkdir(d.file("roles.d").c_str(), 0755);
    mkdir(d.file("locks.d").c_str(), 0755);
    write_file(d.file("user_ca.pub"), testing::read_file(ca + ".pub"));
    write_file(d.file("roles.d/ci.yaml"),
               "kind: role\nversion: v7\nmetadata:\n  name: ci\nspec:\n  allow:\n    logins: [root]\n"
               "    node_labels:\n      env: prod\n");
    config = d.file("verifierd.toml");
    write_file(config, "[cluster]\nname = \"example.teleport.sh\"\nuser_ca_file = \"" + d.file("user_ca.pub") +
                           "\"\n[node]\nname = \"api-1\"\nlabels = { env = \"prod\" }\n[policy]\nroles_dir = \"" +
                           d.file("roles.d") + "\"\nlocks_dir = \"" + d.file("locks.d") + "\"\nrevoked_keys = \"" +
                           d.file("revoked.krl") + "\"\n");
    CertSpec spec{.ca = ca, .key = user + ".pub"};
    spec.validity = "20260101000000:20260101010000";
    spec.serial = 9;
    spec.options = {R"(extension:teleport-roles={"version":"v1","roles":["ci"]})", "extension:impersonator=bot-ci"};
    cert = kg.sign(spec);
  }

  testing::RunResult verify(std::vector<std::string> extra) {
    std::vector<std::string> argv = {kCtl, "verify", "--config", config, "--at", kNow};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv);
  }

  testing::Keygen kg;
  std::string ca, user, config, cert;
};

TEST_F(VerifyCliTest, AllowedExitsZeroAndListsEveryRule) {
  auto r = verify({"--cert", cert, "--login", "root"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind("allow: login 'root'\n", 0), 0u) << r.output;
  for (std::string rule : {"parse", "cert_type", "ca", "validity", "ttl", "critical_options", "cluster", "principal",
                           "revocation", "locks", "roles"})
    EXPECT_NE(r.output.find("  ok    " + rule), std::string::npos) << rule << "\n" << r.output;
}

TEST_F(VerifyCliTest, DeniedExitsOneNamingTheRule) {
  auto r = verify({"--cert", cert, "--login", "admin"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(r.output.rfind("deny: login 'admin': principal: ", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("  FAIL  principal"), std::string::npos);
}

TEST_F(VerifyCliTest, JsonObjectHasTheContractFields) {
  auto r = verify({"--cert", cert, "--login", "root", "--json"});
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["decision"], "allow");
  EXPECT_EQ(j["reason"], "ok");
  EXPECT_EQ(j["login"], "root");
  EXPECT_EQ(j["key_id"], "bot-ci");
  EXPECT_EQ(j["bot"], "ci");
  EXPECT_EQ(j["roles"], nlohmann::json::array({"ci"}));
  EXPECT_EQ(j["serial"], 9);
  std::string fp = testing::run_ok({"ssh-keygen", "-l", "-E", "sha256", "-f", ca + ".pub"});
  fp = fp.substr(fp.find(' ') + 1);
  EXPECT_EQ(j["ca_fingerprint"], fp.substr(0, fp.find(' ')));
  EXPECT_EQ(j.size(), 8u);
}

TEST_F(VerifyCliTest, JsonForUnparsableCertificateHasNulls) {
  write_file(kg.dir().file("junk"), "ssh-ed25519-cert-v01@openssh.com AAAAC3NzaC1lZDI1NTE5\n");
  auto r = verify({"--cert", kg.dir().file("junk"), "--login", "root", "--json"});
  EXPECT_EQ(r.status, 1) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["decision"], "deny");
  EXPECT_EQ(j["reason"], "parse");
  EXPECT_TRUE(j["key_id"].is_null());
  EXPECT_TRUE(j["bot"].is_null());
  EXPECT_TRUE(j["serial"].is_null());
  EXPECT_TRUE(j["ca_fingerprint"].is_null());
}

TEST_F(VerifyCliTest, AcceptsAnSshAuthInfoLine) {
  std::istringstream in(testing::read_file(cert));
  std::string type, b64;
  in >> type >> b64;
  write_file(kg.dir().file("auth_info"), "publickey " + type + " " + b64 + "\n");
  auto r = verify({"--cert", kg.dir().file("auth_info"), "--login", "root"});
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST_F(VerifyCliTest, FromIsCheckedAgainstSourceAddress) {
  CertSpec spec{.ca = ca, .key = user + ".pub"};
  spec.validity = "20260101000000:20260101010000";
  spec.options = {R"(extension:teleport-roles={"roles":["ci"]})", "source-address=192.0.2.0/24"};
  std::string limited = kg.sign(spec);
  EXPECT_EQ(verify({"--cert", limited, "--login", "root", "--from", "192.0.2.9"}).status, 0);
  auto r = verify({"--cert", limited, "--login", "root", "--from", "198.51.100.1", "--json"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(nlohmann::json::parse(r.output)["reason"], "critical_option");
}

TEST_F(VerifyCliTest, AtMovesTheClock) {
  auto r = run({kCtl, "verify", "--config", config, "--cert", cert, "--login", "root", "--at", "1767312000", "--json"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(nlohmann::json::parse(r.output)["reason"], "expired");
}

// --at takes RFC 3339 as well as unix seconds: "Z" or a numeric offset,
// the same instant either way.
TEST_F(VerifyCliTest, AtTakesRfc3339WithOffsets) {
  auto at = [&](const std::string& time) {
    return run({kCtl, "verify", "--config", config, "--cert", cert, "--login", "root", "--json", "--at", time});
  };
  for (std::string same : {"2026-01-01T00:30:00Z", "2026-01-01T01:30:00+01:00", "2025-12-31T19:30:00-05:00",
                           "2026-01-01T00:30:00.5Z"}) {
    auto r = at(same);
    EXPECT_EQ(r.status, 0) << same << ": " << r.output;
    EXPECT_EQ(nlohmann::json::parse(r.output)["reason"], "ok") << same;
  }
  auto later = at("2026-01-01T03:00:00+01:00");  // 02:00Z, an hour after valid_before
  EXPECT_EQ(later.status, 1) << later.output;
  EXPECT_EQ(nlohmann::json::parse(later.output)["reason"], "expired");
  auto earlier = at("2025-12-31T23:00:00Z");
  EXPECT_EQ(earlier.status, 1) << earlier.output;
  EXPECT_EQ(nlohmann::json::parse(earlier.output)["reason"], "not_yet_valid");
  for (std::string bad : {"soon", "2026-01-01", "2026-13-01T00:00:00Z", "2026-01-01T00:30:00", "-5"}) {
    auto r = at(bad);
    EXPECT_EQ(r.status, 2) << bad << ": " << r.output;
    EXPECT_NE(r.output.find("--at '" + bad + "' is neither unix seconds nor an RFC 3339 time"), std::string::npos)
        << r.output;
  }
}

// Every option also as --opt=value, in any order, the SPEC's spelling
// unchanged beside it.
TEST_F(VerifyCliTest, OptionsTakeTheirValueAfterAnEqualsSign) {
  auto r = run({kCtl, "verify", "--json", "--login=root", "--cert=" + cert, "--at=" + std::string(kNow),
                "--config=" + config, "--from=192.0.2.9"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["decision"], "allow");
  // A value may start with a dash: it is the option's, not an option.
  r = verify({"--cert", cert, "--login", "-root"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(r.output.rfind("deny: login '-root': principal: ", 0), 0u) << r.output;
}

// SPEC §5's exit codes, each with its message where it goes.
TEST_F(VerifyCliTest, ExitCodesAreTheSpecs) {
  EXPECT_EQ(verify({"--cert", cert, "--login", "root"}).status, 0);
  EXPECT_EQ(verify({"--cert", cert, "--login", "admin"}).status, 1);
  auto missing = verify({"--login", "root"});
  EXPECT_EQ(missing.status, 2);
  EXPECT_EQ(missing.output, "machineidctl verify: --cert is required; try 'machineidctl verify --help'\n");
  auto bogus = verify({"--cert", cert, "--login", "root", "--bogus"});
  EXPECT_EQ(bogus.status, 2);
  EXPECT_EQ(bogus.output, "machineidctl verify: unknown option '--bogus'; try 'machineidctl verify --help'\n");
  auto help = run({kCtl, "verify", "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_EQ(help.output.rfind("usage: machineidctl verify --config FILE --cert FILE --login NAME", 0), 0u)
      << help.output;
}

TEST_F(VerifyCliTest, CorruptKrlDeniesEverything) {
  write_file(kg.dir().file("revoked.krl"), "not a KRL");
  auto r = verify({"--cert", cert, "--login", "root", "--json"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["reason"], "revoked");
}

TEST_F(VerifyCliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(run({kCtl, "verify", "--config", config, "--login", "root"}).status, 2);
  EXPECT_EQ(run({kCtl, "verify", "--config", config, "--cert", cert}).status, 2);
  EXPECT_EQ(verify({"--cert", cert, "--login", "root", "--from", "not-an-ip"}).status, 2);
  EXPECT_EQ(verify({"--cert", cert, "--login", "root", "--bogus"}).status, 2);
  EXPECT_EQ(run({kCtl, "verify", "--config", config, "--cert", cert, "--login", "root", "--at", "soon"}).status, 2);
  EXPECT_EQ(run({kCtl}).status, 2);
  EXPECT_EQ(run({kCtl, "frobnicate"}).status, 2);
}

TEST_F(VerifyCliTest, ConfigErrorsExitTwoNamingFileAndLine) {
  write_file(config, "[cluster]\nname = \"x\"\n[policy]\nmode = \"everything\"\n");
  auto r = verify({"--cert", cert, "--login", "root"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find(config + ":4"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("policy.mode"), std::string::npos) << r.output;
}

// As the daemon: a role file that does not load is reported, naming file
// and line, and denies only the certificates holding its roles.
TEST_F(VerifyCliTest, BadRoleFileIsReportedAndDeniesOnlyItsHolders) {
  write_file(kg.dir().file("roles.d/bad.yaml"),
             "kind: role\nversion: v7\nmetadata:\n  name: bad\nspec:\n  allow:\n    logins: root\n");
  auto r = verify({"--cert", cert, "--login", "root"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("bad.yaml:7"), std::string::npos) << r.output;
}

TEST_F(VerifyCliTest, MissingCertificateFileExitsTwo) {
  auto r = verify({"--cert", kg.dir().file("absent-cert.pub"), "--login", "root"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("absent-cert.pub"), std::string::npos);
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

// A key id is whatever the certificate's signer typed: escape sequences,
// DEL and newlines reach the terminal only as visible escapes, and no line
// of the report can be forged.
TEST_F(VerifyCliTest, EscapeSequencesAndNewlinesInAKeyIdAreShownEscaped) {
  CertSpec spec{.ca = ca, .key = user + ".pub"};
  spec.validity = "20260101000000:20260101010000";
  spec.identity = "evil\x1b[31m\nallow: login 'root'\x7f";
  spec.options = {R"(extension:teleport-roles={"roles":["ci"]})"};
  std::string evil = kg.sign(spec);
  for (const char* login : {"root", "admin"}) {
    auto r = verify({"--cert", evil, "--login", login});
    EXPECT_EQ(r.output.find('\x1b'), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find('\x7f'), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("key id 'evil\\033[31m\\012allow: login 'root'\\177'"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("\nallow: login 'root'"), std::string::npos) << r.output;
  }
  // JSON stays JSON: the exact key id, escaped by the encoder.
  auto j = verify({"--cert", evil, "--login", "root", "--json"});
  EXPECT_EQ(nlohmann::json::parse(j.output)["key_id"], spec.identity);
}

// A key id that is not UTF-8 cannot be a JSON string as it is: --json
// still prints one object (the byte as U+FFFD) and the decision's exit code.
TEST_F(VerifyCliTest, JsonOfAKeyIdThatIsNotUtf8IsStillJson) {
  CertSpec spec{.ca = ca, .key = user + ".pub"};
  spec.validity = "20260101000000:20260101010000";
  spec.identity = "bot-\xff";
  spec.options = {R"(extension:teleport-roles={"roles":["ci"]})"};
  auto r = verify({"--cert", kg.sign(spec), "--login", "root", "--json"});
  EXPECT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["key_id"], "bot-\xef\xbf\xbd");
}

// sshd's StrictModes: a config, CA file or KRL that someone other than root
// could have written is refused, naming the path and the fix.
TEST_F(VerifyCliTest, FilesWritableByOthersOrOwnedByOthersAreRefused) {
  const auto& d = kg.dir();
  ASSERT_EQ(chmod(config.c_str(), 0666), 0);
  auto r = verify({"--cert", cert, "--login", "root"});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(config + ": file is writable by group and others (owner root (uid 0), mode 0666)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("fix: chmod go-w " + config), std::string::npos) << r.output;
  ASSERT_EQ(chmod(config.c_str(), 0644), 0);

  ASSERT_EQ(chown(d.file("user_ca.pub").c_str(), 65534, static_cast<gid_t>(-1)), 0);
  r = verify({"--cert", cert, "--login", "root"});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(d.file("user_ca.pub") + ": file is owned by neither root"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fix: chown root " + d.file("user_ca.pub")), std::string::npos) << r.output;
  ASSERT_EQ(chown(d.file("user_ca.pub").c_str(), 0, static_cast<gid_t>(-1)), 0);

  write_file(d.file("revoked.krl"), "");
  ASSERT_EQ(chmod(d.path().c_str(), 0775), 0);  // the directory holding them all, g+w
  r = verify({"--cert", cert, "--login", "root"});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(d.path() + ": directory is writable by group"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fix: chmod go-w " + d.path()), std::string::npos) << r.output;
  ASSERT_EQ(chmod(d.path().c_str(), 0700), 0);
  EXPECT_EQ(verify({"--cert", cert, "--login", "root"}).status, 0);
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

// With user_ca_url, the CA in force is machineid-sync's copy in sync.dir,
// which the sync service's user owns; verify (run by root) accepts that
// owner there alone.
TEST_F(VerifyCliTest, SyncedCaOwnedByTheSyncUserIsTrustedThereAlone) {
  const auto& d = kg.dir();
  std::string toml = testing::read_file(config);
  std::string ca_line = "user_ca_file = \"" + d.file("user_ca.pub") + "\"\n";
  toml.insert(toml.find(ca_line) + ca_line.size(), "user_ca_url = \"https://proxy.example/webapi/auth/export?type=user\"\n");
  write_file(config, toml + "[sync]\ndir = \"" + d.file("sync") + "\"\nuser = \"nobody\"\n");
  ASSERT_EQ(mkdir(d.file("sync").c_str(), 0755), 0);
  ASSERT_EQ(chown(d.file("sync").c_str(), 65534, static_cast<gid_t>(-1)), 0);
  // Until the first sync, user_ca_file is the CA.
  auto r = verify({"--cert", cert, "--login", "root"});
  EXPECT_EQ(r.status, 0) << r.output;
  write_file(d.file("sync/user_ca.pub"), testing::read_file(d.file("user_ca.pub")));
  ASSERT_EQ(chown(d.file("sync/user_ca.pub").c_str(), 65534, static_cast<gid_t>(-1)), 0);
  r = verify({"--cert", cert, "--login", "root"});
  EXPECT_EQ(r.status, 0) << r.output;
  // The synced copy is the one in force: another key there denies.
  write_file(d.file("sync/user_ca.pub"), testing::read_file(kg.make_key("other-ca") + ".pub"));
  r = verify({"--cert", cert, "--login", "root"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("ca_untrusted"), std::string::npos) << r.output;
  // The sync user is trusted for its own files only, not the KRL.
  write_file(d.file("revoked.krl"), "");
  ASSERT_EQ(chown(d.file("revoked.krl").c_str(), 65534, static_cast<gid_t>(-1)), 0);
  r = verify({"--cert", cert, "--login", "root"});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(d.file("revoked.krl") + ": file is owned by neither root"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace machineid
