#include "machineid/config.h"

#include <unistd.h>

#include <climits>
#include <string>

#include <gtest/gtest.h>

#include "fixtures.h"

namespace machineid {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::write_file;

constexpr std::string_view kSource = "/etc/machineid/verifierd.toml";

Result<Config> parse(std::string_view text) { return parse_config(text, kSource, "my-host"); }

// The error message of a config that must not parse, or a note that it did.
std::string error_of(std::string_view text) {
  auto config = parse(text);
  return config.ok() ? "(parsed)" : config.error().message;
}

// The SPEC §3 example, verbatim.
constexpr std::string_view kSpecExample = R"([cluster]
name = "example.teleport.sh"            # required
user_ca_file = "/etc/machineid/user_ca.pub"
# user_ca_url = "https://example.teleport.sh/webapi/auth/export?type=user"  # optional refresh
# user_ca_pin = "sha256:…"              # optional pin of the proxy's TLS key (SPKI)
# refresh_interval = "10m"

[node]
name = "my-host"
labels = { env = "prod", group = "api-servers" }

[policy]
roles_dir = "/etc/machineid/roles.d"    # Teleport role resources
locks_dir = "/etc/machineid/locks.d"    # Teleport lock resources
revoked_keys = "/etc/machineid/revoked.krl"   # optional OpenSSH KRL
mode = "roles"                          # "roles" | "principals"
max_cert_ttl = "24h"
clock_skew = "1m"

[host_users]
uid_min = 61000
uid_max = 64999
home = "/home/{login}"
shell = "/bin/sh"
groups = []                             # extra groups for every host user

[daemon]
socket = "/run/machineid/verifierd.sock"
state_dir = "/var/lib/machineid"
client_user = "machineid"               # besides root, the only peer allowed on the socket

[audit]
journald = true
file = ""                               # optional JSON-lines copy
)";

TEST(Config, SpecExampleParsesToTheDocumentedValues) {
  auto config = parse_config(kSpecExample, kSource, "other-host");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->path, kSource);
  EXPECT_EQ(config->cluster.name, "example.teleport.sh");
  EXPECT_EQ(config->cluster.user_ca_file, "/etc/machineid/user_ca.pub");
  EXPECT_FALSE(config->cluster.user_ca_url.has_value());
  EXPECT_FALSE(config->cluster.user_ca_pin.has_value());
  EXPECT_EQ(config->cluster.refresh_interval, 10min);
  EXPECT_EQ(config->node.name, "my-host");
  EXPECT_EQ(config->node.labels, (NodeLabels{{"env", "prod"}, {"group", "api-servers"}}));
  EXPECT_EQ(config->policy.roles_dir, "/etc/machineid/roles.d");
  EXPECT_EQ(config->policy.locks_dir, "/etc/machineid/locks.d");
  EXPECT_EQ(config->policy.revoked_keys, "/etc/machineid/revoked.krl");
  EXPECT_EQ(config->policy.mode, PolicyMode::roles);
  EXPECT_EQ(config->policy.max_cert_ttl, 24h);
  EXPECT_EQ(config->policy.clock_skew, 1min);
  EXPECT_EQ(config->host_users.uid_min, 61000u);
  EXPECT_EQ(config->host_users.uid_max, 64999u);
  EXPECT_EQ(config->host_users.home, "/home/{login}");
  EXPECT_EQ(config->host_users.shell, "/bin/sh");
  EXPECT_TRUE(config->host_users.groups.empty());
  EXPECT_EQ(config->daemon.socket, "/run/machineid/verifierd.sock");
  EXPECT_EQ(config->daemon.state_dir, "/var/lib/machineid");
  EXPECT_EQ(config->daemon.client_user, "machineid");
  EXPECT_TRUE(config->audit.journald);
  EXPECT_EQ(config->audit.file, "");
}

TEST(Config, OnlyClusterNameGivesEveryDefault) {
  auto config = parse_config("[cluster]\nname = \"c.example\"\n", kSource, "web-1");
  ASSERT_TRUE(config.ok()) << config.error().message;
  Config expected;
  EXPECT_EQ(config->cluster.name, "c.example");
  EXPECT_EQ(config->node.name, "web-1");
  EXPECT_TRUE(config->node.labels.empty());
  EXPECT_EQ(config->cluster.user_ca_file, expected.cluster.user_ca_file);
  EXPECT_EQ(config->cluster.refresh_interval, expected.cluster.refresh_interval);
  EXPECT_EQ(config->policy.roles_dir, expected.policy.roles_dir);
  EXPECT_EQ(config->policy.locks_dir, expected.policy.locks_dir);
  EXPECT_EQ(config->policy.revoked_keys, expected.policy.revoked_keys);
  EXPECT_EQ(config->policy.mode, PolicyMode::roles);
  EXPECT_EQ(config->policy.max_cert_ttl, 24h);
  EXPECT_EQ(config->policy.clock_skew, 60s);
  EXPECT_EQ(config->host_users.uid_min, 70000u);
  EXPECT_EQ(config->host_users.uid_max, 99999u);
  EXPECT_EQ(config->host_users.home, "/home/{login}");
  EXPECT_EQ(config->host_users.shell, "/bin/sh");
  EXPECT_TRUE(config->host_users.groups.empty());
  EXPECT_EQ(config->daemon.socket, "/run/machineid/verifierd.sock");
  EXPECT_EQ(config->daemon.state_dir, "/var/lib/machineid");
  EXPECT_EQ(config->daemon.client_user, "machineid");
  EXPECT_TRUE(config->audit.journald);
  EXPECT_EQ(config->audit.file, "");
}

TEST(Config, ClusterAsInlineTableAndSubTablesParse) {
  auto config = parse("cluster = { name = \"c\" }\n[node.labels]\nenv = \"dev\"\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->cluster.name, "c");
  EXPECT_EQ(config->node.labels, (NodeLabels{{"env", "dev"}}));
}

TEST(Config, CaRefreshSettingsAndOtherValuesParse) {
  auto config = parse(R"([cluster]
name = "c"
user_ca_url = "https://c.example/webapi/auth/export?type=user"
user_ca_pin = "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
refresh_interval = "1h30m"
[policy]
mode = "principals"
lock_mode = "best_effort"
revoked_keys = ""
clock_skew = "0s"
[host_users]
uid_min = 100000
uid_max = 199999
groups = ["docker", "adm"]
[audit]
journald = false
file = "/var/log/machineid.jsonl"
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->cluster.user_ca_url, "https://c.example/webapi/auth/export?type=user");
  EXPECT_EQ(config->cluster.user_ca_pin,
            "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08");
  EXPECT_EQ(config->cluster.refresh_interval, 90min);
  EXPECT_EQ(config->policy.mode, PolicyMode::principals);
  EXPECT_EQ(config->policy.lock_mode, LockMode::best_effort);
  EXPECT_EQ(config->policy.revoked_keys, "");
  EXPECT_EQ(config->policy.clock_skew, 0s);
  EXPECT_EQ(config->host_users.uid_min, 100000u);
  EXPECT_EQ(config->host_users.uid_max, 199999u);
  EXPECT_EQ(config->host_users.groups, (std::vector<std::string>{"docker", "adm"}));
  EXPECT_FALSE(config->audit.journald);
  EXPECT_EQ(config->audit.file, "/var/log/machineid.jsonl");
}

TEST(Config, Base64PinIsAccepted) {
  auto config = parse(R"([cluster]
name = "c"
user_ca_url = "https://c.example/"
user_ca_pin = "sha256:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->cluster.user_ca_pin, "sha256:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=");
}

TEST(Config, MissingClusterNameIsAnError) {
  EXPECT_EQ(error_of(""), std::string(kSource) + ": cluster.name: is required");
  EXPECT_EQ(error_of("[cluster]\nuser_ca_file = \"/ca.pub\"\n"),
            std::string(kSource) + ": cluster.name: is required");
  EXPECT_EQ(parse("").error().code, Errc::config);
}

TEST(Config, EmptyClusterNameIsAnError) {
  EXPECT_EQ(error_of("[cluster]\n\nname = \"\"\n"),
            std::string(kSource) + ":3: cluster.name: must be non-empty without blanks");
}

TEST(Config, UnknownKeyInEachSectionNamesLineAndKey) {
  for (std::string section : {"cluster", "node", "policy", "host_users", "daemon", "audit"}) {
    std::string text = "[cluster]\nname = \"c\"\n[" + section + "]\n\nbogus = 1\n";
    if (section == "cluster") text = "[cluster]\nname = \"c\"\n\n\nbogus = 1\n";
    EXPECT_EQ(error_of(text), std::string(kSource) + ":5: " + section + ".bogus: unknown key")
        << section;
  }
}

TEST(Config, UnknownSectionNamesLine) {
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\n\n[polciy]\nmode = \"roles\"\n"),
            std::string(kSource) + ":4: polciy: unknown section");
}

TEST(Config, UnknownKeyReportedIsTheFirstInTheFile) {
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\nzzz = 1\naaa = 2\n"),
            std::string(kSource) + ":3: cluster.zzz: unknown key");
}

TEST(Config, SubTableUnderASectionIsAnUnknownKey) {
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\n[policy.extra]\nx = 1\n"),
            std::string(kSource) + ":3: policy.extra: unknown key");
}

TEST(Config, SectionThatIsNotATableIsAnError) {
  EXPECT_EQ(error_of("policy = 1\n[cluster]\nname = \"c\"\n"),
            std::string(kSource) + ":1: policy: must be a table");
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\n[[audit]]\njournald = true\n"),
            std::string(kSource) + ":3: audit: must be a table");
}

TEST(Config, WrongTypeNamesLineAndKey) {
  const std::string head = "[cluster]\nname = \"c\"\n";
  EXPECT_EQ(error_of(head + "[host_users]\nuid_min = \"61000\"\n"),
            std::string(kSource) + ":4: host_users.uid_min: must be an integer");
  EXPECT_EQ(error_of(head + "[audit]\njournald = \"yes\"\n"),
            std::string(kSource) + ":4: audit.journald: must be true or false");
  EXPECT_EQ(error_of(head + "[policy]\nmax_cert_ttl = 3600\n"),
            std::string(kSource) + ":4: policy.max_cert_ttl: must be a string");
  EXPECT_EQ(error_of(head + "[node]\nlabels = { env = \"prod\", tier = 3 }\n"),
            std::string(kSource) + ":4: node.labels.tier: must be a string");
  EXPECT_EQ(error_of(head + "[node.labels]\nenv = \"prod\"\ntier = 3\n"),
            std::string(kSource) + ":5: node.labels.tier: must be a string");
  EXPECT_EQ(error_of(head + "[node]\nlabels = [\"prod\"]\n"),
            std::string(kSource) + ":4: node.labels: must be a table of strings");
  EXPECT_EQ(error_of(head + "[host_users]\ngroups = \"docker\"\n"),
            std::string(kSource) + ":4: host_users.groups: must be an array of strings");
  EXPECT_EQ(error_of(head + "[host_users]\ngroups = [\"docker\", 7]\n"),
            std::string(kSource) + ":4: host_users.groups[1]: must be a string");
  EXPECT_EQ(error_of("[cluster]\nname = 5\n"),
            std::string(kSource) + ":2: cluster.name: must be a string");
  EXPECT_EQ(parse(head + "[audit]\njournald = 1\n").error().code, Errc::config);
}

TEST(Config, BadDurationNamesLineAndKey) {
  const std::string head = "[cluster]\nname = \"c\"\n[policy]\n";
  EXPECT_EQ(error_of(head + "max_cert_ttl = \"1 day\"\n"),
            std::string(kSource) +
                ":4: policy.max_cert_ttl: \"1 day\": unknown unit \" day\" (h, m or s)");
  EXPECT_EQ(error_of(head + "clock_skew = \"500ms\"\n"),
            std::string(kSource) +
                ":4: policy.clock_skew: \"500ms\": sub-second units are not supported");
  EXPECT_EQ(error_of(head + "clock_skew = \"-1m\"\n"),
            std::string(kSource) + ":4: policy.clock_skew: \"-1m\": must not be negative");
  EXPECT_EQ(error_of(head + "max_cert_ttl = \"0s\"\n"),
            std::string(kSource) + ":4: policy.max_cert_ttl: must be positive");
  EXPECT_EQ(error_of(head + "clock_skew = \"2h\"\n"),
            std::string(kSource) + ":4: policy.clock_skew: must be at most 3600s");
  EXPECT_EQ(
      error_of("[cluster]\nname = \"c\"\nrefresh_interval = \"\"\n"),
      std::string(kSource) +
          ":3: cluster.refresh_interval: \"\": not a duration (like \"90s\", \"10m\", \"1h30m\")");
}

TEST(Config, BadModeNamesLineAndKey) {
  std::string text = "[cluster]\nname = \"c\"\n";
  for (int i = 0; i < 8; ++i) text += "\n";
  text += "[policy]\nmode = \"role\"\n";
  EXPECT_EQ(error_of(text),
            "/etc/machineid/verifierd.toml:12: policy.mode: must be \"roles\" or \"principals\"");
}

TEST(Config, LockModeIsStrictUnlessSaidOtherwise) {
  auto config = parse("[cluster]\nname = \"c\"\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->policy.lock_mode, LockMode::strict);
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\n[policy]\nlock_mode = \"lenient\"\n"),
            "/etc/machineid/verifierd.toml:4: policy.lock_mode: must be \"strict\" or \"best_effort\"");
}

TEST(Config, RelativePathIsAnError) {
  struct Case {
    std::string section, key;
  };
  for (const auto& [section, key] :
       {Case{"cluster", "user_ca_file"}, Case{"policy", "roles_dir"}, Case{"policy", "locks_dir"},
        Case{"policy", "revoked_keys"}, Case{"host_users", "home"}, Case{"host_users", "shell"},
        Case{"daemon", "socket"}, Case{"daemon", "state_dir"}, Case{"audit", "file"}}) {
    std::string text =
        "[cluster]\nname = \"c\"\n[" + section + "]\n" + key + " = \"relative/path\"\n";
    if (section == "cluster") text = "[cluster]\nname = \"c\"\n\n" + key + " = \"relative/path\"\n";
    EXPECT_EQ(error_of(text),
              std::string(kSource) + ":4: " + section + "." + key + ": must be an absolute path")
        << key;
  }
}

TEST(Config, EmptyPathIsAnErrorWhereAFileIsNeeded) {
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\nuser_ca_file = \"\"\n"),
            std::string(kSource) + ":3: cluster.user_ca_file: must be an absolute path");
}

TEST(Config, HomeAllowsOnlyTheLoginPlaceholder) {
  EXPECT_EQ(
      error_of("[cluster]\nname = \"c\"\n[host_users]\nhome = \"/home/{user}\"\n"),
      std::string(kSource) +
          ":4: host_users.home: must be an absolute path; \"{login}\" is the only placeholder");
  auto config = parse("[cluster]\nname = \"c\"\n[host_users]\nhome = \"/srv/{login}/home\"\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->host_users.home, "/srv/{login}/home");
}

TEST(Config, InvertedUidRangeIsAnError) {
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\n[host_users]\nuid_min = 62000\nuid_max = 61000\n"),
            std::string(kSource) +
                ":5: host_users.uid_max: range 62000..61000 is empty (uid_min > uid_max)");
  // Against the default uid_max, the bound the file sets is named.
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\n[host_users]\nuid_min = 100000\n"),
            std::string(kSource) +
                ":4: host_users.uid_min: range 100000..99999 is empty (uid_min > uid_max)");
}

TEST(Config, UidOutsideTheAllowedBoundsIsAnError) {
  const std::string head = "[cluster]\nname = \"c\"\n[host_users]\n";
  EXPECT_EQ(error_of(head + "uid_min = 999\n"),
            std::string(kSource) + ":4: host_users.uid_min: must be between 1000 and 4294967294");
  EXPECT_EQ(error_of(head + "uid_max = 4294967295\n"),
            std::string(kSource) + ":4: host_users.uid_max: must be between 1000 and 4294967294");
  EXPECT_EQ(error_of(head + "uid_min = -1\n"),
            std::string(kSource) + ":4: host_users.uid_min: must be between 1000 and 4294967294");
}

TEST(Config, UidRangeHoldingNobodyIsAnError) {
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\n[host_users]\nuid_min = 61000\nuid_max = 70000\n"),
            std::string(kSource) +
                ":5: host_users.uid_max: range 61000..70000 holds 65534 (nobody) or 65535 (the "
                "16-bit -1)");
  auto config =
      parse("[cluster]\nname = \"c\"\n[host_users]\nuid_min = 65536\nuid_max = 4294967294\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->host_users.uid_max, 4294967294u);
}

TEST(Config, CaUrlMustBeHttps) {
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\nuser_ca_url = \"http://c.example/\"\n"),
            std::string(kSource) + ":3: cluster.user_ca_url: must be an https:// URL");
}

TEST(Config, MalformedPinIsAnError) {
  const std::string head = "[cluster]\nname = \"c\"\nuser_ca_url = \"https://c.example/\"\n";
  const std::string message =
      std::string(kSource) +
      ":4: cluster.user_ca_pin: must be \"sha256:\" followed by a SHA-256 digest in hex or base64";
  EXPECT_EQ(error_of(head + "user_ca_pin = \"sha256:abcd\"\n"), message);
  EXPECT_EQ(
      error_of(head + "user_ca_pin = \"sha1:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\"\n"),
      message);
  EXPECT_EQ(error_of(head + "user_ca_pin = \"sha256:" + std::string(63, 'a') + "g\"\n"), message);
}

TEST(Config, PinWithoutUrlIsAnError) {
  EXPECT_EQ(
      error_of("[cluster]\nname = \"c\"\nuser_ca_pin = \"sha256:" + std::string(64, '0') + "\"\n"),
      std::string(kSource) + ":3: cluster.user_ca_pin: needs cluster.user_ca_url");
}

TEST(Config, BadAccountNamesAreErrors) {
  const std::string head = "[cluster]\nname = \"c\"\n";
  const std::string rule =
      ": must be a user or group name: 1 to 32 printable ASCII characters without ':', ',' or "
      "blanks, "
      "not starting with '-', not all digits";
  EXPECT_EQ(error_of(head + "[daemon]\nclient_user = \"-x\"\n"),
            std::string(kSource) + ":4: daemon.client_user" + rule);
  EXPECT_EQ(error_of(head + "[host_users]\ngroups = [\"docker\", \"a:b\"]\n"),
            std::string(kSource) + ":4: host_users.groups[1]" + rule);
  EXPECT_EQ(error_of(head + "[host_users]\ngroups = [\"1000\"]\n"),
            std::string(kSource) + ":4: host_users.groups[0]" + rule);
}

TEST(Config, ControlCharactersInStringsAreErrors) {
  EXPECT_EQ(error_of("[cluster]\nname = \"c\"\n[daemon]\nsocket = \"/run/x\\u0000y\"\n"),
            std::string(kSource) + ":4: daemon.socket: must not hold control characters");
}

TEST(Config, NodeNameComesFromTheFileOverTheHostName) {
  auto config =
      parse_config("[cluster]\nname = \"c\"\n[node]\nname = \"db-7\"\n", kSource, "web-1");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->node.name, "db-7");
}

TEST(Config, UnknownHostNameWithoutNodeNameIsAnError) {
  auto config = parse_config("[cluster]\nname = \"c\"\n", kSource, "");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message,
            std::string(kSource) + ": node.name: not set and the host name is unknown");
}

TEST(Config, TomlSyntaxErrorNamesLineAndColumn) {
  auto config = parse("[cluster]\nname = \"c\"\n\nmode = = 1\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, Errc::malformed);
  EXPECT_EQ(config.error().message.rfind(std::string(kSource) + ":4:8: ", 0), 0u)
      << config.error().message;
}

TEST(Config, DuplicateKeyIsASyntaxError) {
  auto config = parse("[cluster]\nname = \"c\"\nname = \"d\"\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message.rfind(std::string(kSource) + ":3:", 0), 0u)
      << config.error().message;
}

TEST(Config, TextLargerThanTheLimitIsRefused) {
  std::string text = "[cluster]\nname = \"c\"\n" + std::string(kMaxConfigBytes, '#');
  auto config = parse(text);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, Errc::limit);
}

TEST(Config, LoadReadsTheFileAndDefaultsNodeNameToTheHostName) {
  TempDir dir;
  write_file(dir.file("verifierd.toml"), "[cluster]\nname = \"c\"\n");
  auto config = load_config(dir.file("verifierd.toml"));
  ASSERT_TRUE(config.ok()) << config.error().message;
  char host[HOST_NAME_MAX + 1] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(config->node.name, host);
  EXPECT_EQ(config->path, dir.file("verifierd.toml"));
}

TEST(Config, LoadErrorsNameTheFile) {
  TempDir dir;
  write_file(dir.file("bad.toml"), "[cluster]\nname = \"c\"\nfoo = 1\n");
  auto bad = load_config(dir.file("bad.toml"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, dir.file("bad.toml") + ":3: cluster.foo: unknown key");
}

TEST(Config, UnreadableFileIsAnIoErrorNamingThePath) {
  TempDir dir;
  auto config = load_config(dir.file("missing.toml"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, Errc::io);
  EXPECT_NE(config.error().message.find(dir.file("missing.toml")), std::string::npos)
      << config.error().message;
}

TEST(Duration, GoStyleWholeSecondDurationsParse) {
  EXPECT_EQ(*parse_duration("90s"), 90s);
  EXPECT_EQ(*parse_duration("10m"), 10min);
  EXPECT_EQ(*parse_duration("24h"), 24h);
  EXPECT_EQ(*parse_duration("1h30m"), 90min);
  EXPECT_EQ(*parse_duration("8h0m0s"), 8h);
  EXPECT_EQ(*parse_duration("0"), 0s);
  EXPECT_EQ(*parse_duration("0s"), 0s);
  EXPECT_EQ(*parse_duration("2562047h47m16s"), kMaxDuration);
}

TEST(Duration, MalformedDurationsAreRejected) {
  for (std::string_view text :
       {"", "10", "h", "1x", "1.5h", "-5m", "+5m", " 5m", "5m ", "5M", "1h 30m", "500ms", "1us",
        "10ns", "2562047h47m17s", "99999999999999999999s", "9223372037s"}) {
    auto d = parse_duration(text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_EQ(d.error().message.rfind("\"" + std::string(text) + "\": ", 0), 0u)
        << d.error().message;
  }
}

TEST(Duration, RejectionsSayWhy) {
  EXPECT_EQ(parse_duration("500ms").error().message,
            "\"500ms\": sub-second units are not supported");
  EXPECT_EQ(parse_duration("1.5h").error().message,
            "\"1.5h\": fractions are not supported (write \"1h30m\", not \"1.5h\")");
  EXPECT_EQ(parse_duration("-1s").error().message, "\"-1s\": must not be negative");
  EXPECT_EQ(parse_duration("10").error().message, "\"10\": missing unit (h, m or s)");
  EXPECT_EQ(parse_duration("9223372037s").error().message, "\"9223372037s\": too long");
}

}  // namespace
}  // namespace machineid
