// The SSH_AUTH_INFO_0 parser of pam_machineid.so: which certificates
// authenticated a login, and what it refuses to read.
#include <string>

#include <gtest/gtest.h>

#include "../pam_machineid/authinfo.h"

namespace machineid::pam {
namespace {

constexpr const char* kCertType = "ssh-ed25519-cert-v01@openssh.com";

std::string line(const std::string& method, const std::string& type, const std::string& key) {
  return method + " " + type + " " + key + "\n";
}

TEST(PamAuthInfo, CertificatesOfPublicKeyLinesInOrder) {
  auto found = certificates_in_auth_info(
      line("publickey", kCertType, "AAAA1") + "keyboard-interactive/pam\n" +
      line("publickey", "ecdsa-sha2-nistp256-cert-v01@openssh.com", "AAAA2+/="));
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ((*found)[0].key_type, kCertType);
  EXPECT_EQ((*found)[0].certificate, "AAAA1");
  EXPECT_EQ((*found)[1].certificate, "AAAA2+/=");
}

TEST(PamAuthInfo, HostBoundSynonymIsAPublicKeyLine) {
  auto found =
      certificates_in_auth_info(line("publickey-hostbound-v00@openssh.com", kCertType, "AAAA"));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->size(), 1u);
}

TEST(PamAuthInfo, LoginsWithoutCertificatesHaveNone) {
  for (const std::string info :
       {"", "\n", "password\n", "password", "publickey ssh-ed25519 AAAA\n",
        "hostbased ssh-ed25519-cert-v01@openssh.com AAAA\n", "gssapi-with-mic\n"}) {
    auto found = certificates_in_auth_info(info);
    ASSERT_TRUE(found.ok()) << info << ": " << found.error().message;
    EXPECT_TRUE(found->empty()) << info;
  }
}

TEST(PamAuthInfo, MalformedLinesAreRefusedNamingTheLine) {
  for (const std::string info :
       {"publickey\n", "publickey ssh-ed25519-cert-v01@openssh.com\n", "publickey  AAAA\n",
        "publickey ssh-ed25519-cert-v01@openssh.com AAAA more\n",
        "publickey ssh-ed25519-cert-v01@openssh.com A*A\n",
        "publickey ssh-ed25519-cert-v01@openssh.com AAAA\r\n", "password\n\n", "\npassword\n",
        " password\n", "pass word!\x01\n", "p%ssword\n"}) {
    auto found = certificates_in_auth_info(info);
    ASSERT_FALSE(found.ok()) << info;
    EXPECT_EQ(found.error().code, Errc::malformed);
    EXPECT_NE(found.error().message.find("SSH_AUTH_INFO_0 line "), std::string::npos)
        << found.error().message;
  }
}

TEST(PamAuthInfo, LimitsAreEnforced) {
  std::string lines;
  for (std::size_t i = 0; i < kMaxAuthInfoLines; ++i) lines += "password\n";
  EXPECT_TRUE(certificates_in_auth_info(lines).ok());
  auto too_many = certificates_in_auth_info(lines + "password\n");
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().code, Errc::limit);

  std::string key(kMaxAuthInfoBytes, 'A');
  auto too_long = certificates_in_auth_info(line("publickey", kCertType, key));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, Errc::limit);
}

}  // namespace
}  // namespace machineid::pam
