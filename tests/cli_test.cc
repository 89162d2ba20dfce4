// machineidctl's and machineid-verifierd's command lines, run as binaries:
// --help and --version everywhere, --opt=value, one-line usage errors, and
// the exit codes of the commands that ask the daemon.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "sshd_harness.h"

namespace machineid {
namespace {

using testing::run;
using testing::RunResult;

constexpr const char* kCtl = MID_BIN_DIR "/machineidctl";
constexpr const char* kDaemon = MID_BIN_DIR "/machineid-verifierd";

// The command's standard output alone, or its standard error alone.
RunResult stdout_of(const std::vector<std::string>& argv) {
  std::vector<std::string> sh = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>/dev/null"};
  sh.insert(sh.end(), argv.begin(), argv.end());
  return run(sh);
}
RunResult stderr_of(const std::vector<std::string>& argv) {
  std::vector<std::string> sh = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1 >/dev/null"};
  sh.insert(sh.end(), argv.begin(), argv.end());
  return run(sh);
}

std::vector<std::string> ctl(std::vector<std::string> args) {
  args.insert(args.begin(), kCtl);
  return args;
}

// The version CMake's project() declares.
std::string project_version() {
  std::string cmake = testing::read_file(MID_SOURCE_DIR "/CMakeLists.txt");
  std::smatch m;
  EXPECT_TRUE(
      std::regex_search(cmake, m, std::regex(R"(project\(machineid-host VERSION ([0-9.]+))")));
  return m.size() > 1 ? m[1].str() : "?";
}

// Every command, as typed after "machineidctl".
const std::vector<std::vector<std::string>> kCommands = {
    {"verify"}, {"status"}, {"reload"}, {"audit"}, {"doctor"}, {"users"}, {"policy", "import"}};

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

TEST(CliTest, EveryCommandPrintsItsHelpOnStdoutAndExitsZero) {
  for (auto command : kCommands) {
    std::string name = joined(command);
    for (const char* flag : {"--help", "-h"}) {
      auto args = command;
      args.push_back(flag);
      auto out = stdout_of(ctl(args));
      EXPECT_EQ(out.status, 0) << name << " " << flag << "\n" << out.output;
      EXPECT_EQ(out.output.rfind("usage: machineidctl " + name + " ", 0), 0u) << out.output;
      EXPECT_NE(out.output.find("\noptions:\n"), std::string::npos) << out.output;
      EXPECT_NE(out.output.find("  --version "), std::string::npos) << out.output;
      EXPECT_NE(out.output.find("\nexit status: 0 "), std::string::npos) << out.output;
      EXPECT_EQ(stderr_of(ctl(args)).output, "") << name;
    }
    // "machineidctl help COMMAND" is the same text.
    auto help = command;
    help.insert(help.begin(), "help");
    auto via_help = stdout_of(ctl(help));
    EXPECT_EQ(via_help.status, 0) << name;
    auto args = command;
    args.push_back("--help");
    EXPECT_EQ(via_help.output, stdout_of(ctl(args)).output) << name;
  }
  // Every option a command takes is in its help, with its value's name.
  auto verify = stdout_of(ctl({"verify", "--help"})).output;
  for (const char* o :
       {"--config FILE", "--cert FILE", "--login NAME", "--from IP", "--at TIME", "--json"})
    EXPECT_NE(verify.find("  " + std::string(o) + " "), std::string::npos) << o << "\n" << verify;
  EXPECT_NE(verify.find("exit status: 0 allowed, 1 denied, 2 usage, configuration or I/O error"),
            std::string::npos);
  EXPECT_NE(verify.find("RFC 3339"), std::string::npos) << verify;
  auto status = stdout_of(ctl({"status", "--help"})).output;
  EXPECT_NE(status.find("3 daemon unreachable"), std::string::npos) << status;
  auto doctor = stdout_of(ctl({"doctor", "--help"})).output;
  for (const char* o : {"--sshd PATH", "--sshd-config FILE", "--pam-dir DIR", "--pam-service NAME",
                        "--nsswitch FILE", "--json"})
    EXPECT_NE(doctor.find("  " + std::string(o) + " "), std::string::npos) << o << "\n" << doctor;

  // The command list, on stdout with --help; on stderr, exit 2, with none.
  for (std::vector<std::string> top : {std::vector<std::string>{"--help"}, {"-h"}, {"help"}}) {
    auto out = stdout_of(ctl(top));
    EXPECT_EQ(out.status, 0) << top[0];
    EXPECT_EQ(out.output.rfind("usage: machineidctl COMMAND [OPTIONS]\n", 0), 0u) << out.output;
    for (auto command : kCommands)
      EXPECT_NE(out.output.find("\n  " + joined(command) + " "), std::string::npos)
          << joined(command) << out.output;
  }
  auto bare = stderr_of({kCtl});
  EXPECT_EQ(bare.status, 2);
  EXPECT_EQ(bare.output.rfind("usage: machineidctl COMMAND [OPTIONS]\n", 0), 0u) << bare.output;
  EXPECT_EQ(stdout_of({kCtl}).output, "");
  auto policy = stdout_of(ctl({"policy", "--help"}));
  EXPECT_EQ(policy.status, 0);
  EXPECT_NE(policy.output.find("\n  import [--config FILE]"), std::string::npos) << policy.output;
}

TEST(CliTest, VersionIsTheProjectVersion) {
  std::string version = project_version();
  EXPECT_EQ(stdout_of(ctl({"--version"})).output,
            "machineidctl (machineid-host) " + version + "\n");
  for (auto command : kCommands) {
    command.push_back("--version");
    auto r = stdout_of(ctl(command));
    EXPECT_EQ(r.status, 0) << joined(command);
    EXPECT_EQ(r.output, "machineidctl (machineid-host) " + version + "\n") << joined(command);
  }
  auto daemon = stdout_of({kDaemon, "--version"});
  EXPECT_EQ(daemon.status, 0);
  EXPECT_EQ(daemon.output, "machineid-verifierd (machineid-host) " + version + "\n");
}

// One line on stderr, naming the option and where help is; nothing on stdout.
void expect_usage_error(const std::vector<std::string>& args, const std::string& command,
                        const std::string& what) {
  auto err = stderr_of(ctl(args));
  EXPECT_EQ(err.status, 2) << joined(args) << "\n" << err.output;
  EXPECT_EQ(err.output, "machineidctl" + (command.empty() ? "" : " " + command) + ": " + what +
                            "; try 'machineidctl" + (command.empty() ? "" : " " + command) +
                            " --help'\n")
      << joined(args);
  EXPECT_EQ(stdout_of(ctl(args)).output, "") << joined(args);
}

TEST(CliTest, UnknownOptionsAndMissingValuesExitTwoWithOneLineNamingTheOption) {
  for (auto command : kCommands) {
    auto args = command;
    args.push_back("--bogus");
    expect_usage_error(args, joined(command), "unknown option '--bogus'");
    args.back() = "--bogus=1";
    expect_usage_error(args, joined(command), "unknown option '--bogus'");
    args.back() = "-q";
    expect_usage_error(args, joined(command), "unknown option '-q'");
    args.back() = "--config";  // its value missing
    expect_usage_error(args, joined(command), "option '--config' needs a value (--config FILE)");
    args.back() = "--help=please";
    expect_usage_error(args, joined(command), "option '--help' takes no value");
  }
  expect_usage_error({"verify", "--json=yes"}, "verify", "option '--json' takes no value");
  expect_usage_error({"verify", "--c", "x"}, "verify", "ambiguous option '--c' (--config, --cert)");
  expect_usage_error({"status", "extra"}, "status", "unexpected argument 'extra'");
  expect_usage_error({"policy", "import", "a.yaml", "b.yaml"}, "policy import",
                     "unexpected argument 'b.yaml'");
  expect_usage_error({"policy", "import"}, "policy import",
                     "no input: give a FILE, or - for standard input");
  expect_usage_error({"frobnicate"}, "", "unknown command 'frobnicate'");
  expect_usage_error({"--bogus"}, "", "unknown option '--bogus'");
  expect_usage_error({"policy", "export"}, "policy", "unknown command 'export'");
  expect_usage_error({"help", "frobnicate"}, "", "unknown command 'frobnicate'");
  expect_usage_error({"users", "--forget="}, "users", "--forget needs a login");
  // An option's text is escaped like everything else we print.
  auto err = stderr_of(ctl({"status", "--\x1b[31m"}));
  EXPECT_EQ(err.status, 2);
  EXPECT_EQ(err.output.find('\x1b'), std::string::npos) << err.output;
  EXPECT_NE(err.output.find("unknown option '--\\033[31m'"), std::string::npos) << err.output;
}

TEST(CliTest, DaemonOptionsAreConventionalToo) {
  auto help = stdout_of({kDaemon, "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_EQ(help.output.rfind("usage: machineid-verifierd [--config FILE] [--foreground]\n", 0), 0u)
      << help.output;
  EXPECT_NE(help.output.find("exit status: "), std::string::npos) << help.output;
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"--bogus"}, "unknown option '--bogus'"},
           {{"--config"}, "option '--config' needs a value (--config FILE)"},
           {{"--foreground=yes"}, "option '--foreground' takes no value"},
           {{"stray"}, "unexpected argument 'stray'"},
       }) {
    auto argv = c.args;
    argv.insert(argv.begin(), kDaemon);
    auto err = stderr_of(argv);
    EXPECT_EQ(err.status, 2) << c.message;
    EXPECT_EQ(err.output,
              "machineid-verifierd: " + c.message + "; try 'machineid-verifierd --help'\n");
  }
  // --config=FILE is the configuration: this one does not exist, which is
  // the configuration's error (1, naming it), not a usage error.
  testing::TempDir dir;
  auto r = run({kDaemon, "--foreground", "--config=" + dir.file("absent.toml")});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(dir.file("absent.toml")), std::string::npos) << r.output;
}

// status, reload and users: 3 when no daemon answers, naming the socket;
// 2 when the configuration that names it does not load.
TEST(CliTest, DaemonCommandsExitThreeWhenTheDaemonIsUnreachable) {
  testing::TempDir dir;
  std::string socket = dir.file("absent.sock");
  std::string config = dir.file("verifierd.toml");
  testing::write_file(
      config, "[cluster]\nname = \"example.teleport.sh\"\n[daemon]\nsocket = \"" + socket + "\"\n");
  for (std::vector<std::string> args : {std::vector<std::string>{"status"},
                                        {"reload"},
                                        {"users"},
                                        {"users", "--forget", "bot-ci"},
                                        {"status", "--json"}}) {
    for (const std::string& where : {"--socket=" + socket, "--config=" + config}) {
      auto with = args;
      with.push_back(where);
      auto r = run(ctl(with));
      EXPECT_EQ(r.status, 3) << joined(with) << "\n" << r.output;
      EXPECT_NE(r.output.find("machineidctl " + args[0] + ": " + socket + ": "), std::string::npos)
          << r.output;
    }
    auto with = args;
    with.insert(with.end(), {"--config", dir.file("absent.toml")});
    auto r = run(ctl(with));
    EXPECT_EQ(r.status, 2) << joined(with) << "\n" << r.output;
    EXPECT_NE(r.output.find(dir.file("absent.toml")), std::string::npos) << r.output;
  }
}

class CliDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h.write_role("ci", testing::kCiRole);
    ASSERT_TRUE(h.start_daemon());
  }
  testing::SshdHarness h{MID_BIN_DIR};
};

TEST_F(CliDaemonTest, StatusReloadAndUsersExitZeroAndPrintJson) {
  auto status = run(ctl({"status", "--socket=" + h.socket()}));
  EXPECT_EQ(status.status, 0) << status.output;
  EXPECT_NE(status.output.find("cluster   example.teleport.sh\n"), std::string::npos)
      << status.output;
  for (std::string command : {"status", "reload"}) {
    auto out = stdout_of(ctl({command, "--config=" + h.file("etc/verifierd.toml"), "--json"}));
    EXPECT_EQ(out.status, 0) << command << ": " << out.output;
    auto j = nlohmann::json::parse(out.output, nullptr, false);
    ASSERT_TRUE(j.is_object()) << command << ": " << out.output;
    EXPECT_EQ(j["cluster"], "example.teleport.sh") << command;
    EXPECT_EQ(j["roles"]["names"], nlohmann::json::array({"ci"})) << command;
    EXPECT_TRUE(j["errors"].empty()) << command;
  }
  auto users = stdout_of(ctl({"users", "--socket", h.socket(), "--json"}));
  EXPECT_EQ(users.status, 0) << users.output;
  auto j = nlohmann::json::parse(users.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << users.output;
  EXPECT_TRUE(j["users"].is_array()) << users.output;
}

// A file that does not load is a finding: status and reload exit 1.
TEST_F(CliDaemonTest, StatusAndReloadExitOneWhenAFileDoesNotLoad) {
  h.write_role(
      "bad",
      "kind: role\nversion: v7\nmetadata:\n  name: bad\nspec:\n  allow:\n    logins: root\n");
  auto reload = run(ctl({"reload", "--socket", h.socket()}));
  EXPECT_EQ(reload.status, 1) << reload.output;
  EXPECT_NE(reload.output.find("ERROR     "), std::string::npos) << reload.output;
  EXPECT_NE(reload.output.find("bad.yaml"), std::string::npos) << reload.output;
  auto status = stdout_of(ctl({"status", "--socket", h.socket(), "--json"}));
  EXPECT_EQ(status.status, 1) << status.output;
  auto j = nlohmann::json::parse(status.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << status.output;
  EXPECT_FALSE(j["errors"].empty()) << status.output;
}

}  // namespace
}  // namespace machineid
