// Locks: read as `tctl get locks` prints them, and matched as Teleport's
// node matches its session's lock targets — one field per target
// (api/types/lock.go LockTarget.Match), so a lock's fields are alternatives.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "machineid/policy.h"
#include "resource_yaml.h"

namespace machineid {
namespace {

using testing::lock_yaml;
using testing::parse_error;
using testing::parse_ok;

// 2026-01-02T15:04:05Z
constexpr std::int64_t kExpiry = 1767366245;

Lock lock_from(const std::string& target, const std::string& expires = "") {
  Policy policy = parse_ok(lock_yaml(target, expires), "locks.d/lock.yaml", ResourceFile::locks);
  return policy.locks.empty() ? Lock{} : policy.locks.front();
}

struct Subject {
  std::string user = "bot-ci";
  std::vector<std::string> roles = {"ci", "deploy"};
  std::string login = "deploy";
  std::vector<std::string> server_ids = {"my-host", "my-host.example.teleport.sh"};
  std::string mfa_device, device, join_token;
  std::string bot_instance_id = "7d3e6a90-1b2c-4d5e-8f90-a1b2c3d4e5f6";
  std::vector<std::string> access_requests;

  LockSubject view() const {
    LockSubject s;
    s.user = user;
    s.roles = &roles;
    s.login = login;
    s.server_ids = server_ids;
    s.mfa_device = mfa_device;
    s.device = device;
    s.join_token = join_token;
    s.bot_instance_id = bot_instance_id;
    s.access_requests = &access_requests;
    return s;
  }
};

bool applies(const Lock& lock, const Subject& subject = {}, std::int64_t now = kExpiry - 3600) {
  return lock_applies(lock, subject.view(), now);
}

TEST(Locks, LockIsReadAsTctlPrintsIt) {
  Lock lock = lock_from("    user: bot-ci\n", "2026-01-02T15:04:05Z");
  EXPECT_EQ(lock.name, "6f0c1d8e-4b2a-4c55-8a0e-2d9b7c3e1f40");
  EXPECT_EQ(lock.source, "locks.d/lock.yaml:1");
  EXPECT_EQ(lock.target.user, "bot-ci");
  EXPECT_EQ(lock.message, "runner compromised");
  EXPECT_EQ(lock.expires, kExpiry);
}

TEST(Locks, UserLockAppliesToThatUserOnly) {
  Lock lock = lock_from("    user: bot-ci\n");
  EXPECT_TRUE(applies(lock));
  Subject other;
  other.user = "bot-other";
  EXPECT_FALSE(applies(lock, other));
}

TEST(Locks, RoleLockAppliesWhenAnyRoleIsIt) {
  Lock lock = lock_from("    role: deploy\n");
  EXPECT_TRUE(applies(lock));
  Subject other;
  other.roles = {"ci"};
  EXPECT_FALSE(applies(lock, other));
}

TEST(Locks, LoginLockAppliesToThatLogin) {
  Lock lock = lock_from("    login: deploy\n");
  EXPECT_TRUE(applies(lock));
  Subject other;
  other.login = "root";
  EXPECT_FALSE(applies(lock, other));
}

TEST(Locks, ServerIdAndNodeLocksApplyToThisNodeByNameOrFullName) {
  for (const char* target : {"    server_id: my-host\n", "    node: my-host\n",
                             "    server_id: my-host.example.teleport.sh\n",
                             "    node: my-host.example.teleport.sh\n"}) {
    Lock lock = lock_from(target);
    EXPECT_TRUE(applies(lock)) << target;
    Subject other;
    other.server_ids = {"other-host", "other-host.example.teleport.sh"};
    EXPECT_FALSE(applies(lock, other)) << target;
  }
}

TEST(Locks, BotInstanceLockAppliesToThatInstance) {
  Lock lock = lock_from("    bot_instance_id: 7d3e6a90-1b2c-4d5e-8f90-a1b2c3d4e5f6\n");
  EXPECT_TRUE(applies(lock));
  Subject other;
  other.bot_instance_id = "";
  EXPECT_FALSE(applies(lock, other));
}

// Teleport checks a session against one-field targets ({User: ...},
// {Login: ...}, ...), so any one field of the lock naming the session is
// enough: {user: bot-ci, login: postgres} locks bot-ci everywhere.
TEST(Locks, TargetFieldsAreAlternatives) {
  Lock lock = lock_from("    user: bot-ci\n    login: postgres\n");
  EXPECT_TRUE(applies(lock));
  Subject other_user;
  other_user.user = "bot-x";
  EXPECT_FALSE(applies(lock, other_user));
  other_user.login = "postgres";
  EXPECT_TRUE(applies(lock, other_user));
  EXPECT_EQ(lock_match(lock, Subject{}.view()), "user");
}

TEST(Locks, FieldsTheCertificateDoesNotCarryNeverStopTheOthers) {
  Lock lock = lock_from("    mfa_device: 3c9d2a10-7e4b-4f6c-9a8d-1b2c3d4e5f60\n    user: bot-ci\n");
  EXPECT_TRUE(applies(lock));
  Lock mfa_only = lock_from("    mfa_device: 3c9d2a10-7e4b-4f6c-9a8d-1b2c3d4e5f60\n");
  EXPECT_FALSE(applies(mfa_only));
  Subject verified;
  verified.mfa_device = "3c9d2a10-7e4b-4f6c-9a8d-1b2c3d4e5f60";
  EXPECT_TRUE(applies(mfa_only, verified));
}

TEST(Locks, DeviceJoinTokenAndAccessRequestLocksMatchTheCertificatesExtensions) {
  Subject s;
  s.device = "dev-1";
  s.join_token = "github-ci";
  s.access_requests = {"req-1", "req-2"};
  s.user = "someone-else";
  EXPECT_TRUE(applies(lock_from("    device: dev-1\n"), s));
  EXPECT_TRUE(applies(lock_from("    join_token: github-ci\n"), s));
  EXPECT_TRUE(applies(lock_from("    access_request: req-2\n"), s));
  EXPECT_FALSE(applies(lock_from("    access_request: req-3\n"), s));
  EXPECT_FALSE(applies(lock_from("    device: dev-2\n"), s));
  // A desktop is never an SSH session.
  EXPECT_FALSE(applies(lock_from("    windows_desktop: desk\n"), s));
}

TEST(Locks, LockStopsApplyingWhenItExpires) {
  Lock lock = lock_from("    user: bot-ci\n", "2026-01-02T15:04:05Z");
  EXPECT_TRUE(applies(lock, {}, kExpiry - 1));
  EXPECT_FALSE(applies(lock, {}, kExpiry));
  EXPECT_FALSE(applies(lock, {}, kExpiry + 86400));
  // A fraction keeps it in force through its last second.
  Lock fractional = lock_from("    user: bot-ci\n", "2026-01-02T15:04:05.250Z");
  EXPECT_TRUE(applies(fractional, {}, kExpiry));
  EXPECT_FALSE(applies(fractional, {}, kExpiry + 1));
  EXPECT_EQ(lock_from("    user: bot-ci\n", "2026-01-02T17:04:05+02:00").expires, kExpiry);
  EXPECT_EQ(lock_from("    user: bot-ci\n", "2026-01-02T10:34:05.000-04:30").expires, kExpiry);
}

// find_lock looks locks up by what they name; it must answer exactly as
// trying every lock in load order does.
TEST(Locks, IndexedLookupAgreesWithTryingEveryLock) {
  Policy policy;
  const char* fields[] = {"user", "role", "login", "node", "server_id", "bot_instance_id", "device"};
  const char* values[] = {"bot-ci", "deploy", "ci", "my-host", "my-host.example.teleport.sh", "other", "dev-1"};
  std::string yaml;
  for (int i = 0; i < 200; ++i) {
    yaml += "---\n" + lock_yaml("    " + std::string(fields[(i * 7) % 7]) + ": " + values[(i * 3 + i / 7) % 7] + "\n",
                                i % 3 == 0 ? "2026-01-02T15:04:05Z" : "");
  }
  Status loaded = parse_resources(yaml, "locks.d/many.yaml", policy, ResourceFile::locks);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(policy.locks.size(), 200u);
  Subject subjects[3];
  subjects[1].user = "bot-x";
  subjects[1].roles = {"none"};
  subjects[2].user = "nobody";
  subjects[2].roles = {};
  subjects[2].login = "x";
  subjects[2].server_ids = {"elsewhere"};
  subjects[2].bot_instance_id = "";
  subjects[2].device = "dev-1";
  for (const auto& s : subjects)
    for (std::int64_t now : {kExpiry - 10, kExpiry + 10}) {
      const Lock* scanned = nullptr;
      for (const auto& lock : policy.locks)
        if (lock_applies(lock, s.view(), now)) {
          scanned = &lock;
          break;
        }
      EXPECT_EQ(find_lock(policy, s.view(), now), scanned);
    }
}

TEST(Locks, MisspeltTargetFieldIsAnErrorNotASilentNoOp) {
  EXPECT_EQ(parse_error(lock_yaml("    usr: bot-ci\n"), "locks.d/l.yaml", ResourceFile::locks),
            "locks.d/l.yaml:10: spec.target.usr: unknown lock target field (user, role, login, node, server_id, "
            "mfa_device, device, access_request, join_token, bot_instance_id, windows_desktop)");
  Policy policy;
  (void)parse_resources(lock_yaml("    usr: bot-ci\n"), "locks.d/l.yaml", policy, ResourceFile::locks);
  EXPECT_TRUE(policy.locks.empty());
  EXPECT_EQ(policy.lock_errors.size(), 1u);
}

TEST(Locks, LockWithoutTargetIsAnError) {
  EXPECT_EQ(parse_error(lock_yaml("    user: ''\n"), "locks.d/l.yaml"),
            "locks.d/l.yaml:10: spec.target: names no target");
  EXPECT_EQ(parse_error("kind: lock\nmetadata:\n  name: l\nspec:\n  message: hi\nversion: v2\n", "locks.d/l.yaml"),
            "locks.d/l.yaml:5: spec.target: missing");
}

TEST(Locks, BadExpiresIsAnErrorNamingFileLineAndField) {
  for (const char* bad : {"2026-01-02", "2026-01-02 15:04:05Z", "2026-02-30T15:04:05Z", "2026-01-02T24:00:00Z",
                          "2026-01-02T15:04:05", "2026-01-02T15:04:05+0200", "2026-01-02T15:04:05.Z"}) {
    EXPECT_EQ(parse_error(lock_yaml("    user: bot-ci\n", bad), "locks.d/l.yaml"),
              "locks.d/l.yaml:8: spec.expires: '" + std::string(bad) +
                  "' is not an RFC 3339 time (like 2026-01-02T15:04:05Z)");
  }
}

}  // namespace
}  // namespace machineid
