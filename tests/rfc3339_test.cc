#include "machineid/rfc3339.h"

#include <gtest/gtest.h>

namespace machineid {
namespace {

TEST(Rfc3339Test, FormatsWhatItParses) {
  for (const char* text : {"1970-01-01T00:00:00Z", "2026-12-02T18:30:05Z", "2000-02-29T23:59:59Z",
                           "1969-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    auto seconds = parse_rfc3339(text);
    ASSERT_TRUE(seconds.ok()) << text;
    EXPECT_EQ(format_rfc3339(*seconds), text);
  }
}

TEST(Rfc3339Test, OutsideFourDigitYearsIsPlainSeconds) {
  EXPECT_EQ(format_rfc3339(253402300800), "253402300800");
  EXPECT_EQ(format_rfc3339(-62167219201), "-62167219201");
}

TEST(Rfc3339Test, SshTimeIsCompactAndClamped) {
  EXPECT_EQ(format_ssh_time(1767229200), "20260101010000Z");
  EXPECT_EQ(format_ssh_time(INT64_MAX), "99991231235959Z");
}

}  // namespace
}  // namespace machineid
