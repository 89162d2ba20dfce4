// Certificate parsing, cross-checked field by field against `ssh-keygen -L`.
#include <gtest/gtest.h>

#include <ctime>
#include <optional>
#include <sstream>

#include "fixtures.h"
#include "machineid/cert.h"
#include "machineid/encoding.h"

namespace machineid {
namespace {

using testing::CertSpec;
using testing::Keygen;

// What `ssh-keygen -L` prints of a certificate, reduced to comparable text.
struct Listing {
  std::string type, public_key, signing_ca, key_id, serial, valid;
  std::vector<std::string> principals, critical_options, extensions;
};

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

Listing list_certificate(const std::string& path) {
  Listing l;
  std::istringstream in(testing::run_ok({"ssh-keygen", "-L", "-f", path}));
  std::string line;
  std::vector<std::string>* section = nullptr;
  while (std::getline(in, line)) {
    std::string t = trim(line);
    auto field = [&](const char* name, std::string& out) {
      std::string prefix = std::string(name) + ": ";
      if (t.rfind(prefix, 0) != 0) return false;
      out = t.substr(prefix.size());
      section = nullptr;
      return true;
    };
    std::string ignored;
    if (field("Type", l.type) || field("Public key", l.public_key) || field("Signing CA", l.signing_ca) ||
        field("Key ID", l.key_id) || field("Serial", l.serial) || field("Valid", l.valid))
      continue;
    if (t.rfind("Principals:", 0) == 0) section = &l.principals;
    else if (t.rfind("Critical Options:", 0) == 0) section = &l.critical_options;
    else if (t.rfind("Extensions:", 0) == 0) section = &l.extensions;
    else if (section != nullptr && !t.empty()) section->push_back(t);
  }
  return l;
}

std::string when(std::uint64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

// Our view of the certificate, in ssh-keygen -L's words.
Listing describe(const Certificate& c) {
  Listing l;
  l.type = c.type_name + (c.type == kUserCert ? " user certificate" : " host certificate");
  l.public_key = std::string(key_type_label(c.key.type)) + "-CERT " + c.key.fingerprint();
  auto ca = parse_public_key(c.signature_key);
  WireReader sig(c.signature);
  auto algorithm = sig.cstring();
  l.signing_ca = ca.ok() && algorithm.ok() ? std::string(key_type_label(ca->type)) + " " + ca->fingerprint() +
                                                 " (using " + std::string(*algorithm) + ")"
                                           : "?";
  l.key_id = "\"" + c.key_id + "\"";
  l.serial = std::to_string(c.serial);
  if (c.valid_after == 0 && c.valid_before == kValidForever) l.valid = "forever";
  else if (c.valid_before == kValidForever) l.valid = "after " + when(c.valid_after);
  else if (c.valid_after == 0) l.valid = "before " + when(c.valid_before);
  else l.valid = "from " + when(c.valid_after) + " to " + when(c.valid_before);
  l.principals = c.principals.empty() ? std::vector<std::string>{"(none)"} : c.principals;
  auto options = [](const std::vector<CertOption>& opts, bool critical) {
    std::vector<std::string> out;
    for (const auto& o : opts) {
      bool known_string = critical && (o.name == "force-command" || o.name == "source-address");
      if (o.value.empty() && !known_string) {
        out.push_back(o.name);
      } else if (known_string) {
        out.push_back(o.name + " " + o.value);
      } else {
        WireWriter w;
        w.string(o.value);
        out.push_back(o.name + " UNKNOWN OPTION: " + hex(w.bytes()) + " (len " + std::to_string(w.bytes().size()) + ")");
      }
    }
    if (out.empty()) out.push_back("(none)");
    return out;
  };
  l.critical_options = options(c.critical_options, true);
  l.extensions = options(c.extensions, false);
  return l;
}

void expect_same_as_keygen(const std::string& cert_path) {
  SCOPED_TRACE(cert_path);
  auto cert = parse_certificate_text(testing::read_file(cert_path));
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  Listing ours = describe(*cert), theirs = list_certificate(cert_path);
  // ssh-keygen lists "(none)" on the section line itself.
  for (auto* v : {&theirs.principals, &theirs.critical_options, &theirs.extensions})
    if (v->empty()) v->push_back("(none)");
  EXPECT_EQ(ours.type, theirs.type);
  EXPECT_EQ(ours.public_key, theirs.public_key);
  EXPECT_EQ(ours.signing_ca, theirs.signing_ca);
  EXPECT_EQ(ours.key_id, theirs.key_id);
  EXPECT_EQ(ours.serial, theirs.serial);
  EXPECT_EQ(ours.valid, theirs.valid);
  EXPECT_EQ(ours.principals, theirs.principals);
  EXPECT_EQ(ours.critical_options, theirs.critical_options);
  EXPECT_EQ(ours.extensions, theirs.extensions);
}

class CertTest : public ::testing::Test {
 protected:
  Keygen kg;
};

TEST_F(CertTest, EveryKeyAndCaTypeParsesAsSshKeygenListsIt) {
  struct Kind {
    std::string type;
    int bits;
  };
  std::vector<Kind> kinds = {{"ed25519", 0}, {"ecdsa", 256}, {"ecdsa", 384}, {"ecdsa", 521}, {"rsa", 2048}};
  int n = 0;
  for (const auto& ca_kind : kinds) {
    std::string ca = kg.make_key("ca" + std::to_string(n), ca_kind.type, ca_kind.bits);
    for (const auto& user_kind : kinds) {
      std::string user = kg.make_key("user" + std::to_string(n++), user_kind.type, user_kind.bits);
      CertSpec spec{.ca = ca, .key = user + ".pub"};
      spec.serial = 1000 + n;
      spec.principals = {"root", "ubuntu", "-teleport-internal-join"};
      spec.options = {"extension:teleport-roles={\"version\":\"v1\",\"roles\":[\"ci\",\"deploy\"]}",
                      "extension:impersonator=bot-ci", "source-address=127.0.0.1/32,::1"};
      expect_same_as_keygen(kg.sign(spec));
    }
  }
}

TEST_F(CertTest, RsaSignatureAlgorithmsAreRecorded) {
  std::string ca = kg.make_key("ca", "rsa", 3072);
  std::string user = kg.make_key("user");
  for (std::string alg : {"rsa-sha2-256", "rsa-sha2-512", "ssh-rsa"}) {
    CertSpec spec{.ca = ca, .key = user + ".pub"};
    spec.signature_algorithm = alg;
    expect_same_as_keygen(kg.sign(spec));
  }
}

TEST_F(CertTest, ValidityFormsMatchSshKeygen) {
  std::string ca = kg.make_key("ca");
  std::string user = kg.make_key("user");
  for (std::string v : {"always:forever", "20260101000000:20260101010000", "20260101000000:forever",
                        "always:20300101000000", "-1d:+1w"}) {
    CertSpec spec{.ca = ca, .key = user + ".pub"};
    spec.validity = v;
    expect_same_as_keygen(kg.sign(spec));
  }
}

TEST_F(CertTest, ClearedOptionsHostCertsAndCustomCriticalOptionsMatchSshKeygen) {
  std::string ca = kg.make_key("ca");
  std::string user = kg.make_key("user");
  CertSpec cleared{.ca = ca, .key = user + ".pub"};
  cleared.clear_options = true;
  cleared.principals = {};
  expect_same_as_keygen(kg.sign(cleared));
  CertSpec host{.ca = ca, .key = user + ".pub"};
  host.host = true;
  host.principals = {"node.example.com"};
  expect_same_as_keygen(kg.sign(host));
  CertSpec custom{.ca = ca, .key = user + ".pub"};
  custom.options = {"critical:verify-required", "critical:x-custom=value", "force-command=/usr/bin/backup",
                    "extension:teleport-route-to-cluster=example.teleport.sh", "no-pty"};
  expect_same_as_keygen(kg.sign(custom));
}

TEST_F(CertTest, FieldsAreParsed) {
  std::string ca = kg.make_key("ca");
  std::string user = kg.make_key("user");
  CertSpec spec{.ca = ca, .key = user + ".pub"};
  spec.identity = "bot-nightly";
  spec.serial = 77;
  spec.principals = {"root", "deploy"};
  spec.validity = "20260101000000:20260101010000";
  spec.options = {"extension:bot-name@goteleport.com=nightly"};
  auto cert = parse_certificate_text(testing::read_file(kg.sign(spec)));
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  EXPECT_EQ(cert->type_name, "ssh-ed25519-cert-v01@openssh.com");
  EXPECT_EQ(cert->type, kUserCert);
  EXPECT_EQ(cert->key_id, "bot-nightly");
  EXPECT_EQ(cert->serial, 77u);
  EXPECT_EQ(cert->principals, (std::vector<std::string>{"root", "deploy"}));
  EXPECT_EQ(cert->valid_after, 1767225600u);
  EXPECT_EQ(cert->valid_before, 1767229200u);
  ASSERT_NE(cert->extension("bot-name@goteleport.com"), nullptr);
  EXPECT_EQ(*cert->extension("bot-name@goteleport.com"), "nightly");
  EXPECT_TRUE(cert->has_extension("permit-pty"));
  EXPECT_EQ(cert->signature_key, testing::read_key_blob(ca + ".pub"));
  EXPECT_EQ(cert->key.blob, testing::read_key_blob(user + ".pub"));
}

TEST_F(CertTest, SshAuthInfoLineIsAccepted) {
  std::string ca = kg.make_key("ca");
  std::string user = kg.make_key("user");
  std::string text = testing::read_file(kg.sign({.ca = ca, .key = user + ".pub"}));
  std::istringstream in(text);
  std::string type, b64;
  in >> type >> b64;
  auto cert = parse_certificate_text("publickey " + type + " " + b64 + "\n");
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  EXPECT_EQ(cert->key_id, "bot-ci");
  auto second_line = parse_certificate_text("password\npublickey " + type + " " + b64);
  EXPECT_TRUE(second_line.ok());
}

TEST_F(CertTest, PlainKeyIsNotACertificate) {
  std::string user = kg.make_key("user");
  auto cert = parse_certificate_text(testing::read_file(user + ".pub"));
  ASSERT_FALSE(cert.ok());
  EXPECT_NE(cert.error().message.find("no OpenSSH certificate"), std::string::npos);
  auto blob = parse_certificate(testing::read_key_blob(user + ".pub"));
  ASSERT_FALSE(blob.ok());
  EXPECT_EQ(blob.error().code, Errc::unsupported);
}

TEST_F(CertTest, TypeWordMustMatchTheBlob) {
  std::string ca = kg.make_key("ca");
  std::string user = kg.make_key("user");
  std::string text = testing::read_file(kg.sign({.ca = ca, .key = user + ".pub"}));
  text.replace(0, text.find(' '), "ssh-rsa-cert-v01@openssh.com");
  auto cert = parse_certificate_text(text);
  ASSERT_FALSE(cert.ok());
  EXPECT_NE(cert.error().message.find("blob holds"), std::string::npos);
}

class CorruptCertTest : public CertTest {
 protected:
  void SetUp() override {
    std::string ca = kg.make_key("ca");
    std::string user = kg.make_key("user");
    blob = testing::read_key_blob(kg.sign({.ca = ca, .key = user + ".pub"}));
    ASSERT_TRUE(parse_certificate(blob).ok());
    auto ca_key = parse_public_key(testing::read_key_blob(ca + ".pub"));
    ASSERT_TRUE(ca_key.ok());
    auto v = Verifier::create(*ca_key);
    ASSERT_TRUE(v.ok());
    verifier.emplace(std::move(*v));
  }
  ByteVector blob;
  std::optional<Verifier> verifier;
};

TEST_F(CorruptCertTest, EveryTruncationIsAnError) {
  for (std::size_t len = 0; len < blob.size(); ++len) {
    auto cert = parse_certificate(Bytes(blob).first(len));
    EXPECT_FALSE(cert.ok()) << "accepted a certificate cut to " << len << " bytes";
  }
}

TEST_F(CorruptCertTest, TrailingBytesAreAnError) {
  blob.push_back(0);
  auto cert = parse_certificate(blob);
  ASSERT_FALSE(cert.ok());
  EXPECT_NE(cert.error().message.find("trailing"), std::string::npos);
}

TEST_F(CorruptCertTest, EveryBitFlipFailsToParseOrToVerify) {
  auto original = parse_certificate(blob);
  ASSERT_TRUE(verifier->verify(original->signature, original->signed_region()).ok());
  int rejected = 0;
  for (std::size_t i = 0; i < blob.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      ByteVector copy = blob;
      copy[i] ^= static_cast<std::uint8_t>(1 << bit);
      auto cert = parse_certificate(copy);
      if (!cert.ok()) {
        ++rejected;
        continue;
      }
      EXPECT_FALSE(verifier->verify(cert->signature, cert->signed_region()).ok())
          << "a flip of bit " << bit << " of byte " << i << " still verifies";
    }
  }
  EXPECT_GT(rejected, 0);
  // The first length field (of the type name) set huge.
  ByteVector huge = blob;
  huge[0] = 0x7f;
  auto cert = parse_certificate(huge);
  ASSERT_FALSE(cert.ok());
  EXPECT_NE(cert.error().message.find("exceeds"), std::string::npos);
}

// A certificate blob built by hand, for what ssh-keygen will not make.
ByteVector build_cert(const std::vector<std::string>& principals, const std::vector<CertOption>& extensions) {
  ByteVector pk(32, 7);
  WireWriter opts;
  for (const auto& e : extensions) {
    WireWriter value;
    if (!e.value.empty()) value.string(e.value);
    opts.string(e.name).string(value.bytes());
  }
  WireWriter names;
  for (const auto& p : principals) names.string(p);
  WireWriter ca;
  ca.string("ssh-ed25519").string(ByteVector(32, 9));
  WireWriter sig;
  sig.string("ssh-ed25519").string(ByteVector(64, 1));
  WireWriter w;
  w.string("ssh-ed25519-cert-v01@openssh.com").string(ByteVector(32, 0)).string(pk).u64(1).u32(kUserCert);
  w.string("bot-x").string(names.bytes()).u64(0).u64(100).string(ByteVector{}).string(opts.bytes());
  w.string(ByteVector{}).string(ca.bytes()).string(sig.bytes());
  return w.take();
}

TEST(CertLimitsTest, TwoHundredFiftySixPrincipalsParseAndOneMoreIsRefused) {
  std::vector<std::string> principals;
  for (int i = 0; i < 256; ++i) principals.push_back("p" + std::to_string(i));
  auto ok = parse_certificate(build_cert(principals, {}));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->principals.size(), 256u);
  principals.push_back("p256");
  auto refused = parse_certificate(build_cert(principals, {}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::limit);
  EXPECT_NE(refused.error().message.find("principals"), std::string::npos);
}

TEST(CertLimitsTest, DuplicateExtensionIsRefused) {
  auto cert = parse_certificate(build_cert({"root"}, {{"permit-pty", ""}, {"permit-pty", ""}}));
  ASSERT_FALSE(cert.ok());
  EXPECT_NE(cert.error().message.find("appears twice"), std::string::npos);
}

TEST(CertLimitsTest, ExtensionValueMustBeOneWireString) {
  ByteVector blob = build_cert({"root"}, {{"teleport-roles", "abc"}});
  ASSERT_TRUE(parse_certificate(blob).ok());
  // Find the nested value length (u32 3 followed by "abc") and stretch it.
  for (std::size_t i = 0; i + 7 <= blob.size(); ++i) {
    if (blob[i] == 0 && blob[i + 1] == 0 && blob[i + 2] == 0 && blob[i + 3] == 3 && blob[i + 4] == 'a') {
      blob[i + 3] = 2;  // value "ab", then a stray byte inside the extension
      break;
    }
  }
  auto cert = parse_certificate(blob);
  ASSERT_FALSE(cert.ok());
  EXPECT_NE(cert.error().message.find("trailing"), std::string::npos);
}

TEST(CertLimitsTest, OversizedBlobIsRefusedBeforeParsing) {
  ByteVector big(kMaxCertificateBytes + 1, 0);
  auto cert = parse_certificate(big);
  ASSERT_FALSE(cert.ok());
  EXPECT_EQ(cert.error().code, Errc::limit);
}

}  // namespace
}  // namespace machineid
