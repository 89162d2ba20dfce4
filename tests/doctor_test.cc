// machineidctl doctor on a healthy node, then with each piece broken.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sshd_harness.h"

namespace machineid {
namespace {

using testing::SshdHarness;

constexpr const char* kCtl = MID_BIN_DIR "/machineidctl";

class DoctorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SshdHarness::ensure_privsep_dir());
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

  testing::RunResult doctor(std::vector<std::string> extra = {}) {
    // authselect's directory is the fixture's, absent unless a test makes
    // it, so the machine's own never decides a result.
    std::vector<std::string> argv = {kCtl, "doctor", "--config", h.file("etc/verifierd.toml"), "--sshd-config",
                                      h.file("doctor_sshd_config"), "--pam-dir", h.file("pam.d"), "--nsswitch",
                                      h.file("nsswitch.conf"), "--authselect-dir", h.file("authselect")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testing::run(argv);
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

namespace machineid {
namespace {

// --json: one object, every finding with its level, area, text and fix;
// the exit code is the same as the text's.
TEST_F(DoctorTest, JsonListsEveryFindingAndCountsTheProblems) {
  auto healthy = doctor({"--json"});
  EXPECT_EQ(healthy.status, 0) << healthy.output;
  auto j = nlohmann::json::parse(healthy.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << healthy.output;
  EXPECT_EQ(j["problems"], 0);
  ASSERT_TRUE(j["findings"].is_array());
  std::set<std::string> areas;
  for (const auto& f : j["findings"]) {
    EXPECT_NE(f["level"], "fail") << f.dump();
    areas.insert(f["area"].get<std::string>());
  }
  for (std::string area : {"config", "sshd", "pam", "nsswitch", "daemon", "ca", "files", "state"})
    EXPECT_EQ(areas.count(area), 1u) << area << "\n" << healthy.output;

  testing::write_file(h.file("nsswitch.conf"), "passwd: files systemd\ngroup: files machineid\n");
  auto broken = doctor({"--json"});
  EXPECT_EQ(broken.status, 1) << broken.output;
  j = nlohmann::json::parse(broken.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << broken.output;
  EXPECT_EQ(j["problems"], 1);
  bool found = false;
  for (const auto& f : j["findings"]) {
    if (f["level"] != "fail") continue;
    found = true;
    EXPECT_EQ(f["area"], "nsswitch");
    EXPECT_EQ(f["what"], "passwd: 'files systemd' lacks machineid");
    EXPECT_EQ(f["fix"].get<std::string>().rfind("put machineid at the end of the passwd: line", 0), 0u) << f.dump();
  }
  EXPECT_TRUE(found) << broken.output;
}

// Exit codes: 0 no problems, 1 problems found, 2 a configuration that
// does not load (or a usage error).
TEST_F(DoctorTest, ExitCodes) {
  EXPECT_EQ(doctor().status, 0);
  h.stop_daemon();
  EXPECT_EQ(doctor().status, 1);  // a daemon that does not answer is a finding here
  auto r = testing::run({kCtl, "doctor", "--config=" + h.file("absent.toml")});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(h.file("absent.toml")), std::string::npos) << r.output;
  r = testing::run({kCtl, "doctor", "--nsswitch"});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_EQ(r.output, "machineidctl doctor: option '--nsswitch' needs a value (--nsswitch FILE); try "
                      "'machineidctl doctor --help'\n");
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

// A fake authselect tree: authselect.conf naming the profile and its
// features, the nsswitch.conf it generated (with its header), and the
// fixture's nsswitch.conf a symbolic link to it, as on Fedora and RHEL.
class DoctorAuthselectTest : public DoctorTest {
 protected:
  static constexpr const char* kHeader =
      "# Generated by authselect\n"
      "# Do not modify this file manually, use authselect instead. Any user changes will be overwritten.\n"
      "# You can stop authselect from managing your configuration by calling 'authselect opt-out'.\n"
      "# See authselect(8) for more details.\n\n";

  void select(const std::string& profile_and_features, const std::string& passwd_group) {
    mkdir(h.file("authselect").c_str(), 0755);
    testing::write_file(h.file("authselect/authselect.conf"), profile_and_features);
    testing::write_file(h.file("authselect/nsswitch.conf"), std::string(kHeader) + passwd_group +
                                                                "hosts:      files dns myhostname\n");
    unlink(h.file("nsswitch.conf").c_str());
    ASSERT_EQ(symlink(h.file("authselect/nsswitch.conf").c_str(), h.file("nsswitch.conf").c_str()), 0);
  }
};

TEST_F(DoctorAuthselectTest, ManagedFileWithoutMachineidGetsTheCustomProfileFix) {
  select("sssd\nwith-mkhomedir\nwith-sudo\n", "passwd:     files sss systemd\ngroup:      files sss systemd\n");
  auto r = doctor();
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("ok    nsswitch    " + h.file("nsswitch.conf") + " is managed by authselect (profile sssd)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("FAIL  nsswitch    passwd: 'files sss systemd' lacks machineid"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("FAIL  nsswitch    group: 'files sss systemd' lacks machineid"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("authselect create-profile machineid -b sssd --symlink-meta --symlink-pam"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("passwd: and group: lines of " + h.file("authselect/custom/machineid/nsswitch.conf")),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("'authselect select custom/machineid with-mkhomedir with-sudo'"), std::string::npos)
      << r.output;
  // Never today's advice, an edit of the file authselect rewrites.
  EXPECT_EQ(r.output.find("line of " + h.file("nsswitch.conf")), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("files systemd machineid"), std::string::npos) << r.output;
}

TEST_F(DoctorAuthselectTest, ManagedAndCorrectIsOk) {
  select("custom/machineid\nwith-mkhomedir\n", "");
  // Without the header: the link to authselect's file is enough.
  testing::write_file(h.file("authselect/nsswitch.conf"),
                      "passwd:     files sss systemd machineid\ngroup:      files sss systemd machineid\n");
  auto r = doctor();
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("is managed by authselect (profile custom/machineid)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ok    nsswitch    passwd: machineid is the last source"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ok    nsswitch    group: machineid is the last source"), std::string::npos) << r.output;
}

// Already on a custom profile: its own nsswitch.conf is the one to change.
TEST_F(DoctorAuthselectTest, CustomProfileWithMachineidMisplacedNamesItsFile) {
  select("custom/corp\n", "passwd:     files machineid sss\ngroup:      files sss machineid\n");
  auto r = doctor();
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("FAIL  nsswitch    passwd: 'files machineid sss' lists sss after machineid"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("from the custom profile custom/corp: put machineid at the end of the passwd: and group: "
                          "lines of " +
                          h.file("authselect/custom/corp/nsswitch.conf") + ", then run 'authselect apply-changes'"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("create-profile"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ok    nsswitch    group: machineid is the last source"), std::string::npos) << r.output;
}

// A copy of authselect's output keeps its header: still authselect's.
TEST_F(DoctorAuthselectTest, GeneratedHeaderWithoutTheLinkIsManagedToo) {
  select("sssd\n", "");
  unlink(h.file("nsswitch.conf").c_str());
  testing::write_file(h.file("nsswitch.conf"), std::string(kHeader) + "passwd: files sss\ngroup: files sss machineid\n");
  auto r = doctor();
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("is managed by authselect (profile sssd)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("authselect create-profile machineid -b sssd --symlink-meta --symlink-pam"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("'authselect select custom/machineid'"), std::string::npos) << r.output;
}

// authselect installed but opted out: nsswitch.conf is an ordinary file
// without the header, and today's advice stands.
TEST_F(DoctorAuthselectTest, NotManagedKeepsTheEditAdvice) {
  select("sssd\nwith-sudo\n", "passwd: files sss\ngroup: files sss\n");
  unlink(h.file("nsswitch.conf").c_str());
  testing::write_file(h.file("nsswitch.conf"), "passwd: files systemd\ngroup: files machineid\n");
  auto r = doctor();
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(r.output.find("authselect"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fix: put machineid at the end of the passwd: line of " + h.file("nsswitch.conf") +
                          " (e.g. 'passwd: files systemd machineid')"),
            std::string::npos)
      << r.output;
}

TEST_F(DoctorAuthselectTest, JsonCarriesTheAuthselectFinding) {
  select("sssd\nwith-mkhomedir\n", "passwd:     files sss systemd\ngroup:      files sss systemd machineid\n");
  auto r = doctor({"--json"});
  EXPECT_EQ(r.status, 1) << r.output;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["problems"], 1);
  bool managed = false, failed = false;
  for (const auto& f : j["findings"]) {
    if (f["area"] != "nsswitch") continue;
    if (f["level"] == "ok" && f["what"] == h.file("nsswitch.conf") + " is managed by authselect (profile sssd)")
      managed = true;
    if (f["level"] != "fail") continue;
    failed = true;
    EXPECT_EQ(f["what"], "passwd: 'files sss systemd' lacks machineid");
    std::string fix = f["fix"].get<std::string>();
    EXPECT_EQ(fix.rfind("authselect manages " + h.file("nsswitch.conf") + " (profile sssd)", 0), 0u) << fix;
    EXPECT_NE(fix.find("authselect create-profile machineid -b sssd --symlink-meta --symlink-pam"), std::string::npos)
        << fix;
    EXPECT_NE(fix.find("'authselect select custom/machineid with-mkhomedir'"), std::string::npos) << fix;
  }
  EXPECT_TRUE(managed) << r.output;
  EXPECT_TRUE(failed) << r.output;
}

// With a sync URL set, doctor reads machineid-sync's state: a source that
// never synced, and a lock source so old that strict locking denies, are
// problems with their fix.
TEST_F(DoctorTest, MachineidSyncSourcesAreChecked) {
  std::string sync = h.file("sync");
  std::string toml = testing::read_file(h.file("etc/verifierd.toml"));
  testing::write_file(h.file("etc/verifierd.toml"),
                      toml + "[sync]\ndir = \"" + sync + "\"\nlocks_url = \"https://policy.example/locks.yaml\"\n");
  auto r = doctor();
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("FAIL  sync        " + sync + " does not exist"), std::string::npos) << r.output;
  ASSERT_EQ(mkdir(sync.c_str(), 0755), 0);
  auto state = [&](long ago) {
    testing::write_file(sync + "/state.json",
                        "{\"version\":1,\"sources\":{\"locks\":{\"url\":\"x\",\"failures\":2,\"last_error\":\"answered HTTP 503\","
                        "\"last_success\":" + std::to_string(std::time(nullptr) - ago) + "}}}\n");
  };
  state(5);
  r = doctor();
  EXPECT_NE(r.output.find("ok    sync        locks from https://policy.example/locks.yaml synced"), std::string::npos)
      << r.output;
  state(3600);
  r = doctor();
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("denying every login (lock_mode strict): the lock source last synced"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("answered HTTP 503"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("journalctl -u machineid-sync"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace machineid
