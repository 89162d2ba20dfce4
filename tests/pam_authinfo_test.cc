// The SSH_AUTH_INFO_0 parser of pam_machineid.so (the client library's C
// code): which certificates authenticated a login, and what it refuses to
// read.
#include <string>

#include <gtest/gtest.h>

#include "machineid/mid_authinfo.h"

namespace machineid {
namespace {

constexpr const char* kCertType = "ssh-ed25519-cert-v01@openssh.com";

std::string line(const std::string& method, const std::string& type, const std::string& key) {
  return method + " " + type + " " + key + "\n";
}

std::string str(const mid_string& s) { return std::string(s.data, s.size); }

struct Parsed {
  int rc = 0;
  mid_auth_info info{};
  std::string error;
};

Parsed parse(const std::string& text) {
  Parsed p;
  char err[256];
  p.rc = mid_auth_info_parse(text.data(), text.size(), &p.info, err, sizeof err);
  p.error = err;
  return p;
}

TEST(PamAuthInfo, CertificatesOfPublicKeyLinesInOrder) {
  std::string text = line("publickey", kCertType, "AAAA1") + "keyboard-interactive/pam\n" +
                     line("publickey", "ecdsa-sha2-nistp256-cert-v01@openssh.com", "AAAA2+/=");
  Parsed p = parse(text);
  ASSERT_EQ(p.rc, 0) << p.error;
  ASSERT_EQ(p.info.count, 2u);
  EXPECT_EQ(str(p.info.certificates[0].key_type), kCertType);
  EXPECT_EQ(str(p.info.certificates[0].certificate), "AAAA1");
  EXPECT_EQ(str(p.info.certificates[1].key_type), "ecdsa-sha2-nistp256-cert-v01@openssh.com");
  EXPECT_EQ(str(p.info.certificates[1].certificate), "AAAA2+/=");
}

TEST(PamAuthInfo, HostBoundSynonymIsAPublicKeyLine) {
  Parsed p = parse(line("publickey-hostbound-v00@openssh.com", kCertType, "AAAA"));
  ASSERT_EQ(p.rc, 0) << p.error;
  EXPECT_EQ(p.info.count, 1u);
}

TEST(PamAuthInfo, LoginsWithoutCertificatesHaveNone) {
  for (const std::string info :
       {"", "\n", "password\n", "password", "publickey ssh-ed25519 AAAA\n",
        "hostbased ssh-ed25519-cert-v01@openssh.com AAAA\n", "gssapi-with-mic\n"}) {
    Parsed p = parse(info);
    ASSERT_EQ(p.rc, 0) << info << ": " << p.error;
    EXPECT_EQ(p.info.count, 0u) << info;
  }
}

TEST(PamAuthInfo, MalformedLinesAreRefusedNamingTheLine) {
  for (const std::string info :
       {"publickey\n", "publickey ssh-ed25519-cert-v01@openssh.com\n", "publickey  AAAA\n",
        "publickey ssh-ed25519-cert-v01@openssh.com AAAA more\n",
        "publickey ssh-ed25519-cert-v01@openssh.com A*A\n",
        "publickey ssh-ed25519-cert-v01@openssh.com AAAA\r\n", "password\n\n", "\npassword\n",
        " password\n", "pass word!\x01\n", "p%ssword\n"}) {
    Parsed p = parse(info);
    EXPECT_EQ(p.rc, MID_AUTHINFO_MALFORMED) << info;
    EXPECT_EQ(p.info.count, 0u) << info;
    EXPECT_NE(p.error.find("SSH_AUTH_INFO_0 line "), std::string::npos) << p.error;
  }
}

TEST(PamAuthInfo, LimitsAreEnforced) {
  std::string lines;
  for (std::size_t i = 0; i < MID_AUTHINFO_MAX_LINES; ++i)
    lines += line("publickey", kCertType, "AAAA" + std::to_string(i));
  Parsed full = parse(lines);
  ASSERT_EQ(full.rc, 0) << full.error;
  EXPECT_EQ(full.info.count, MID_AUTHINFO_MAX_LINES);
  Parsed too_many = parse(lines + "password\n");
  EXPECT_EQ(too_many.rc, MID_AUTHINFO_LIMIT);
  EXPECT_EQ(too_many.info.count, 0u);

  std::string key(MID_AUTHINFO_MAX_BYTES, 'A');
  Parsed too_long = parse(line("publickey", kCertType, key));
  EXPECT_EQ(too_long.rc, MID_AUTHINFO_LIMIT);
  EXPECT_NE(too_long.error.find("longer than"), std::string::npos) << too_long.error;
}

}  // namespace
}  // namespace machineid
