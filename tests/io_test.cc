// Reading policy files: only regular files, never blocking; and sshd's
// StrictModes for the files and the directories above them.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "fixtures.h"
#include "machineid/io.h"

namespace machineid {
namespace {

constexpr uid_t kNobody = 65534;

TEST(ReadFileTest, AFifoIsRefusedAtOnceInsteadOfWaitingForAWriter) {
  testing::TempDir dir;
  std::string fifo = dir.file("zz.yaml");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto started = std::chrono::steady_clock::now();
  auto r = read_file(fifo, 1024);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::io);
  EXPECT_EQ(r.error().message, fifo + ": not a regular file (a FIFO); refusing to read it");
}

// Both durabilities replace the file whole, with its mode, and leave no
// temporary file behind; a file that cannot be made is an error naming it.
TEST(WriteFileAtomicTest, ReplacesWholeWithItsModeAtEitherDurability) {
  testing::TempDir dir;
  for (Durability d : {Durability::on_disk, Durability::until_reboot}) {
    std::string path = dir.file(d == Durability::on_disk ? "disk.json" : "reboot.json");
    ASSERT_TRUE(write_file_atomic(path, "old\n", 0644, d).ok());
    ASSERT_TRUE(write_file_atomic(path, "new\n", 0600, d).ok());
    EXPECT_EQ(*read_file(path, 1024), "new\n");
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    auto missing = write_file_atomic(dir.file("no-such-dir/f"), "x", 0600, d);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("no-such-dir"), std::string::npos) << missing.error().message;
  }
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 2u);  // no *.tmp.* left
}

TEST(ReadFileTest, DevicesAndDirectoriesAreRefusedAndSizesBounded) {
  EXPECT_NE(read_file("/dev/zero", 1024).error().message.find("a character device"),
            std::string::npos);
  testing::TempDir dir;
  EXPECT_NE(read_file(dir.path(), 1024).error().message.find("a directory"), std::string::npos);
  testing::write_file(dir.file("big"), std::string(2048, 'x'));
  auto big = read_file(dir.file("big"), 1024);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, Errc::limit);
}

class TrustedPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "ownership checks need root";
    ASSERT_EQ(mkdir(etc.c_str(), 0755), 0);
    testing::write_file(file, "kind: role\n");
    ASSERT_EQ(chmod(file.c_str(), 0644), 0);
  }
  testing::TempDir dir;  // mkdtemp: 0700 root, in root's sticky /tmp
  std::string etc = dir.file("etc");
  std::string file = etc + "/role.yaml";
};

TEST_F(TrustedPathTest, RootOwnedFileInRootOwnedDirectoriesIsTrusted) {
  auto s = check_trusted_path(file);
  EXPECT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(check_trusted_path(etc).ok());
}

TEST_F(TrustedPathTest, FileWritableByOthersIsRefusedWithTheFix) {
  ASSERT_EQ(chmod(file.c_str(), 0666), 0);
  auto s = check_trusted_path(file);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            file +
                ": file is writable by group and others (owner root (uid 0), mode 0666), so "
                "others can change this node's policy; fix: chmod go-w " +
                file);
}

TEST_F(TrustedPathTest, FileOwnedByAnotherUserIsRefusedWithTheFix) {
  ASSERT_EQ(chown(file.c_str(), kNobody, static_cast<gid_t>(-1)), 0);
  auto s = check_trusted_path(file);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find(file + ": file is owned by neither root (owner "),
            std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("uid 65534"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("fix: chown root " + file), std::string::npos)
      << s.error().message;
}

TEST_F(TrustedPathTest, GroupWritableDirectoryAboveIsRefused) {
  ASSERT_EQ(chmod(etc.c_str(), 0775), 0);
  auto s = check_trusted_path(file);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find(
                etc + ": directory is writable by group (owner root (uid 0), mode 0775)"),
            std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("fix: chmod go-w " + etc), std::string::npos);
}

TEST_F(TrustedPathTest, DirectoryOwnedByAnotherUserAboveIsRefused) {
  ASSERT_EQ(chown(etc.c_str(), kNobody, static_cast<gid_t>(-1)), 0);
  auto s = check_trusted_path(file);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find(etc + ": directory is owned by neither root"), std::string::npos)
      << s.error().message;
}

// Like /tmp: others may add names to a root-owned sticky directory but not
// replace ours, so it does not make the files below it untrusted.
TEST_F(TrustedPathTest, RootOwnedStickyDirectoryWritableByOthersIsAccepted) {
  ASSERT_EQ(chmod(etc.c_str(), 01777), 0);
  EXPECT_TRUE(check_trusted_path(file).ok());
  ASSERT_EQ(chmod(etc.c_str(), 01775), 0);  // /etc/machineid as the package makes it
  EXPECT_TRUE(check_trusted_path(file).ok());
  ASSERT_EQ(chown(etc.c_str(), kNobody, static_cast<gid_t>(-1)), 0);  // but only root's
  EXPECT_FALSE(check_trusted_path(file).ok());
}

// A symbolic link is judged by both chains: the directory that holds the
// link, and the directories that hold the file it names.
TEST_F(TrustedPathTest, SymbolicLinkIntoAnUnsafeDirectoryIsRefused) {
  std::string unsafe = dir.file("unsafe");
  ASSERT_EQ(mkdir(unsafe.c_str(), 0777), 0);
  ASSERT_EQ(chmod(unsafe.c_str(), 0777), 0);
  testing::write_file(unsafe + "/real.yaml", "kind: role\n");
  ASSERT_EQ(symlink((unsafe + "/real.yaml").c_str(), (etc + "/link.yaml").c_str()), 0);
  auto s = check_trusted_path(etc + "/link.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find(unsafe + ": directory is writable by group and others"),
            std::string::npos)
      << s.error().message;
}

TEST_F(TrustedPathTest, MissingFileIsAnError) {
  EXPECT_FALSE(check_trusted_path(etc + "/absent.yaml").ok());
  EXPECT_FALSE(check_trusted_path("").ok());
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

// Root's tools checking the file the daemon's user keeps (user_ca_file with
// a CA refresh) trust that user too, and only for that call.
TEST_F(TrustedPathTest, AnOwnerNamedByTheCallerIsTrustedToo) {
  ASSERT_EQ(chown(file.c_str(), kNobody, static_cast<gid_t>(-1)), 0);
  EXPECT_TRUE(check_trusted_path(file, kNobody).ok());
  EXPECT_FALSE(check_trusted_path(file).ok());
  ASSERT_EQ(chmod(file.c_str(), 0664), 0);
  EXPECT_FALSE(check_trusted_path(file, kNobody).ok());  // still not writable by its group
}

}  // namespace
}  // namespace machineid
