// The PAM session's sudoers installer (pam_machineid/sudoers.c), against
// the real visudo, in a directory of the test's own.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "fixtures.h"

extern "C" {
#include "sudoers.h"
}

namespace machineid {
namespace {

namespace fs = std::filesystem;
constexpr const char* kVisudo = "/usr/sbin/visudo";

class PamSudoersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: the file is made root's";
    if (access(kVisudo, X_OK) != 0) GTEST_SKIP() << "visudo is not installed";
  }
  int install(const std::string& name, const std::string& content, const char* visudo = kVisudo) {
    err_[0] = '\0';
    return mid_install_sudoers(dir_.path().c_str(), name.c_str(), content.data(), content.size(), visudo, err_,
                               sizeof err_);
  }
  // Everything in the directory, for "nothing else was left behind".
  std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir_.path()), fs::directory_iterator()));
  }
  testing::TempDir dir_;
  char err_[1024];
};

TEST_F(PamSudoersTest, WritesAFileVisudoAcceptsAsRootsReadOnly) {
  ASSERT_EQ(install("machineid-bot-ci", "bot-ci ALL=(ALL) NOPASSWD: ALL\n"), 0) << err_;
  std::string path = dir_.file("machineid-bot-ci");
  EXPECT_EQ(testing::read_file(path), "bot-ci ALL=(ALL) NOPASSWD: ALL\n");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0440u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(entries(), 1u) << "no temporary file left";
}

TEST_F(PamSudoersTest, SameContentIsLeftAloneNewContentReplacesIt) {
  ASSERT_EQ(install("machineid-bot-ci", "bot-ci ALL=(root) /bin/true\n"), 0) << err_;
  struct stat before {};
  ASSERT_EQ(stat(dir_.file("machineid-bot-ci").c_str(), &before), 0);
  ASSERT_EQ(install("machineid-bot-ci", "bot-ci ALL=(root) /bin/true\n"), 0) << err_;
  struct stat same {};
  ASSERT_EQ(stat(dir_.file("machineid-bot-ci").c_str(), &same), 0);
  EXPECT_EQ(same.st_ino, before.st_ino) << "rewritten although unchanged";
  ASSERT_EQ(install("machineid-bot-ci", "bot-ci ALL=(root) /bin/false\n"), 0) << err_;
  EXPECT_EQ(testing::read_file(dir_.file("machineid-bot-ci")), "bot-ci ALL=(root) /bin/false\n");
}

TEST_F(PamSudoersTest, EmptyContentRemovesTheFile) {
  ASSERT_EQ(install("machineid-bot-ci", "bot-ci ALL=(root) /bin/true\n"), 0) << err_;
  ASSERT_EQ(install("machineid-bot-ci", ""), 0) << err_;
  EXPECT_FALSE(fs::exists(dir_.file("machineid-bot-ci")));
  EXPECT_EQ(install("machineid-bot-ci", ""), 0) << "removing what is not there is fine: " << err_;
}

TEST_F(PamSudoersTest, ContentVisudoRefusesRemovesWhatWasThere) {
  ASSERT_EQ(install("machineid-bot-ci", "bot-ci ALL=(root) /bin/true\n"), 0) << err_;
  EXPECT_EQ(install("machineid-bot-ci", "bot-ci yipee i broke sudo\n"), -1);
  EXPECT_NE(std::string(err_).find("refused"), std::string::npos) << err_;
  EXPECT_FALSE(fs::exists(dir_.file("machineid-bot-ci"))) << "the old grant must not outlive the roles";
  EXPECT_EQ(entries(), 0u);
  EXPECT_EQ(install("machineid-bot-ci", "bot-ci ALL=(root) /bin/true\n", "/nonexistent/visudo"), -1);
  EXPECT_NE(std::string(err_).find("could not run"), std::string::npos) << err_;
  EXPECT_EQ(entries(), 0u);
}

TEST_F(PamSudoersTest, NamesSudoWouldSkipOrThatLeaveTheDirectoryAreRefused) {
  for (const char* name : {"bot-ci", "machineid-../../etc/x", "machineid-a.b", "machineid-a~", "machineid-a/b"}) {
    EXPECT_EQ(install(name, "x ALL=(root) /bin/true\n"), -1) << name;
    EXPECT_NE(std::string(err_).find("refusing"), std::string::npos) << err_;
  }
  EXPECT_EQ(entries(), 0u);
}

}  // namespace
}  // namespace machineid
