// KRL parsing and checking. Keys, certificates and KRLs come from the real
// ssh-keygen; every decision on them is checked against `ssh-keygen -Q`.
// KRLs that ssh-keygen cannot write (wildcard serials, corrupt input) are
// built by hand with WireWriter.
#include "machineid/krl.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <limits>
#include <utility>

#include "fixtures.h"
#include "machineid/cert.h"
#include "machineid/encoding.h"
#include "machineid/sshkey.h"
#include "machineid/wire.h"

namespace machineid {
namespace {

using machineid::testing::CertSpec;
using machineid::testing::Keygen;

constexpr std::uint64_t kMagic = 0x5353484b524c0a00;
constexpr std::uint64_t kMaxSerial = std::numeric_limits<std::uint64_t>::max();

ByteVector to_bytes(const std::string& s) { return ByteVector(s.begin(), s.end()); }

// A KRL built field by field.
class KrlWriter {
 public:
  explicit KrlWriter(std::uint64_t version = 1) {
    w_.u64(kMagic).u32(1).u64(version).u64(1700000000).u64(0).string("").string("hand-built");
  }
  KrlWriter& section(std::uint8_t type, const ByteVector& body) {
    w_.u8(type).string(body);
    return *this;
  }
  // A signature section: string signing key, string signature.
  KrlWriter& signature() {
    w_.u8(4).string("key").string("signature");
    return *this;
  }
  const ByteVector& bytes() const { return w_.bytes(); }

 private:
  WireWriter w_;
};

using Subsection = std::pair<std::uint8_t, ByteVector>;

ByteVector cert_section(const ByteVector& ca, std::initializer_list<Subsection> subsections) {
  WireWriter w;
  w.string(ca).string("");
  for (const auto& [type, body] : subsections) w.u8(type).string(body);
  return w.take();
}

Subsection serial_list(std::initializer_list<std::uint64_t> serials) {
  WireWriter w;
  for (auto s : serials) w.u64(s);
  return {0x20, w.take()};
}

Subsection serial_range(std::uint64_t first, std::uint64_t last) {
  WireWriter w;
  w.u64(first).u64(last);
  return {0x21, w.take()};
}

Subsection serial_bitmap(std::uint64_t first, const ByteVector& big_endian_bits) {
  WireWriter w;
  w.u64(first).mpint(big_endian_bits);
  return {0x22, w.take()};
}

Subsection key_ids(std::initializer_list<std::string_view> ids) {
  WireWriter w;
  for (auto id : ids) w.string(id);
  return {0x23, w.take()};
}

ByteVector extension(std::string_view name, bool critical) {
  WireWriter w;
  w.string(name).u8(critical ? 1 : 0).string("contents");
  return w.take();
}

ByteVector hashes(std::initializer_list<ByteVector> items) {
  WireWriter w;
  for (const auto& h : items) w.string(h);
  return w.take();
}

// Skips the KRL header; the reader is then at the first section.
WireReader after_header(Bytes krl) {
  WireReader r(krl);
  (void)r.raw(8 + 4 + 8 + 8 + 8);
  (void)r.string();
  (void)r.string();
  return r;
}

// The certificate subsection types a KRL holds, in order: shows which
// encoding ssh-keygen chose, so a test knows what it exercised.
std::vector<std::uint8_t> cert_subsection_types(Bytes krl) {
  std::vector<std::uint8_t> types;
  WireReader r = after_header(krl);
  while (!r.empty()) {
    std::uint8_t type = r.u8().value();
    Bytes body = r.string().value();
    if (type != 1) continue;
    WireReader s(body);
    (void)s.string();
    (void)s.string();
    while (!s.empty()) {
      types.push_back(s.u8().value());
      (void)s.string();
    }
  }
  return types;
}

std::vector<std::uint8_t> section_types(Bytes krl) {
  std::vector<std::uint8_t> types;
  WireReader r = after_header(krl);
  while (!r.empty()) {
    types.push_back(r.u8().value());
    (void)r.string();
  }
  return types;
}

// Offsets where a KRL may end: after the header and after each section.
std::vector<std::size_t> section_ends(Bytes krl) {
  WireReader r = after_header(krl);
  std::vector<std::size_t> ends{r.offset()};
  while (!r.empty()) {
    if (r.u8().value() == 4) (void)r.string();  // a signature section has two strings
    (void)r.string();
    ends.push_back(r.offset());
  }
  return ends;
}

class KrlTest : public ::testing::Test {
 protected:
  // Signs the user key (or `key`) with `ca_key` (default: the CA).
  std::string cert(std::uint64_t serial, const std::string& id = "bot-ci",
                   const std::string& ca_key = "", const std::string& key = "") {
    CertSpec spec;
    spec.ca = ca_key.empty() ? ca_ : ca_key;
    spec.key = (key.empty() ? user_ : key) + ".pub";
    spec.identity = id;
    spec.serial = serial;
    return kg_.sign(spec);
  }

  std::string krl(const std::string& spec, const std::string& ca_key = "") {
    return kg_.make_krl("krl" + std::to_string(++krls_), spec,
                        ca_key.empty() ? "" : ca_key + ".pub");
  }

  std::string write(const ByteVector& bytes) {
    std::string path = kg_.dir().file("hand" + std::to_string(++krls_) + ".krl");
    testing::write_file(path, std::string(bytes.begin(), bytes.end()));
    return path;
  }

  ByteVector blob(const std::string& key) { return testing::read_key_blob(key + ".pub"); }

  // Our decision on a certificate under a KRL file, which must agree with
  // `ssh-keygen -Q`.
  std::optional<std::string> decide(const std::string& krl_path, const std::string& cert_path) {
    auto krl = Krl::load(krl_path);
    auto cert = parse_certificate_text(testing::read_file(cert_path));
    if (!krl.ok() || !cert.ok()) {
      ADD_FAILURE() << (krl.ok() ? cert.error().message : krl.error().message);
      return std::nullopt;
    }
    auto why = krl->revoked(*cert);
    EXPECT_EQ(why.has_value(), kg_.keygen_says_revoked(krl_path, cert_path))
        << "ssh-keygen -Q disagrees on " << cert_path << " (we say: " << why.value_or("not revoked")
        << ")";
    return why;
  }

  bool revoked(const std::string& krl_path, const std::string& cert_path) {
    return decide(krl_path, cert_path).has_value();
  }

  // The same for a plain public key.
  bool key_revoked(const std::string& krl_path, const std::string& key) {
    auto krl = Krl::load(krl_path);
    auto pub = parse_public_key_text(testing::read_file(key + ".pub"));
    if (!krl.ok() || !pub.ok()) {
      ADD_FAILURE() << (krl.ok() ? pub.error().message : krl.error().message);
      return false;
    }
    bool ours = krl->key_revoked(*pub).has_value();
    EXPECT_EQ(ours, kg_.keygen_says_revoked(krl_path, key + ".pub"))
        << "ssh-keygen -Q disagrees on " << key;
    return ours;
  }

  // ssh-keygen refuses to load the KRL at all.
  bool keygen_rejects(const std::string& krl_path, const std::string& cert_path) {
    auto r = testing::run({"ssh-keygen", "-Q", "-f", krl_path, cert_path});
    return r.status != 0 && r.output.find("REVOKED") == std::string::npos;
  }

  ByteVector bytes_of(const std::string& path) { return to_bytes(testing::read_file(path)); }

  Keygen kg_;
  std::string ca_ = kg_.make_key("ca");
  std::string user_ = kg_.make_key("user");
  int krls_ = 0;
};

TEST_F(KrlTest, SerialInListIsRevoked) {
  std::string k = krl("serial: 5\nserial: 1000000\nserial: 5000000000\n", ca_);
  ASSERT_EQ(cert_subsection_types(bytes_of(k)), std::vector<std::uint8_t>{0x20});
  EXPECT_TRUE(revoked(k, cert(5)));
  EXPECT_TRUE(revoked(k, cert(1000000)));
  EXPECT_TRUE(revoked(k, cert(5000000000)));
  EXPECT_FALSE(revoked(k, cert(6)));
  EXPECT_FALSE(revoked(k, cert(999999)));
}

TEST_F(KrlTest, LongListIsReadWholeWhileTheFileIsGivenBackBehindTheParser) {
  // 40 000 serials far apart: one list of 320 KB, more than the steps in
  // which loading gives the file's pages back, so the first and last
  // serials lie in pages given back before and after the others are read.
  std::string spec;
  for (std::uint64_t i = 1; i <= 40000; ++i) spec += "serial: " + std::to_string(i * 1000) + "\n";
  std::string k = krl(spec, ca_);
  ASSERT_EQ(cert_subsection_types(bytes_of(k)), std::vector<std::uint8_t>{0x20});
  ASSERT_GT(bytes_of(k).size(), 320000u);
  for (std::uint64_t s : {1000, 8192000, 20000000, 39999000, 40000000}) EXPECT_TRUE(revoked(k, cert(s))) << s;
  for (std::uint64_t s : {999, 20000001, 40001000}) EXPECT_FALSE(revoked(k, cert(s))) << s;
}

TEST_F(KrlTest, SerialInRangeIsRevoked) {
  std::string k = krl("serial: 1000-900000\n", ca_);
  ASSERT_EQ(cert_subsection_types(bytes_of(k)), std::vector<std::uint8_t>{0x21});
  EXPECT_TRUE(revoked(k, cert(1000)));
  EXPECT_TRUE(revoked(k, cert(424242)));
  EXPECT_TRUE(revoked(k, cert(900000)));
  EXPECT_FALSE(revoked(k, cert(999)));
  EXPECT_FALSE(revoked(k, cert(900001)));
}

TEST_F(KrlTest, SerialInDenseSetIsRevokedThroughABitmap) {
  std::string spec;
  for (int s = 100; s < 300; ++s)
    if (s % 3 != 0) spec += "serial: " + std::to_string(s) + "\n";
  std::string k = krl(spec, ca_);
  ASSERT_EQ(cert_subsection_types(bytes_of(k)), std::vector<std::uint8_t>{0x22});
  EXPECT_TRUE(revoked(k, cert(100)));
  EXPECT_TRUE(revoked(k, cert(101)));
  EXPECT_TRUE(revoked(k, cert(299)));
  EXPECT_FALSE(revoked(k, cert(99)));
  EXPECT_FALSE(revoked(k, cert(102)));
  EXPECT_FALSE(revoked(k, cert(300)));
}

TEST_F(KrlTest, MixedSerialsUseEveryEncodingAndAgreeWithSshKeygen) {
  std::string spec = "serial: 7\nserial: 100000-200000\nserial: 90000000\n";
  for (int s = 1000; s < 1100; s += 2) spec += "serial: " + std::to_string(s) + "\n";
  std::string k = krl(spec, ca_);
  auto types = cert_subsection_types(bytes_of(k));
  for (std::uint8_t t : {0x20, 0x21, 0x22})
    EXPECT_NE(std::find(types.begin(), types.end(), t), types.end())
        << "no subsection 0x" << std::hex << int(t);
  for (std::uint64_t s : {6, 7, 8, 999, 1000, 1001, 1098, 1099, 1100, 99999, 100000, 150001, 200000,
                          200001, 90000000, 90000001})
    revoked(k, cert(s));
}

TEST_F(KrlTest, KeyIdIsRevokedUnderItsCa) {
  std::string other_ca = kg_.make_key("other-ca");
  std::string k = krl("id: bot-x\n", ca_);
  ASSERT_EQ(cert_subsection_types(bytes_of(k)), std::vector<std::uint8_t>{0x23});
  EXPECT_TRUE(revoked(k, cert(1, "bot-x")));
  EXPECT_TRUE(revoked(k, cert(0, "bot-x")));
  EXPECT_FALSE(revoked(k, cert(1, "bot-y")));
  EXPECT_FALSE(revoked(k, cert(1, "bot-x", other_ca)));
}

TEST_F(KrlTest, KeyIdInSectionForAnyCaIsRevokedWhoeverSigned) {
  std::string other_ca = kg_.make_key("other-ca");
  std::string k =
      write(KrlWriter().section(1, cert_section({}, {key_ids({"bot-x", "bot-z"})})).bytes());
  EXPECT_TRUE(revoked(k, cert(1, "bot-x")));
  EXPECT_TRUE(revoked(k, cert(1, "bot-x", other_ca)));
  EXPECT_TRUE(revoked(k, cert(1, "bot-z", other_ca)));
  EXPECT_FALSE(revoked(k, cert(1, "bot-y")));
}

TEST_F(KrlTest, SerialInSectionForAnyCaIsRevokedWhoeverSigned) {
  // ssh-keygen will not write serials without a CA, but sshd honours them.
  std::string other_ca = kg_.make_key("other-ca");
  std::string k = write(
      KrlWriter().section(1, cert_section({}, {serial_list({9}), serial_range(20, 30)})).bytes());
  EXPECT_TRUE(revoked(k, cert(9)));
  EXPECT_TRUE(revoked(k, cert(9, "bot-ci", other_ca)));
  EXPECT_TRUE(revoked(k, cert(25, "bot-ci", other_ca)));
  EXPECT_FALSE(revoked(k, cert(10, "bot-ci", other_ca)));
}

TEST_F(KrlTest, ExplicitKeyIsRevoked) {
  std::string other = kg_.make_key("other");
  std::string k = krl("key: " + testing::read_file(user_ + ".pub"));
  ASSERT_EQ(section_types(bytes_of(k)), std::vector<std::uint8_t>{2});
  EXPECT_TRUE(key_revoked(k, user_));
  EXPECT_TRUE(revoked(k, cert(1)));
  EXPECT_TRUE(revoked(k, cert(0)));
  EXPECT_FALSE(key_revoked(k, other));
  EXPECT_FALSE(revoked(k, cert(1, "bot-ci", "", other)));
}

TEST_F(KrlTest, PublicKeyFileGivenToSshKeygenRevokesTheKey) {
  std::string k = krl(testing::read_file(user_ + ".pub"));
  EXPECT_TRUE(key_revoked(k, user_));
  EXPECT_TRUE(revoked(k, cert(3)));
}

TEST_F(KrlTest, Sha1FingerprintRevokesTheKey) {
  std::string other = kg_.make_key("other", "ecdsa");
  std::string k = krl("sha1: " + testing::read_file(user_ + ".pub"));
  ASSERT_EQ(section_types(bytes_of(k)), std::vector<std::uint8_t>{3});
  EXPECT_TRUE(key_revoked(k, user_));
  EXPECT_TRUE(revoked(k, cert(1)));
  EXPECT_FALSE(key_revoked(k, other));
}

TEST_F(KrlTest, Sha256FingerprintRevokesTheKey) {
  std::string other = kg_.make_key("other", "rsa", 2048);
  std::string k = krl("sha256: " + testing::read_file(user_ + ".pub"));
  ASSERT_EQ(section_types(bytes_of(k)), std::vector<std::uint8_t>{5});
  EXPECT_TRUE(key_revoked(k, user_));
  EXPECT_TRUE(revoked(k, cert(1)));
  EXPECT_FALSE(key_revoked(k, other));
}

TEST_F(KrlTest, HashLineWithSha256FingerprintRevokesTheKey) {
  std::string k = krl("hash: " + fingerprint_sha256(blob(user_)) + "\n");
  ASSERT_EQ(section_types(bytes_of(k)), std::vector<std::uint8_t>{5});
  EXPECT_TRUE(key_revoked(k, user_));
  EXPECT_TRUE(revoked(k, cert(1)));
}

TEST_F(KrlTest, RevokedCaKeyRevokesEveryCertificateItSigned) {
  std::string other_ca = kg_.make_key("other-ca");
  std::string k = krl("key: " + testing::read_file(ca_ + ".pub"));
  auto why = decide(k, cert(1));
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, "CA key " + fingerprint_sha256(blob(ca_)) + " revoked as an explicit key");
  EXPECT_TRUE(revoked(k, cert(0, "anyone")));
  EXPECT_FALSE(revoked(k, cert(1, "bot-ci", other_ca)));
}

TEST_F(KrlTest, CaKeyRevokedByFingerprintRevokesItsCertificates) {
  std::string k = krl("hash: " + fingerprint_sha256(blob(ca_)) + "\n");
  auto why = decide(k, cert(1));
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, "CA key " + fingerprint_sha256(blob(ca_)) + " revoked by SHA-256 fingerprint");
}

TEST_F(KrlTest, SerialZeroIsNeverRevokedBySerial) {
  std::string k = krl("serial: 1-18446744073709551615\n", ca_);
  EXPECT_FALSE(revoked(k, cert(0)));
  EXPECT_TRUE(revoked(k, cert(1)));
  EXPECT_TRUE(revoked(k, cert(kMaxSerial)));
}

TEST_F(KrlTest, KrlRevokingSerialZeroIsRejectedAsOpenSshDoes) {
  std::string c = cert(0);
  for (const Subsection& sub :
       {serial_list({3, 0}), serial_range(0, 5), serial_bitmap(0, {0x01})}) {
    ByteVector bytes = KrlWriter().section(1, cert_section(blob(ca_), {sub})).bytes();
    auto krl = Krl::parse(bytes);
    ASSERT_FALSE(krl.ok()) << "subsection 0x" << std::hex << int(sub.first);
    EXPECT_NE(krl.error().message.find("serial 0 cannot be revoked"), std::string::npos)
        << krl.error().message;
    EXPECT_TRUE(keygen_rejects(write(bytes), c));
  }
}

TEST_F(KrlTest, SameSerialFromAnotherCaIsNotRevoked) {
  std::string other_ca = kg_.make_key("other-ca", "ecdsa");
  std::string k = krl("serial: 42\nserial: 100-200\n", ca_);
  EXPECT_TRUE(revoked(k, cert(42)));
  EXPECT_FALSE(revoked(k, cert(42, "bot-ci", other_ca)));
  EXPECT_FALSE(revoked(k, cert(150, "bot-ci", other_ca)));
}

TEST_F(KrlTest, EmptyKrlRevokesNothing) {
  std::string k = krl("");
  EXPECT_EQ(section_types(bytes_of(k)), std::vector<std::uint8_t>{});
  EXPECT_FALSE(revoked(k, cert(1)));
  EXPECT_FALSE(revoked(k, cert(0)));
  EXPECT_FALSE(key_revoked(k, user_));
}

TEST_F(KrlTest, EmptyFileRevokesNothingAsSshdReadsIt) {
  std::string path = kg_.dir().file("empty.krl");
  testing::write_file(path, "");
  auto krl = Krl::load(path);
  ASSERT_TRUE(krl.ok()) << krl.error().message;
  EXPECT_FALSE(krl->revoked(*parse_certificate_text(testing::read_file(cert(1)))));
  // Parsing itself stays strict: no bytes is not a KRL.
  EXPECT_FALSE(Krl::parse({}).ok());
}

TEST_F(KrlTest, MissingFileIsAnIoErrorNamingThePath) {
  std::string path = kg_.dir().file("absent.krl");
  auto krl = Krl::load(path);
  ASSERT_FALSE(krl.ok());
  EXPECT_EQ(krl.error().code, Errc::io);
  EXPECT_NE(krl.error().message.find(path), std::string::npos) << krl.error().message;
  EXPECT_NE(krl.error().message.find("No such file or directory"), std::string::npos)
      << krl.error().message;
}

TEST_F(KrlTest, VersionIsRead) {
  auto krl = Krl::parse(KrlWriter(12345).bytes());
  ASSERT_TRUE(krl.ok()) << krl.error().message;
  EXPECT_EQ(krl->version(), 12345u);
}

TEST_F(KrlTest, ReasonsNameWhatRevokedTheCertificate) {
  std::string ca_fp = fingerprint_sha256(blob(ca_));
  EXPECT_EQ(decide(krl("serial: 7\n", ca_), cert(7)), "serial 7 revoked by CA " + ca_fp);
  EXPECT_EQ(decide(krl("id: bot-x\n", ca_), cert(7, "bot-x")),
            "key id \"bot-x\" revoked by CA " + ca_fp);
  EXPECT_EQ(decide(krl("sha1: " + testing::read_file(user_ + ".pub")), cert(7)),
            "key " + fingerprint_sha256(blob(user_)) + " revoked by SHA-1 fingerprint");
  // A key id is the certificate's text: escaped by escape_untrusted, as
  // every line that reaches a terminal or the journal is.
  std::string any = write(KrlWriter().section(1, cert_section({}, {key_ids({"a\"b\n\x1b[31m"})})).bytes());
  auto krl = Krl::load(any);
  ASSERT_TRUE(krl.ok());
  Certificate c = *parse_certificate_text(testing::read_file(cert(7)));
  c.key_id = "a\"b\n\x1b[31m";
  EXPECT_EQ(krl->revoked(c), "key id \"a\"b\\012\\033[31m\" revoked for any CA");
}

TEST_F(KrlTest, OverlappingSectionsForOneCaAreMerged) {
  ByteVector ca = blob(ca_);
  // Bitmaps 0b1010_0101 from 64 and 0b1_0000_0011 from 70 overlap; the
  // ranges overlap too; two sections name the same CA.
  ByteVector bytes =
      KrlWriter()
          .section(1, cert_section(ca, {serial_bitmap(64, {0xa5}), serial_range(500, 600)}))
          .section(1, cert_section(ca, {serial_bitmap(70, {0x01, 0x03}), serial_range(550, 700),
                                        key_ids({"bot-x"})}))
          .bytes();
  std::string k = write(bytes);
  for (std::uint64_t s :
       {63, 64, 65, 66, 67, 69, 70, 71, 72, 77, 78, 79, 499, 500, 600, 650, 700, 701})
    revoked(k, cert(s));
  EXPECT_TRUE(revoked(k, cert(64)));
  EXPECT_TRUE(revoked(k, cert(71)));
  EXPECT_TRUE(revoked(k, cert(78)));
  EXPECT_FALSE(revoked(k, cert(77)));
  EXPECT_TRUE(revoked(k, cert(650)));
  EXPECT_TRUE(revoked(k, cert(1, "bot-x")));
}

TEST_F(KrlTest, UnsortedAndRepeatedEntriesSplitOverManyPartsAreAllFound) {
  // ssh-keygen writes each list sorted and once; another writer need not,
  // and may split one CA's serials, key ids and hashes over several parts.
  std::string other = kg_.make_key("other", "ecdsa");
  ByteVector ca = blob(ca_);
  Sha256Digest user_hash = sha256(blob(user_));
  ByteVector low(32, 0x00), high(32, 0xff);
  ByteVector bytes =
      KrlWriter()
          .section(1, cert_section(ca, {serial_list({900, 30, 30, 7000}),
                                        key_ids({"zeta", "alpha", "zeta"})}))
          .section(5, hashes({high, ByteVector(user_hash.begin(), user_hash.end())}))
          .section(1, cert_section(ca, {serial_list({31, 5, 900}), serial_range(40, 41),
                                        serial_list({2})}))
          .section(5, hashes({low}))
          .bytes();
  std::string k = write(bytes);
  for (std::uint64_t s : {2, 5, 30, 31, 40, 41, 900, 7000})
    EXPECT_TRUE(revoked(k, cert(s, "bot-ci", "", other))) << s;
  for (std::uint64_t s : {1, 3, 29, 32, 39, 42, 899, 901, 7001})
    EXPECT_FALSE(revoked(k, cert(s, "bot-ci", "", other))) << s;
  EXPECT_TRUE(revoked(k, cert(1000, "alpha", "", other)));
  EXPECT_TRUE(revoked(k, cert(1000, "zeta", "", other)));
  EXPECT_FALSE(revoked(k, cert(1000, "beta", "", other)));
  EXPECT_TRUE(key_revoked(k, user_));
  EXPECT_FALSE(key_revoked(k, other));
}

TEST_F(KrlTest, BitmapFarFromZeroIsCheckedInPlace) {
  std::uint64_t first = kMaxSerial - 15;
  ByteVector bits(2, 0);
  bits[0] = 0x80;  // bit 15: the largest serial
  bits[1] = 0x02;  // bit 1
  std::string k =
      write(KrlWriter().section(1, cert_section(blob(ca_), {serial_bitmap(first, bits)})).bytes());
  EXPECT_TRUE(revoked(k, cert(kMaxSerial)));
  EXPECT_TRUE(revoked(k, cert(first + 1)));
  EXPECT_FALSE(revoked(k, cert(first)));
  EXPECT_FALSE(revoked(k, cert(kMaxSerial - 1)));
}

TEST_F(KrlTest, BitmapRunningPastTheLargestSerialIsRejected) {
  auto krl = Krl::parse(
      KrlWriter().section(1, cert_section(blob(ca_), {serial_bitmap(kMaxSerial, {0x02})})).bytes());
  ASSERT_FALSE(krl.ok());
  EXPECT_NE(krl.error().message.find("runs past the largest serial"), std::string::npos)
      << krl.error().message;
}

TEST_F(KrlTest, SectionForCaKeyTypeWeDoNotSupportLoadsAndRevokesOnlyItsOwn) {
  std::string dsa_ca = kg_.make_key("dsa-ca", "dsa");
  std::string k = krl("serial: 5\nid: bot-ci\n", dsa_ca);
  EXPECT_FALSE(revoked(k, cert(5)));
}

TEST_F(KrlTest, DecisionsAgreeWithSshKeygenForEveryCertificateAndKrl) {
  std::string ca2 = kg_.make_key("ca2", "ecdsa");
  std::string ca3 = kg_.make_key("ca3", "rsa", 2048);
  std::string ecdsa = kg_.make_key("user-ecdsa", "ecdsa");
  std::string rsa = kg_.make_key("user-rsa", "rsa", 2048);
  std::vector<std::string> certs;
  for (const std::string& ca : {ca_, ca2, ca3})
    for (const std::string& key : {user_, ecdsa, rsa})
      for (std::uint64_t serial : {0, 1, 5, 64, 65, 1000, 123456789})
        for (const char* id : {"bot-ci", "bot-x"}) certs.push_back(cert(serial, id, ca, key));

  std::string serial_spec = "serial: 5\nserial: 60-70\nserial: 999-1001\n";
  std::vector<std::string> krls = {
      krl(""),
      krl(serial_spec, ca_),
      krl(serial_spec + "id: bot-x\n", ca2),
      krl("id: bot-ci\nserial: 123456789\n", ca3),
      krl("key: " + testing::read_file(ecdsa + ".pub")),
      krl("sha1: " + testing::read_file(rsa + ".pub")),
      krl("sha256: " + testing::read_file(user_ + ".pub")),
      krl("key: " + testing::read_file(ca3 + ".pub")),
      krl("hash: " + fingerprint_sha256(blob(ca2)) + "\n"),
      write(KrlWriter()
                .section(1, cert_section({}, {serial_list({1, 64}), key_ids({"bot-x"})}))
                .section(1, cert_section(blob(ca2), {serial_bitmap(1000, {0xff})}))
                .section(5, hashes({ByteVector(32, 7)}))
                .bytes()),
  };
  int revoked_count = 0;
  for (const auto& k : krls)
    for (const auto& c : certs) revoked_count += revoked(k, c) ? 1 : 0;
  // Both outcomes occur, so the agreement means something.
  EXPECT_GT(revoked_count, 0);
  EXPECT_LT(revoked_count, static_cast<int>(krls.size() * certs.size()));
}

// Corrupt and hostile input: always an error, never a crash.

class CorruptKrlTest : public KrlTest {
 protected:
  // A KRL with every kind of section and subsection.
  ByteVector rich() {
    return KrlWriter()
        .section(1, cert_section(blob(ca_), {serial_list({5, 9}),
                                             serial_range(20, 30),
                                             serial_bitmap(64, {0x0f}),
                                             key_ids({"bot-x"}),
                                             {0x39, extension("x@example.com", false)}}))
        .section(2, hashes({blob(kg_.make_key("other"))}))
        .section(3, hashes({ByteVector(20, 1)}))
        .section(5, hashes({ByteVector(32, 2)}))
        .section(255, extension("y@example.com", false))
        .signature()
        .bytes();
  }

  Error error_of(const ByteVector& bytes) {
    auto krl = Krl::parse(bytes);
    if (krl.ok()) {
      ADD_FAILURE() << "parsed";
      return {};
    }
    return krl.error();
  }
};

TEST_F(CorruptKrlTest, RichKrlParses) {
  auto krl = Krl::parse(rich());
  ASSERT_TRUE(krl.ok()) << krl.error().message;
  Certificate c = *parse_certificate_text(testing::read_file(cert(66)));
  EXPECT_EQ(krl->revoked(c), "serial 66 revoked by CA " + fingerprint_sha256(blob(ca_)));
}

TEST_F(CorruptKrlTest, BadMagicIsRejected) {
  ByteVector bytes = rich();
  bytes[3] ^= 0x20;
  Error e = error_of(bytes);
  EXPECT_EQ(e.code, Errc::malformed);
  EXPECT_EQ(e.message, "KRL header at byte 0: bad magic, not an OpenSSH KRL");
}

TEST_F(CorruptKrlTest, UnknownFormatVersionIsRejected) {
  ByteVector bytes = rich();
  bytes[11] = 2;
  EXPECT_EQ(error_of(bytes).code, Errc::unsupported);
}

TEST_F(CorruptKrlTest, TruncatedKrlIsAnErrorUnlessCutAtASectionBoundary) {
  ByteVector bytes = rich();
  auto ends = section_ends(bytes);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    bool boundary = std::find(ends.begin(), ends.end(), n) != ends.end();
    auto krl = Krl::parse(Bytes(bytes).first(n));
    EXPECT_EQ(krl.ok(), boundary) << "cut at " << n;
  }
}

TEST_F(CorruptKrlTest, FlippedSectionLengthIsRejected) {
  ByteVector bytes = rich();
  std::size_t length_at = after_header(bytes).offset() + 1;  // the first section's uint32 length
  for (int delta : {-1, 1, 0x100, 0x1000000}) {
    ByteVector copy = bytes;
    std::uint32_t len = (std::uint32_t{copy[length_at]} << 24) | (copy[length_at + 1] << 16) |
                        (copy[length_at + 2] << 8) | copy[length_at + 3];
    len += static_cast<std::uint32_t>(delta);
    for (int i = 0; i < 4; ++i)
      copy[length_at + i] = static_cast<std::uint8_t>(len >> (24 - 8 * i));
    EXPECT_FALSE(Krl::parse(copy).ok()) << "delta " << delta;
  }
}

TEST_F(CorruptKrlTest, FlippedBytesNeverCrashParsingOrChecking) {
  // Not every flip is invalid (a serial may change); whatever parses is checked.
  ByteVector bytes = rich();
  Certificate c = *parse_certificate_text(testing::read_file(cert(66)));
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (std::uint8_t mask : {0x01, 0x80, 0xff}) {
      ByteVector copy = bytes;
      copy[i] ^= mask;
      auto krl = Krl::parse(copy);
      if (krl.ok()) (void)krl->revoked(c);
    }
  }
}

TEST_F(CorruptKrlTest, UnknownCriticalExtensionIsRejected) {
  Error top = error_of(KrlWriter().section(255, extension("future@example.com", true)).bytes());
  EXPECT_EQ(top.code, Errc::unsupported);
  EXPECT_NE(top.message.find("unknown critical extension \"future@example.com\""),
            std::string::npos)
      << top.message;
  Error sub = error_of(
      KrlWriter()
          .section(1, cert_section(blob(ca_), {{0x39, extension("future@example.com", true)}}))
          .bytes());
  EXPECT_EQ(sub.code, Errc::unsupported);
  EXPECT_NE(sub.message.find("subsection 0x39 (extension)"), std::string::npos) << sub.message;
}

TEST_F(CorruptKrlTest, NonCriticalExtensionsAreIgnored) {
  auto krl =
      Krl::parse(KrlWriter()
                     .section(255, extension("later@example.com", false))
                     .section(1, cert_section({}, {{0x39, extension("later@example.com", false)}}))
                     .bytes());
  EXPECT_TRUE(krl.ok()) << krl.error().message;
}

TEST_F(CorruptKrlTest, ExtensionWithTrailingBytesIsRejected) {
  ByteVector ext = extension("later@example.com", false);
  ext.push_back(0);
  EXPECT_FALSE(Krl::parse(KrlWriter().section(255, ext).bytes()).ok());
}

TEST_F(CorruptKrlTest, NonSignatureSectionAfterSignatureIsRejected) {
  EXPECT_TRUE(
      Krl::parse(
          KrlWriter().section(5, hashes({ByteVector(32, 1)})).signature().signature().bytes())
          .ok());
  Error e = error_of(KrlWriter().signature().section(5, hashes({ByteVector(32, 1)})).bytes());
  EXPECT_NE(e.message.find("only signature sections may follow a signature section"),
            std::string::npos)
      << e.message;
}

TEST_F(CorruptKrlTest, HashOfWrongLengthIsRejected) {
  EXPECT_FALSE(Krl::parse(KrlWriter().section(3, hashes({ByteVector(32, 1)})).bytes()).ok());
  EXPECT_FALSE(Krl::parse(KrlWriter().section(5, hashes({ByteVector(20, 1)})).bytes()).ok());
  EXPECT_FALSE(Krl::parse(KrlWriter().section(5, hashes({ByteVector(31, 1)})).bytes()).ok());
  EXPECT_FALSE(Krl::parse(KrlWriter().section(5, hashes({ByteVector(32, 1), {}})).bytes()).ok());
}

TEST_F(CorruptKrlTest, ErrorNamesTheSectionAndTheByte) {
  ByteVector bytes = KrlWriter().section(5, hashes({ByteVector(32, 1), ByteVector(31, 1)})).bytes();
  std::size_t bad_hash_at = after_header(bytes).offset() + 1 + 4 + 4 + 32;
  Error e = error_of(bytes);
  EXPECT_EQ(e.message, "KRL section 5 (SHA-256 fingerprints) at byte " +
                           std::to_string(bad_hash_at) + ": hash of 31 bytes, expected 32");
}

TEST_F(CorruptKrlTest, SerialRangeWithMinAboveMaxIsRejected) {
  Error e = error_of(KrlWriter().section(1, cert_section(blob(ca_), {serial_range(9, 8)})).bytes());
  EXPECT_NE(e.message.find("subsection 0x21 (serial range)"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("serial range 9-8 has min > max"), std::string::npos) << e.message;
}

TEST_F(CorruptKrlTest, SubsectionsWithTrailingOrMissingBytesAreRejected) {
  auto with_tail = [](Subsection s) {
    s.second.push_back(0);
    return s;
  };
  ByteVector ca = blob(ca_);
  EXPECT_FALSE(
      Krl::parse(KrlWriter().section(1, cert_section(ca, {with_tail(serial_list({1}))})).bytes())
          .ok());
  EXPECT_FALSE(
      Krl::parse(KrlWriter().section(1, cert_section(ca, {with_tail(serial_range(1, 2))})).bytes())
          .ok());
  EXPECT_FALSE(
      Krl::parse(
          KrlWriter().section(1, cert_section(ca, {with_tail(serial_bitmap(1, {1}))})).bytes())
          .ok());
  EXPECT_FALSE(
      Krl::parse(KrlWriter().section(1, cert_section(ca, {with_tail(key_ids({"x"}))})).bytes())
          .ok());
}

TEST_F(CorruptKrlTest, UnknownSectionAndSubsectionTypesAreRejected) {
  EXPECT_EQ(error_of(KrlWriter().section(6, {}).bytes()).code, Errc::unsupported);
  EXPECT_EQ(error_of(KrlWriter().section(1, cert_section({}, {{0x24, {}}})).bytes()).code,
            Errc::unsupported);
}

TEST_F(CorruptKrlTest, MalformedCaKeyIsRejected) {
  ByteVector ca = blob(ca_);
  ca.pop_back();
  EXPECT_FALSE(
      Krl::parse(KrlWriter().section(1, cert_section(ca, {serial_list({1})})).bytes()).ok());
}

TEST_F(CorruptKrlTest, KeyIdWithNulIsRejected) {
  WireWriter w;
  w.string(std::string_view("a\0b", 3));
  EXPECT_FALSE(
      Krl::parse(KrlWriter().section(1, cert_section({}, {{0x23, w.take()}})).bytes()).ok());
}

TEST_F(CorruptKrlTest, HugeLengthsAreRejected) {
  // A section, a subsection, a key id and the comment each claim 4 GiB.
  ByteVector section = KrlWriter().bytes();
  for (std::uint8_t b : {0x05, 0xff, 0xff, 0xff, 0xff, 0x00}) section.push_back(b);
  EXPECT_FALSE(Krl::parse(section).ok());
  EXPECT_FALSE(
      Krl::parse(
          KrlWriter().section(1, cert_section({}, {{0x23, {0xff, 0xff, 0xff, 0xff, 'x'}}})).bytes())
          .ok());
  ByteVector sub = cert_section({}, {});
  for (std::uint8_t b : {0x20, 0xff, 0xff, 0xff, 0xff}) sub.push_back(b);
  EXPECT_FALSE(Krl::parse(KrlWriter().section(1, sub).bytes()).ok());
  WireWriter header;
  header.u64(kMagic).u32(1).u64(1).u64(0).u64(0).string("").u32(0xffffffff);
  EXPECT_FALSE(Krl::parse(header.bytes()).ok());
}

TEST_F(CorruptKrlTest, HugeBitmapIsRejected) {
  ByteVector bits(kMaxMpintBytes + 1, 0x01);
  bits[0] = 0x7f;
  EXPECT_EQ(
      error_of(KrlWriter().section(1, cert_section({}, {serial_bitmap(1, bits)})).bytes()).code,
      Errc::limit);
}

TEST_F(CorruptKrlTest, KrlLargerThanTheLimitIsRejected) {
  ByteVector bytes = KrlWriter().bytes();
  bytes.resize(kMaxKrlBytes + 1);
  EXPECT_EQ(error_of(bytes).code, Errc::limit);
}

}  // namespace
}  // namespace machineid
