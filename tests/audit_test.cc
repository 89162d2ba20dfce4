// The audit trail's JSON-lines form (SPEC §7 fields), used wherever
// journald is absent.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "fixtures.h"
#include "machineid/audit.h"

namespace machineid {
namespace {

AuditRecord denial() {
  AuditRecord r;
  r.event = AuditEvent::login_deny;
  r.login = "root";
  r.key_id = "bot-ci";
  r.bot = "ci";
  r.bot_instance = "5b3c";
  r.roles = "ci ops";
  r.serial = "7";
  r.cert_fp = "SHA256:cert";
  r.ca_fp = "SHA256:ca";
  r.source = "192.0.2.1";
  r.reason = "locked";
  r.correlation_id = "c0ffee";
  r.detail = "locked by 'incident'";
  return r;
}

TEST(AuditTest, WithoutJournaldEachEventIsOneJsonLineInTheFile) {
  testing::TempDir dir;
  std::string path = dir.file("audit.jsonl");
  AuditLog log(false, path);
  log.write(denial());
  AuditRecord close = denial();
  close.event = AuditEvent::session_close;
  close.duration = 42;
  log.write(close);
  std::istringstream in(testing::read_file(path));
  std::string first, second, third;
  ASSERT_TRUE(std::getline(in, first));
  ASSERT_TRUE(std::getline(in, second));
  EXPECT_FALSE(std::getline(in, third));
  auto j = nlohmann::json::parse(first);
  EXPECT_EQ(j["event"], "login.deny");
  EXPECT_EQ(j["login"], "root");
  EXPECT_EQ(j["key_id"], "bot-ci");
  EXPECT_EQ(j["bot"], "ci");
  EXPECT_EQ(j["bot_instance"], "5b3c");
  EXPECT_EQ(j["roles"], "ci ops");
  EXPECT_EQ(j["serial"], "7");
  EXPECT_EQ(j["cert_fp"], "SHA256:cert");
  EXPECT_EQ(j["ca_fp"], "SHA256:ca");
  EXPECT_EQ(j["source"], "192.0.2.1");
  EXPECT_EQ(j["reason"], "locked");
  EXPECT_EQ(j["correlation_id"], "c0ffee");
  EXPECT_EQ(j["message"], "denied bot 'ci' as 'root' from 192.0.2.1: locked: locked by 'incident'");
  EXPECT_FALSE(j.contains("duration"));
  auto k = nlohmann::json::parse(second);
  EXPECT_EQ(k["event"], "session.close");
  EXPECT_EQ(k["duration"], 42);
}

TEST(AuditTest, AttackerChosenBytesStillGiveValidJson) {
  AuditRecord r = denial();
  r.key_id = std::string("bot-\xff\xfe\n\"x", 9);
  auto j = nlohmann::json::parse(audit_json(r, 1767225600));
  EXPECT_EQ(j["time"], 1767225600);
  EXPECT_NE(j["key_id"].get<std::string>().find("bot-"), std::string::npos);
  EXPECT_EQ(audit_json(r, 0).find('\n'), std::string::npos);  // one line, whatever the input
}

TEST(AuditTest, EventNamesAreTheContractNames) {
  EXPECT_STREQ(audit_event_name(AuditEvent::login_allow), "login.allow");
  EXPECT_STREQ(audit_event_name(AuditEvent::login_deny), "login.deny");
  EXPECT_STREQ(audit_event_name(AuditEvent::session_open), "session.open");
  EXPECT_STREQ(audit_event_name(AuditEvent::session_close), "session.close");
}

}  // namespace
}  // namespace machineid
