// The audit trail's JSON-lines form (SPEC §7 fields), used wherever
// journald is absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
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
  r.who.key_id = "bot-ci";
  r.who.bot = "ci";
  r.who.bot_instance = "5b3c";
  r.who.roles = "ci ops";
  r.who.serial = "7";
  r.who.cert_fp = "SHA256:cert";
  r.who.ca_fp = "SHA256:ca";
  r.source = "192.0.2.1";
  r.reason = "locked";
  r.who.correlation_id = "c0ffee";
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
  r.who.key_id = std::string("bot-\xff\xfe\n\"x", 9);
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

TEST(AuditTest, JsonLinesReadBackAsWritten) {
  AuditRecord r = denial();
  r.duration = 9;
  auto e = parse_audit_json(audit_json(r, 1767225600));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->time, 1767225600);
  EXPECT_EQ(e->record.event, AuditEvent::login_deny);
  EXPECT_EQ(e->record.who.key_id, "bot-ci");
  EXPECT_EQ(e->record.who.correlation_id, "c0ffee");
  EXPECT_EQ(e->record.duration, 9);
  EXPECT_FALSE(parse_audit_json("{\"time\": 1, \"event\": \"login.maybe\"}").ok());
  EXPECT_FALSE(parse_audit_json("not json").ok());
}

TEST(AuditCliTest, FiltersTheFileByBotAndTime) {
  testing::TempDir dir;
  std::string path = dir.file("audit.jsonl");
  AuditRecord ci = denial(), other = denial();
  other.who.bot = "nightly";
  other.event = AuditEvent::login_allow;
  testing::write_file(path, audit_json(ci, 1000) + "\n" + audit_json(other, 2000) + "\ngarbage\n" +
                                audit_json(ci, 3000) + "\n");
  const std::string ctl = MID_BIN_DIR "/machineidctl";
  auto all = testing::run({ctl, "audit", "--file", path, "--json"});
  EXPECT_EQ(all.status, 0);
  // Three events and a complaint naming the damaged line, which hides nothing after it.
  EXPECT_NE(all.output.find(path + ":3: not a JSON object"), std::string::npos) << all.output;
  EXPECT_NE(all.output.find("\"time\":3000"), std::string::npos);
  auto bot = testing::run({ctl, "audit", "--file", path, "--bot", "nightly"});
  EXPECT_NE(bot.output.find("login.allow"), std::string::npos);
  EXPECT_EQ(bot.output.find("login.deny"), std::string::npos) << bot.output;
  auto since = testing::run({ctl, "audit", "--file", path, "--since", "2500", "--json"});
  EXPECT_EQ(since.output.find("\"time\":1000"), std::string::npos);
  EXPECT_NE(since.output.find("\"time\":3000"), std::string::npos);
  // --since also as an RFC 3339 time (2500 is 1970-01-01T00:41:40Z), and
  // as --since=VALUE.
  for (std::string t : {"1970-01-01T00:41:40Z", "1970-01-01T01:41:40+01:00"}) {
    auto rfc = testing::run({ctl, "audit", "--file=" + path, "--since=" + t, "--json"});
    EXPECT_EQ(rfc.status, 0) << t << ": " << rfc.output;
    EXPECT_EQ(rfc.output.find("\"time\":2000"), std::string::npos) << t << ": " << rfc.output;
    EXPECT_NE(rfc.output.find("\"time\":3000"), std::string::npos) << t << ": " << rfc.output;
  }
  auto bad = testing::run({ctl, "audit", "--since", "yesterday"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("--since 'yesterday' is neither unix seconds, an RFC 3339 time nor a duration"),
            std::string::npos)
      << bad.output;
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

TEST(AuditTest, NeverAppendsThroughASymlink) {
  testing::TempDir dir;
  std::string target = dir.file("elsewhere"), link = dir.file("audit.jsonl");
  testing::write_file(target, "");
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  AuditLog(false, link).write(AuditRecord{});  // falls back to stderr
  EXPECT_EQ(testing::read_file(target), "");
}

}  // namespace
}  // namespace machineid

namespace machineid {
namespace {

// A key id holding an escape sequence and a newline: the JSON value stays
// exact (the encoder escapes it), the human message is escaped for
// terminals, and machineidctl audit prints it escaped.
TEST(AuditTest, CertificateTextIsEscapedInTheMessageAndByTheCli) {
  AuditRecord r = denial();
  r.who.bot.clear();
  r.who.key_id = "evil\x1b[2J\nforged line";
  auto j = nlohmann::json::parse(audit_json(r, 1767225600));
  EXPECT_EQ(j["key_id"], r.who.key_id);
  EXPECT_EQ(j["message"],
            "denied key id 'evil\\033[2J\\012forged line' as 'root' from 192.0.2.1: locked: locked by 'incident'");
  testing::TempDir dir;
  std::string path = dir.file("audit.jsonl");
  testing::write_file(path, audit_json(r, 1767225600) + "\n");
  auto out = testing::run({MID_BIN_DIR "/machineidctl", "audit", "--file", path});
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_EQ(out.output.find('\x1b'), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("evil\\033[2J\\012forged line"), std::string::npos) << out.output;
  EXPECT_EQ(std::count(out.output.begin(), out.output.end(), '\n'), 1) << out.output;
}

}  // namespace
}  // namespace machineid
