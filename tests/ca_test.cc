// The user CA file: bare keys, tctl export lines, rotation, and bad lines.
#include <gtest/gtest.h>

#include <sstream>

#include "fixtures.h"
#include "machineid/ca.h"
#include "machineid/encoding.h"

namespace machineid {
namespace {

class CaFileTest : public ::testing::Test {
 protected:
  std::string pub(const std::string& name, const std::string& type = "ed25519", int bits = 0) {
    std::string text = testing::read_file(kg.make_key(name, type, bits) + ".pub");
    return text.substr(0, text.find('\n'));
  }
  // "type base64" without the comment, as tctl prints it.
  static std::string bare(const std::string& line) {
    std::istringstream in(line);
    std::string type, b64;
    in >> type >> b64;
    return type + " " + b64;
  }
  testing::Keygen kg;
};

TEST_F(CaFileTest, BareKeysAndExportLinesAreTrusted) {
  std::string a = pub("a"), b = pub("b", "rsa", 2048), c = pub("c", "ecdsa", 521);
  std::string text = "# user CA\n" + a + "\n\ncert-authority " + bare(b) +
                     " clustername=example.teleport.sh&type=user\n  " + c + "  \n";
  auto set = CaSet::parse(text, "user_ca.pub", "example.teleport.sh");
  ASSERT_TRUE(set.ok()) << set.error().message;
  ASSERT_EQ(set->keys().size(), 3u);
  EXPECT_EQ(set->keys()[0].line, 2u);
  EXPECT_EQ(set->keys()[1].line, 4u);
  EXPECT_EQ(set->keys()[2].line, 5u);
  for (const auto& key : {a, b, c}) {
    auto blob = base64_decode(bare(key).substr(bare(key).find(' ') + 1));
    ASSERT_TRUE(blob.ok());
    const TrustedCa* found = set->find(*blob);
    ASSERT_NE(found, nullptr) << key;
    EXPECT_EQ(found->fingerprint, fingerprint_sha256(*blob));
  }
}

TEST_F(CaFileTest, SshdFormHoldsBareKeysOnly) {
  std::string a = pub("a"), b = pub("b");
  auto set = CaSet::parse("cert-authority " + bare(a) + " clustername=c1&type=user\n" + b + "\n", "f", "c1");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->sshd_form(), bare(a) + "\n" + bare(b) + "\n");
  // What sshd will read back parses as the same set.
  auto again = CaSet::parse(set->sshd_form(), "sshd", "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->keys().size(), 2u);
}

TEST_F(CaFileTest, DuplicateKeyIsTrustedOnce) {
  std::string a = pub("a");
  auto set = CaSet::parse(a + "\n" + a + "\n", "f", "");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->keys().size(), 1u);
}

TEST_F(CaFileTest, HostCaExportIsRefusedWithItsLine) {
  std::string a = pub("a");
  auto set = CaSet::parse("\n" + std::string("cert-authority ") + bare(a) + " clustername=c1&type=host\n", "ca.pub", "c1");
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.error().message.rfind("ca.pub:2: ", 0), 0u) << set.error().message;
  EXPECT_NE(set.error().message.find("'host'"), std::string::npos);
  auto known_hosts = CaSet::parse("@cert-authority *.example.com " + bare(a) + "\n", "ca.pub", "c1");
  ASSERT_FALSE(known_hosts.ok());
  EXPECT_NE(known_hosts.error().message.find("host CA"), std::string::npos);
}

TEST_F(CaFileTest, ExportForAnotherClusterIsRefused) {
  auto set = CaSet::parse("cert-authority " + bare(pub("a")) + " clustername=other&type=user\n", "ca.pub", "c1");
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.error().message.find("cluster 'other'"), std::string::npos);
}

TEST_F(CaFileTest, CertificateAsCaIsRefused) {
  std::string ca = kg.make_key("ca");
  std::string user = kg.make_key("user");
  std::string cert = testing::read_file(kg.sign({.ca = ca, .key = user + ".pub"}));
  auto set = CaSet::parse(cert, "ca.pub", "");
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.error().message, "ca.pub:1: a certificate cannot be a CA key");
}

TEST_F(CaFileTest, BadLinesNameFileAndLine) {
  std::string a = pub("a");
  struct Case {
    std::string text, expect;
  };
  std::vector<Case> cases = {
      {a + "\nssh-ed25519 !!!!\n", "ca.pub:2: base64"},
      {a + "\nssh-ed25519\n", "ca.pub:2: expected"},
      {"ssh-rsa " + bare(a).substr(12) + "\n", "ca.pub:1: key text says 'ssh-rsa'"},
      {"ssh-dss AAAAB3NzaC1kc3MAAACBAP\n", "ca.pub:1: "},
      {"# nothing here\n", "ca.pub: holds no CA key"},
  };
  for (const auto& c : cases) {
    auto set = CaSet::parse(c.text, "ca.pub", "");
    ASSERT_FALSE(set.ok()) << c.text;
    EXPECT_EQ(set.error().message.rfind(c.expect, 0), 0u) << set.error().message;
  }
}

TEST_F(CaFileTest, MissingFileIsAnIoErrorNamingThePath) {
  auto set = CaSet::load(kg.dir().file("absent.pub"), "");
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.error().code, Errc::io);
  EXPECT_NE(set.error().message.find("absent.pub"), std::string::npos);
}

}  // namespace
}  // namespace machineid
