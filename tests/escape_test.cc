// escape_untrusted: certificate and policy text made safe for terminals,
// log lines and journald fields, after OpenSSH's strnvis.
#include <gtest/gtest.h>

#include <string>

#include "machineid/encoding.h"

namespace machineid {
namespace {

TEST(EscapeTest, PrintableAsciiAndValidUtf8PassUnchanged) {
  EXPECT_EQ(escape_untrusted("bot-ci@example 'x' \"y\" {z}"), "bot-ci@example 'x' \"y\" {z}");
  EXPECT_EQ(escape_untrusted("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\x91"),
            "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\x91");
  EXPECT_EQ(escape_untrusted(""), "");
}

TEST(EscapeTest, ControlCharactersEscNewlinesAndDelBecomeOctalEscapes) {
  EXPECT_EQ(escape_untrusted("evil\x1b[31m"), "evil\\033[31m");
  EXPECT_EQ(escape_untrusted("a\nb\rc\td"), "a\\012b\\015c\\011d");
  EXPECT_EQ(escape_untrusted(std::string("nul\0x", 5)), "nul\\000x");
  EXPECT_EQ(escape_untrusted("del\x7f"), "del\\177");
}

TEST(EscapeTest, InvalidUtf8IsEscapedBytewise) {
  EXPECT_EQ(escape_untrusted("\xff\xfe"), "\\377\\376");
  EXPECT_EQ(escape_untrusted("\xc0\xaf"), "\\300\\257");                    // overlong '/'
  EXPECT_EQ(escape_untrusted("\xed\xa0\x80"), "\\355\\240\\200");           // a surrogate
  EXPECT_EQ(escape_untrusted("\xe2\x9c"), "\\342\\234");                    // truncated
  EXPECT_EQ(escape_untrusted("\xf4\x90\x80\x80"), "\\364\\220\\200\\200");  // beyond U+10FFFF
}

TEST(EscapeTest, CodePointsThatActOnADisplayAreEscaped) {
  EXPECT_EQ(escape_untrusted("\xc2\x9b"
                             "31m"),
            "\\302\\23331m");  // C1 CSI
  EXPECT_EQ(escape_untrusted("a\xe2\x80\xae"
                             "b"),
            "a\\342\\200\\256b");  // right-to-left override
  EXPECT_EQ(escape_untrusted("a\xe2\x80\xa8"
                             "b"),
            "a\\342\\200\\250b");  // line separator
}

TEST(EscapeTest, EscapingTwiceChangesNothing) {
  for (std::string s : {"evil\x1b[31m\n", "back\\slash", "\xff", "plain"})
    EXPECT_EQ(escape_untrusted(escape_untrusted(s)), escape_untrusted(s)) << s;
  EXPECT_EQ(escape_untrusted("back\\slash"), "back\\slash");
}

}  // namespace
}  // namespace machineid
