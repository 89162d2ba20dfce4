// The bounded wire reader and base64: every bound and refusal.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "machineid/encoding.h"
#include "machineid/wire.h"

namespace machineid {
namespace {

TEST(WireReaderTest, ReadsIntegersAndStringsInOrder) {
  WireWriter w;
  w.u8(7).u32(0xdeadbeef).u64(0x0102030405060708).string("abc").u8(1);
  WireReader r(w.bytes());
  EXPECT_EQ(*r.u8(), 7);
  EXPECT_EQ(*r.u32(), 0xdeadbeefu);
  EXPECT_EQ(*r.u64(), 0x0102030405060708u);
  EXPECT_EQ(as_string_view(*r.string()), "abc");
  EXPECT_EQ(*r.boolean(), true);
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.expect_end("test").ok());
}

TEST(WireReaderTest, ShortReadsFailNamingTheOffset) {
  ByteVector three = {1, 2, 3};
  WireReader r(three);
  auto v = r.u32();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().message, "at byte 0: uint32 needs 4 bytes, 3 left");
}

TEST(WireReaderTest, StringLongerThanTheBufferIsRefused) {
  ByteVector data = {0xff, 0xff, 0xff, 0xff, 'a'};
  WireReader r(data);
  auto s = r.string();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "at byte 0: string length 4294967295 exceeds the 1 bytes left");
}

TEST(WireReaderTest, CstringRefusesEmbeddedNul) {
  WireWriter w;
  w.string(std::string_view("ro\0ot", 5));
  WireReader r(w.bytes());
  auto s = r.cstring();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("NUL"), std::string::npos);
}

TEST(WireReaderTest, BooleanMustBeZeroOrOne) {
  ByteVector two = {2};
  WireReader r(two);
  EXPECT_FALSE(r.boolean().ok());
}

TEST(WireReaderTest, MpintRefusesNegativeAndOversizedValues) {
  ByteVector negative = {0, 0, 0, 1, 0x80};
  EXPECT_FALSE(WireReader(negative).mpint().ok());
  ByteVector leading_zeros = {0, 0, 0, 3, 0, 0, 0x7f};
  auto v = WireReader(leading_zeros).mpint();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 1u);
  WireWriter big;
  big.string(ByteVector(kMaxMpintBytes, 0x01));
  auto too_big = WireReader(big.bytes()).mpint();
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, Errc::limit);
  WireWriter max;
  ByteVector at_limit(kMaxMpintBytes, 0xff);
  at_limit[0] = 0;
  max.string(at_limit);
  EXPECT_TRUE(WireReader(max.bytes()).mpint().ok());
}

TEST(WireWriterTest, MpintGetsASignByteWhenTheTopBitIsSet) {
  ByteVector magnitude = {0x80, 0x01};
  WireWriter w;
  w.mpint(magnitude);
  EXPECT_EQ(w.bytes(), (ByteVector{0, 0, 0, 3, 0, 0x80, 0x01}));
}

TEST(WireReaderTest, TrailingBytesAreReported) {
  ByteVector data = {0, 0, 0, 0, 9};
  WireReader r(data);
  ASSERT_TRUE(r.string().ok());
  auto end = r.expect_end("thing");
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.error().message, "1 trailing bytes after thing");
}

TEST(Base64Test, RoundTripsEveryLength) {
  ByteVector data;
  for (int n = 0; n < 70; ++n) {
    std::string text = base64_encode(data);
    auto back = base64_decode(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(*back, data);
    data.push_back(static_cast<std::uint8_t>(n * 37));
  }
}

TEST(Base64Test, RefusesJunkAndNonCanonicalPadding) {
  EXPECT_FALSE(base64_decode("AAA*").ok());
  EXPECT_FALSE(base64_decode("AAAA AAAA").ok());
  EXPECT_FALSE(base64_decode("A").ok());
  EXPECT_FALSE(base64_decode("AB==").ok());  // 'B' leaves non-zero bits
  EXPECT_TRUE(base64_decode("AA==").ok());
}

TEST(FingerprintTest, MatchesSshKeygen) {
  testing::Keygen kg;
  for (std::string type : {"ed25519", "ecdsa", "rsa"}) {
    std::string key = kg.make_key("k-" + type, type) + ".pub";
    std::string printed = testing::run_ok({"ssh-keygen", "-l", "-E", "sha256", "-f", key});
    // "256 SHA256:xxxx comment (ED25519)"
    std::string fp = printed.substr(printed.find(' ') + 1);
    fp = fp.substr(0, fp.find(' '));
    EXPECT_EQ(fingerprint_sha256(testing::read_key_blob(key)), fp);
  }
}

}  // namespace
}  // namespace machineid
