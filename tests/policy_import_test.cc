// machineidctl policy import: a `tctl get roles,locks` stream split into
// roles_dir and locks_dir, all or nothing, and what --dry-run and --prune do.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fixtures.h"
#include "machineid/resources.h"

namespace machineid {
namespace {

using testing::read_file;
using testing::run;
using testing::write_file;

constexpr const char* kCtl = MID_BIN_DIR "/machineidctl";

// As `tctl get roles,locks` prints them: roles, then locks, "---" between.
const std::string kRoleCi =
    "kind: role\n"
    "metadata:\n"
    "  description: CI runners deploy\n"
    "  name: ci-deployer\n"
    "  revision: 0f6c3d2e-7b1a-4c59-8e0d-2a9b4f6e1c37\n"
    "spec:\n"
    "  allow:\n"
    "    app_labels:\n"
    "      '*': '*'\n"
    "    logins:\n"
    "    - deploy\n"
    "    - '{{internal.logins}}'\n"
    "    node_labels:\n"
    "      env: prod\n"
    "    rules:\n"
    "    - resources:\n"
    "      - event\n"
    "      verbs:\n"
    "      - list\n"
    "  deny:\n"
    "    logins:\n"
    "    - root\n"
    "  options:\n"
    "    create_host_user_mode: keep\n"
    "    max_session_ttl: 8h0m0s\n"
    "version: v7\n";
const std::string kRoleAccess =
    "kind: role\n"
    "metadata:\n"
    "  name: access\n"
    "spec:\n"
    "  allow:\n"
    "    logins:\n"
    "    - '{{internal.logins}}'\n"
    "    node_labels:\n"
    "      '*': '*'\n"
    "version: v7\n";
const std::string kLock =
    "kind: lock\n"
    "metadata:\n"
    "  name: incident-42\n"
    "spec:\n"
    "  created_at: \"2026-11-30T10:00:00Z\"\n"
    "  created_by: alice\n"
    "  message: runner compromised\n"
    "  target:\n"
    "    user: bot-ci\n"
    "version: v2\n";
const std::string kStream = kRoleCi + "---\n" + kRoleAccess + "---\n" + kLock;

std::vector<std::string> list(const std::string& dir) {
  std::vector<std::string> names;
  auto r = run({"/bin/ls", "-A", dir});
  std::size_t pos = 0;
  while (pos < r.output.size()) {
    std::size_t end = r.output.find('\n', pos);
    if (end == std::string::npos) end = r.output.size();
    if (end > pos) names.push_back(r.output.substr(pos, end - pos));
    pos = end + 1;
  }
  return names;
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

class PolicyImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    roles = dir.file("roles.d");
    locks = dir.file("locks.d");
    mkdir(roles.c_str(), 0755);
    mkdir(locks.c_str(), 0755);
    config = dir.file("verifierd.toml");
    // No daemon listens on this socket: the import says so and succeeds.
    write_file(config, "[cluster]\nname = \"example.teleport.sh\"\n[policy]\nroles_dir = \"" +
                           roles + "\"\nlocks_dir = \"" + locks + "\"\n[daemon]\nsocket = \"" +
                           dir.file("none.sock") + "\"\n");
  }

  testing::RunResult import(std::vector<std::string> extra, const std::string& stdin_text = "") {
    std::vector<std::string> argv = {kCtl, "policy", "import", "--config", config};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, stdin_text);
  }

  std::string stream_file(const std::string& content) {
    std::string path = dir.file("dump-" + std::to_string(++counter) + ".yaml");
    write_file(path, content);
    return path;
  }

  testing::TempDir dir;
  std::string roles, locks, config;
  int counter = 0;
};

TEST_F(PolicyImportTest, MultiDocumentDumpIsSplitIntoOneFilePerResource) {
  auto r = import({stream_file(kStream)});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(list(roles), (std::vector<std::string>{"access.yaml", "ci-deployer.yaml"}));
  EXPECT_EQ(list(locks), (std::vector<std::string>{"incident-42.yaml"}));
  EXPECT_EQ(read_file(roles + "/ci-deployer.yaml"), "# machineidctl policy import\n" + kRoleCi);
  EXPECT_EQ(read_file(locks + "/incident-42.yaml"), "# machineidctl policy import\n" + kLock);
  struct stat st {};
  ASSERT_EQ(stat((roles + "/access.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_NE(r.output.find("no daemon answered"), std::string::npos) << r.output;

  // What was written loads as the daemon loads it, whole.
  Policy p = load_policy(roles, locks);
  EXPECT_TRUE(p.role_errors.empty() && p.lock_errors.empty());
  EXPECT_EQ(p.roles.size(), 2u);
  EXPECT_EQ(p.roles.count("ci-deployer"), 1u);
  ASSERT_EQ(p.locks.size(), 1u);
  EXPECT_EQ(p.locks[0].target.user, "bot-ci");
}

TEST_F(PolicyImportTest, StandardInputAndOtherKindsAreSkipped) {
  std::string user =
      "kind: user\nmetadata:\n  name: alice\nspec:\n  roles: [access]\nversion: v2\n";
  auto r = import({"-"}, "---\n" + kRoleAccess + "---\n" + user + "...\n");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("skip   <stdin>:"), std::string::npos) << r.output;
  EXPECT_EQ(list(roles), std::vector<std::string>{"access.yaml"});
  EXPECT_TRUE(list(locks).empty());
}

TEST_F(PolicyImportTest, ABrokenDocumentRefusesTheWholeImport) {
  write_file(roles + "/access.yaml", "# machineidctl policy import\n" + kRoleAccess);
  std::string broken_role =
      "kind: role\nmetadata:\n  name: broken\nspec:\n  allow:\n    logins: deploy\nversion: v7\n";
  auto r = import({stream_file(kRoleCi + "---\n" + broken_role + "---\n" + kLock)});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("logins"), std::string::npos) << "names the field: " << r.output;
  EXPECT_NE(r.output.find("nothing written"), std::string::npos) << r.output;
  EXPECT_EQ(list(roles), std::vector<std::string>{"access.yaml"});
  EXPECT_TRUE(list(locks).empty());

  std::string broken_lock =
      "kind: lock\nmetadata:\n  name: l\nspec:\n  target:\n    usr: bot-ci\nversion: v2\n";
  r = import({stream_file(kRoleCi + "---\n" + broken_lock)});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(list(roles), std::vector<std::string>{"access.yaml"});
  EXPECT_TRUE(list(locks).empty());

  r = import({stream_file(kRoleCi + "---\nkind: role\nspec: [unclosed\n")});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(list(roles), std::vector<std::string>{"access.yaml"});
}

TEST_F(PolicyImportTest, DryRunListsWhatItWouldWriteAndWritesNothing) {
  auto r = import({"--dry-run", stream_file(kStream)});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("would write  " + roles + "/ci-deployer.yaml (role ci-deployer)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("would write  " + locks + "/incident-42.yaml (lock incident-42)"),
            std::string::npos)
      << r.output;
  EXPECT_TRUE(list(roles).empty());
  EXPECT_TRUE(list(locks).empty());
  EXPECT_EQ(r.output.find("daemon"), std::string::npos) << "a dry run asks no daemon: " << r.output;
}

TEST_F(PolicyImportTest, ASecondImportOfTheSameStreamChangesNothing) {
  ASSERT_EQ(import({stream_file(kStream)}).status, 0);
  auto r = import({stream_file(kStream)});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("3 resources in"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(", 0 changed"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("write"), std::string::npos) << r.output;
}

TEST_F(PolicyImportTest, PruneRemovesOnlyFilesTheImportWroteBefore) {
  ASSERT_EQ(import({stream_file(kStream)}).status, 0);
  // A file placed by hand, not by the import: never pruned.
  std::string hand =
      "kind: role\nmetadata:\n  name: by-hand\nspec:\n  allow:\n    logins: [ops]\n"
      "    node_labels:\n      '*': '*'\nversion: v7\n";
  write_file(roles + "/by-hand.yaml", hand);

  // Without --prune, resources gone from the stream stay.
  auto r = import({stream_file(kRoleAccess)});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(list(roles),
            (std::vector<std::string>{"access.yaml", "by-hand.yaml", "ci-deployer.yaml"}));

  r = import({"--prune", "--dry-run", stream_file(kRoleAccess)});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("would remove " + locks + "/incident-42.yaml"), std::string::npos)
      << r.output;
  EXPECT_EQ(list(locks), std::vector<std::string>{"incident-42.yaml"});

  r = import({"--prune", stream_file(kRoleAccess)});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(list(roles), (std::vector<std::string>{"access.yaml", "by-hand.yaml"}));
  EXPECT_TRUE(list(locks).empty());
  EXPECT_EQ(read_file(roles + "/by-hand.yaml"), hand);

  // An empty stream (a failed `tctl get`) never prunes everything.
  r = import({"--prune", "-"}, "");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(list(roles), (std::vector<std::string>{"access.yaml", "by-hand.yaml"}));
}

TEST_F(PolicyImportTest, HostileNamesAreRefusedAndNothingIsWritten) {
  for (std::string name : {"../escape", "a/b", ".hidden", "..", "\"line\\nbreak\"", "''"}) {
    std::string role =
        "kind: role\nmetadata:\n  name: " + name +
        "\nspec:\n  allow:\n    logins: [x]\n    node_labels:\n      '*': '*'\nversion: v7\n";
    auto r = import({stream_file(kRoleAccess + "---\n" + role)});
    EXPECT_EQ(r.status, 1) << name << ": " << r.output;
    EXPECT_NE(r.output.find("nothing written"), std::string::npos) << name << ": " << r.output;
    EXPECT_TRUE(list(roles).empty()) << name;
  }
  EXPECT_EQ(list(dir.path()).size(), 9u)
      << "nothing written beside roles.d either";  // config, 2 dirs, 6 dumps

  std::string lock =
      "kind: lock\nmetadata:\n  name: ../../roles.d/x\nspec:\n  target:\n    user: "
      "bot-ci\nversion: v2\n";
  auto r = import({stream_file(lock)});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(list(locks).empty());
  EXPECT_TRUE(list(roles).empty());
}

TEST_F(PolicyImportTest, AResourceDefinedInAHandWrittenFileIsNotDefinedTwice) {
  // tctl get role/access > roles.d/access.yaml, as the README's first steps
  // do: the import may replace it, since it holds just that role.
  write_file(roles + "/access.yaml", kRoleAccess);
  auto r = import({stream_file(kRoleAccess)});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_file(roles + "/access.yaml"), "# machineidctl policy import\n" + kRoleAccess);

  // A role the import brings that another file already defines would be
  // broken in both places: refused, naming the other file.
  write_file(roles + "/team.yaml",
             kRoleCi + "---\n" +
                 "kind: role\nmetadata:\n  name: other\nspec:\n  allow:\n    logins: [x]\n"
                 "version: v7\n");
  r = import({stream_file(kRoleCi)});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(roles + "/team.yaml: also defines role 'ci-deployer'"), std::string::npos)
      << r.output;
  EXPECT_FALSE(exists(roles + "/ci-deployer.yaml"));

  // A hand-written file of the same name holding more than that role is
  // not overwritten.
  write_file(roles + "/ci-deployer.yaml", "# mine\n" + kRoleAccess);
  r = import({stream_file(kLock)});
  ASSERT_EQ(r.status, 0) << r.output;
  r = import({stream_file(kRoleCi)});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(read_file(roles + "/ci-deployer.yaml"), "# mine\n" + kRoleAccess);
}

TEST_F(PolicyImportTest, UsageErrorsExitTwo) {
  EXPECT_EQ(run({kCtl, "policy"}).status, 2);
  EXPECT_EQ(run({kCtl, "policy", "export"}).status, 2);
  EXPECT_EQ(import({}).status, 2);
  EXPECT_EQ(import({"--bogus", "x"}).status, 2);
  EXPECT_EQ(import({dir.file("missing.yaml")}).status, 2);
  EXPECT_EQ(
      run({kCtl, "policy", "import", "--config", dir.file("nope.toml"), stream_file(kRoleAccess)})
          .status,
      2);
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

// A name's control characters reach the terminal only as octal escapes
// (escape_untrusted), in the refusal and everywhere else.
TEST_F(PolicyImportTest, ControlCharactersInANameAreShownEscaped) {
  std::string role = "kind: role\nmetadata:\n  name: \"evil\\e[31m\\nforged\"\nspec:\n  allow:\n    logins: [x]\n"
                     "    node_labels:\n      '*': '*'\nversion: v7\n";
  auto r = import({stream_file(role)});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(r.output.find('\x1b'), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("role name 'evil\\033[31m\\012forged' holds a control character"), std::string::npos)
      << r.output;
}

// --json: one object on stdout, with every action, the counts, the
// reload's outcome and the problems that refused an import.
TEST_F(PolicyImportTest, JsonDescribesTheImport) {
  auto dry = import({"--json", "--dry-run", stream_file(kStream)});
  ASSERT_EQ(dry.status, 0) << dry.output;
  auto j = nlohmann::json::parse(dry.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << dry.output;
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_EQ(j["written"], false);
  EXPECT_EQ(j["resources"], 3);
  EXPECT_EQ(j["changed"], 3);
  EXPECT_TRUE(j["problems"].empty());
  EXPECT_TRUE(j["reload"].is_null()) << "a dry run asks no daemon";
  ASSERT_EQ(j["actions"].size(), 3u) << dry.output;
  EXPECT_EQ(j["actions"][0], (nlohmann::json{{"action", "write"},
                                             {"path", locks + "/incident-42.yaml"},
                                             {"kind", "lock"},
                                             {"name", "incident-42"}}));
  EXPECT_TRUE(list(roles).empty());

  auto wet = import({"--json", "--config=" + config, stream_file(kStream)});
  ASSERT_EQ(wet.status, 0) << wet.output;
  j = nlohmann::json::parse(wet.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << wet.output;
  EXPECT_EQ(j["written"], true);
  EXPECT_EQ(j["reload"], "no daemon");
  EXPECT_EQ(list(roles), (std::vector<std::string>{"access.yaml", "ci-deployer.yaml"}));

  write_file(roles + "/team.yaml", kRoleCi);  // a hand-written file defining it too
  auto refused = run({"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>/dev/null", kCtl, "policy", "import", "--json",
                      "--config", config, stream_file(kRoleCi)});
  EXPECT_EQ(refused.status, 1) << refused.output;
  j = nlohmann::json::parse(refused.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << refused.output;
  EXPECT_EQ(j["written"], false);
  ASSERT_EQ(j["problems"].size(), 1u) << refused.output;
  EXPECT_EQ(j["problems"][0], roles + "/team.yaml: also defines role 'ci-deployer'; remove it there or import without it");
}

}  // namespace
}  // namespace machineid
