// machineidctl doctor on a healthy node, then with each piece broken.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sshd_harness.h"

namespace machineid {
namespace {

using testing::SshdHarness;

constexpr const char* kCtl = MID_BIN_DIR "/machineidctl";

class DoctorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(h.start_daemon());
    mkdir(h.file("pam.d").c_str(), 0755);
    write_sshd_config("");
    testing::write_file(h.file("pam.d/sshd"), "@include common-account\nsession optional pam_machineid.so\n");
    testing::write_file(h.file("pam.d/common-account"),
                        "account [success=1 default=ignore] pam_unix.so\naccount required pam_machineid.so\n");
    testing::write_file(h.file("nsswitch.conf"), "passwd: files machineid\ngroup:  files systemd [SUCCESS=merge] machineid\n");
  }

  void write_sshd_config(const std::string& extra) {
    testing::write_file(h.file("doctor_sshd_config"),
                        extra + "HostKey " + h.file("ssh_host_ed25519_key") + "\nTrustedUserCAKeys " +
                            h.sshd_ca_file() + "\nAuthorizedPrincipalsCommand " + h.file("machineid-principals") +
                            " %u %t %k\nAuthorizedPrincipalsCommandUser nobody\nUsePAM yes\n");
  }

  testing::RunResult doctor() {
    return testing::run({kCtl, "doctor", "--config", h.file("etc/verifierd.toml"), "--sshd-config",
                         h.file("doctor_sshd_config"), "--pam-dir", h.file("pam.d"), "--nsswitch",
                         h.file("nsswitch.conf")});
  }

  SshdHarness h{MID_BIN_DIR};
};

TEST_F(DoctorTest, HealthyNodeHasNoProblems) {
  auto r = doctor();
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("no problems found"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("FAIL"), std::string::npos) << r.output;
  for (std::string area : {"sshd", "pam", "nsswitch", "daemon", "ca", "files", "state"})
    EXPECT_NE(r.output.find("ok    " + area), std::string::npos) << area << "\n" << r.output;
}

TEST_F(DoctorTest, MissingNsswitchEntryIsAProblemWithItsFix) {
  testing::write_file(h.file("nsswitch.conf"), "passwd: files systemd\ngroup: files machineid\n");
  auto r = doctor();
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("FAIL  nsswitch    passwd: 'files systemd' lacks machineid"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("fix: put machineid at the end of the passwd: line"), std::string::npos) << r.output;
}

TEST_F(DoctorTest, SourceAfterMachineidIsAProblem) {
  testing::write_file(h.file("nsswitch.conf"), "passwd: files machineid sss\ngroup: files machineid\n");
  auto r = doctor();
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("FAIL  nsswitch    passwd: 'files machineid sss' lists sss after machineid"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ok    nsswitch    group: machineid is the last source"), std::string::npos) << r.output;
}

TEST_F(DoctorTest, PamStackWithoutTheSessionModuleIsAProblem) {
  testing::write_file(h.file("pam.d/sshd"), "@include common-account\n");
  auto r = doctor();
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("FAIL  pam         session stack of sshd lacks pam_machineid.so"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ok    pam         account stack"), std::string::npos);
}

TEST_F(DoctorTest, WrongSshdSettingsAreProblems) {
  // Earlier lines win in sshd_config, so these shadow the good ones.
  write_sshd_config("TrustedUserCAKeys /etc/ssh/other_ca.pub\nAuthorizedKeysCommand /usr/bin/true\n"
                    "AuthorizedKeysCommandUser nobody\n");
  auto r = doctor();
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("FAIL  sshd        TrustedUserCAKeys is '/etc/ssh/other_ca.pub'"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("warn  sshd        AuthorizedKeysCommand '/usr/bin/true' is set too"), std::string::npos);
}

TEST_F(DoctorTest, StoppedDaemonIsAProblem) {
  h.stop_daemon();
  auto r = doctor();
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("FAIL  daemon"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("logins are denied while it is down"), std::string::npos);
}

TEST_F(DoctorTest, UnusableKrlIsAProblem) {
  testing::write_file(h.krl_file(), "garbage");
  h.signal_daemon(SIGHUP);
  usleep(300000);
  auto r = doctor();
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("KRL unusable, every login is denied"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

// StrictModes as the daemon applies it, for every path the config names.
TEST_F(DoctorTest, PolicyFilesOthersCanWriteAreProblemsWithTheirFix) {
  h.write_role("ci", testing::kCiRole);
  std::string role = h.file("etc/roles.d/ci.yaml"), roles_dir = h.file("etc/roles.d");
  ASSERT_EQ(chmod(role.c_str(), 0666), 0);
  ASSERT_EQ(chmod(roles_dir.c_str(), 0775), 0);
  testing::write_file(h.file("etc/locks.d/nobody.yaml"), "kind: lock\n");
  ASSERT_EQ(chown(h.file("etc/locks.d/nobody.yaml").c_str(), 65534, static_cast<gid_t>(-1)), 0);
  auto r = doctor();
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("FAIL  files       " + role + ": file is writable by group and others"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("fix: chmod go-w " + role + "\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("FAIL  files       " + roles_dir + ": directory is writable by group"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("fix: chmod go-w " + roles_dir + "\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(h.file("etc/locks.d/nobody.yaml") + ": file is owned by neither root"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("fix: chown root " + h.file("etc/locks.d/nobody.yaml")), std::string::npos) << r.output;
}

}  // namespace
}  // namespace machineid
