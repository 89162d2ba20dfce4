// The sudoers file of a host user (include/machineid/sudoers.h), checked
// with the real visudo where it is installed.
#include "machineid/sudoers.h"

#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fixtures.h"

namespace machineid {
namespace {

TEST(Sudoers, FileNameIsOneSudoReadsAndStaysInItsDirectory) {
  EXPECT_EQ(sudoers_file_name("bot-ci"), "machineid-bot-ci");
  EXPECT_EQ(sudoers_file_name("first.last"), "machineid-first_last");
  EXPECT_EQ(sudoers_file_name("a~b"), "machineid-a_b");
  EXPECT_EQ(sudoers_file_name("../etc/passwd"), "machineid-___etc_passwd");
}

TEST(Sudoers, EachEntryIsOneLineForTheLogin) {
  auto content = sudoers_content("bot-ci", {"ALL=(ALL) NOPASSWD: ALL", "ALL=(root) /usr/bin/systemctl restart app"});
  ASSERT_TRUE(content.ok()) << content.error().message;
  EXPECT_EQ(*content, "bot-ci ALL=(ALL) NOPASSWD: ALL\nbot-ci ALL=(root) /usr/bin/systemctl restart app\n");
  auto none = sudoers_content("bot-ci", {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, "");
}

TEST(Sudoers, EntryThatCouldReachPastItsLineIsRefused) {
  // A trait holding a newline would otherwise grant a rule to anyone.
  for (const std::string& entry :
       std::vector<std::string>{"ALL=(ALL) ALL\nALL ALL=(ALL) NOPASSWD: ALL", "ALL=(ALL) ALL\\", "   ",
                                std::string("ALL=(ALL) \0ALL", 14), "ALL=(ALL)\rALL"}) {
    auto content = sudoers_content("bot-ci", {"ALL=(root) /bin/true", entry});
    ASSERT_FALSE(content.ok()) << entry;
    EXPECT_NE(content.error().message.find("host_sudoers entry"), std::string::npos);
  }
}

TEST(Sudoers, VisudoAcceptsWhatIsWrittenAndRefusesGarbage) {
  if (access("/usr/sbin/visudo", X_OK) != 0) GTEST_SKIP() << "visudo is not installed";
  testing::TempDir dir;
  auto check = [&](const std::string& content) {
    testing::write_file(dir.file("candidate"), content);
    return testing::run({"/usr/sbin/visudo", "-cf", dir.file("candidate")}).status;
  };
  auto content = sudoers_content("bot-ci", {"ALL=(ALL) NOPASSWD: ALL"});
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(check(*content), 0);
  auto bad = sudoers_content("bot-ci", {"yipee i broke sudo"});
  ASSERT_TRUE(bad.ok());  // one line, so visudo is what refuses it
  EXPECT_NE(check(*bad), 0);
}

}  // namespace
}  // namespace machineid
