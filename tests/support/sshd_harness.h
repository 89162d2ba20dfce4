// A real sshd on loopback wired to a real machineid-verifierd, for login
// tests (SPEC §6). Needs root: sshd insists that the principals command and
// every directory above it are root-owned, so everything lives in a fresh
// root-owned directory under /run and is removed, processes first, by the
// destructor.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fixtures.h"

namespace machineid::testing {

// A child in its own process group whose stdout and stderr are appended to
// files. It is killed when the test process dies, so a crashed test leaves
// no sshd or daemon behind.
class Process {
 public:
  Process() = default;
  ~Process() { stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts argv[0] (an absolute path) with stdin from /dev/null and our
  // environment plus `extra_env` ("NAME=value", overriding ours); false
  // when it cannot be started.
  bool start(const std::vector<std::string>& argv, const std::string& out_path,
             const std::string& err_path, const std::vector<std::string>& extra_env = {});
  // True while the child has not exited.
  bool running() const;
  // Waits up to `timeout` for the child to exit; true when it has.
  bool wait_exit(std::chrono::milliseconds timeout) const;
  // Sends `sig` to the child alone.
  void signal(int sig) const;
  // Asks the group to stop (SIGTERM, and SIGCONT in case it is stopped),
  // kills it after `grace`, reaps the child; returns its exit code, or -1
  // when it died of a signal or was never started.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  pid_t pid_ = -1;
};

struct CommandResult {
  int status = -1;  // exit code; -1 when it timed out or died of a signal
  std::string out;  // stdout (for ssh: the remote command's)
  std::string err;  // stderr (for ssh: its own messages and the command's)
  std::chrono::milliseconds elapsed{0};
};

// Role "ci": root on env=prod nodes, which the harness's node is.
inline constexpr const char* kCiRole = R"(kind: role
version: v7
metadata:
  name: ci
spec:
  allow:
    logins: [root]
    node_labels:
      env: prod
)";

// How to run sshd and the daemon beyond the defaults: for tests that bring
// PAM or NSS into the login (sshd under pam_wrapper or nss_wrapper, say).
struct HarnessOptions {
  std::vector<std::string> sshd_config;  // lines placed before the defaults, so they win
  std::vector<std::string> sshd_env;     // "NAME=value" for sshd
  std::vector<std::string> daemon_env;   // "NAME=value" for the daemon
  std::string daemon_toml;               // appended to verifierd.toml (e.g. [host_users])
};

class SshdHarness {
 public:
  // This node, as written into verifierd.toml.
  static constexpr const char* kClusterName = "example.teleport.sh";
  static constexpr const char* kNodeName = "api-1";
  static constexpr const char* kNodeLabels = R"({ env = "prod" })";

  // Makes the directory, a CA, a host key, an empty KRL, the daemon's
  // config, and copies machineid-principals from `bin_dir`. Nothing runs
  // until start(); write roles, locks and the KRL before it.
  explicit SshdHarness(std::string bin_dir, HarnessOptions options = {});
  ~SshdHarness();
  SshdHarness(const SshdHarness&) = delete;
  SshdHarness& operator=(const SshdHarness&) = delete;

  // Starts the daemon, then sshd; the failure says why, with the logs.
  ::testing::AssertionResult start();
  // Starts machineid-verifierd and waits until its socket accepts a
  // connection and it has written user_ca.pub.sshd.
  ::testing::AssertionResult start_daemon();
  // SIGTERM, then SIGKILL after 5 s.
  void stop_daemon();
  // Sends `sig` to the daemon (SIGSTOP freezes it; stop_daemon thaws it).
  void signal_daemon(int sig) const;

  // One ssh login attempt with `key` and its certificate, killed after 30 s.
  // `extra` goes to ssh before the destination (-W, -R, -o ...); an empty
  // command runs none.
  CommandResult ssh(const std::string& key, const std::string& cert, const std::string& login,
                    const std::string& command, const std::vector<std::string>& extra = {}) const;
  // The argv of that ssh, for a login a test runs in the background.
  std::vector<std::string> ssh_argv(const std::string& key, const std::string& cert, const std::string& login,
                                    const std::string& command, const std::vector<std::string>& extra = {}) const;
  // Runs the installed machineid-principals as sshd would (%u %t %k), for
  // certificates sshd or ssh refuse before the helper is asked.
  CommandResult ask_helper(const std::string& login, const std::string& cert) const;

  // Policy files, each replaced atomically (staged, then renamed into place),
  // so the daemon never reads half a file.
  void write_role(const std::string& name, const std::string& yaml) const;
  void write_lock(const std::string& name, const std::string& yaml) const;
  void write_krl(const std::string& spec);  // ssh-keygen -k spec lines, for our CA
  void write_user_ca(const std::string& content) const;

  // The audit file's size now, to read only later events.
  std::uintmax_t audit_mark() const;
  // The complete JSON lines written to the audit file since `mark`.
  std::vector<std::string> audit_lines_since(std::uintmax_t mark) const;

  struct LogMarks {
    std::uintmax_t sshd = 0, daemon = 0;
  };
  LogMarks log_marks() const;
  // sshd's and the daemon's output since `marks`, headed by their names.
  std::string logs_since(const LogMarks& marks) const;

  Keygen& keygen() { return keygen_; }
  const std::string& ca() const { return ca_; }  // CA private key; ".pub" beside it
  const std::string& dir() const { return dir_; }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  std::string user_ca_file() const { return file("etc/user_ca.pub"); }
  std::string sshd_ca_file() const { return file("etc/user_ca.pub.sshd"); }
  std::string krl_file() const { return file("etc/revoked.krl"); }
  std::string socket() const { return file("verifierd.sock"); }
  int port() const { return port_; }

  // sshd (and `sshd -T`) refuse to run without their privilege-separation
  // directory, which only the system's sshd service would create.
  static ::testing::AssertionResult ensure_privsep_dir();

 private:
  ::testing::AssertionResult start_sshd();
  CommandResult run_captured(const std::vector<std::string>& argv) const;
  void write_atomically(const std::string& path, const std::string& content) const;
  ::testing::AssertionResult failure(const std::string& what) const;

  std::string bin_dir_;
  HarnessOptions options_;
  std::string dir_;
  Keygen keygen_;
  std::string ca_;
  std::string setup_error_;
  int port_ = 0;
  int krl_count_ = 0;
  Process daemon_;
  Process sshd_;
};

}  // namespace machineid::testing
