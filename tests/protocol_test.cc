// The daemon protocol: round trips and refusals of every malformed frame.
#include <gtest/gtest.h>

#include "machineid/protocol.h"

namespace machineid {
namespace {

TEST(ProtocolTest, DecideRequestRoundTrips) {
  DecideRequest m{Asker::pam, "root", "ssh-ed25519-cert-v01@openssh.com", "AAAA", "192.0.2.1"};
  auto back = decode_decide_request(encode(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->asker, Asker::pam);
  EXPECT_EQ(back->login, "root");
  EXPECT_EQ(back->key_type, m.key_type);
  EXPECT_EQ(back->certificate, "AAAA");
  EXPECT_EQ(back->source, "192.0.2.1");
}

TEST(ProtocolTest, DecideReplyRoundTrips) {
  DecideReply m{true, "ok", "allowed", "abc123", "bot-ci", "ci", "ci ops", "5b3c", "7", "SHA256:a", "SHA256:b", true};
  auto back = decode_decide_reply(encode(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->allowed);
  EXPECT_EQ(back->correlation_id, "abc123");
  EXPECT_EQ(back->roles, "ci ops");
  EXPECT_EQ(back->bot_instance, "5b3c");
  EXPECT_EQ(back->ca_fp, "SHA256:b");
  EXPECT_TRUE(back->host_user);
}

TEST(ProtocolTest, SessionEventRoundTrips) {
  SessionEvent m;
  m.open = false;
  m.login = "root";
  m.correlation_id = "c1";
  m.source = "192.0.2.1";
  m.duration = 42;
  auto back = decode_session_event(encode(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_FALSE(back->open);
  EXPECT_EQ(back->login, "root");
  EXPECT_EQ(back->source, "192.0.2.1");
  EXPECT_EQ(back->duration, 42);
}

TEST(ProtocolTest, HostUserMessagesRoundTrip) {
  auto request = decode_user_request(encode(UserRequest{"bot-ci"}, MessageKind::provisional_user), MessageKind::provisional_user);
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->login, "bot-ci");
  EXPECT_FALSE(decode_user_request(encode(UserRequest{"x"}, MessageKind::forget_user), MessageKind::provisional_user).ok());
  HostUserReply m{true, "", "bot-ci", 61000, 61000, "bot ci", "/home/bot-ci", "/bin/sh"};
  auto back = decode_host_user_reply(encode(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->uid, 61000u);
  EXPECT_EQ(back->home, "/home/bot-ci");
}

TEST(ProtocolTest, StatusAndErrorRoundTrip) {
  auto status = decode_status_reply(encode(StatusReply{true, "{}"}, MessageKind::status));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->json, "{}");
  auto error = decode_error(encode_error("no"));
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(*error, "no");
}

TEST(ProtocolTest, WrongVersionIsRefused) {
  ByteVector payload = encode(DecideRequest{});
  payload[0] = 2;
  auto kind = peek_kind(payload);
  ASSERT_FALSE(kind.ok());
  EXPECT_NE(kind.error().message.find("protocol version 2"), std::string::npos);
}

TEST(ProtocolTest, UnknownKindAndAskerAreRefused) {
  ByteVector payload = encode(DecideRequest{});
  payload[1] = 99;
  EXPECT_FALSE(peek_kind(payload).ok());
  payload = encode(DecideRequest{});
  payload[2] = 9;
  EXPECT_FALSE(decode_decide_request(payload).ok());
}

TEST(ProtocolTest, EveryTruncationAndTrailingByteIsRefused) {
  ByteVector payload = encode(DecideRequest{Asker::principals, "root", "t", "c", ""});
  for (std::size_t n = 0; n < payload.size(); ++n)
    EXPECT_FALSE(decode_decide_request(Bytes(payload).first(n)).ok()) << n;
  payload.push_back(0);
  EXPECT_FALSE(decode_decide_request(payload).ok());
}

TEST(ProtocolTest, ReplyOfAnotherKindIsRefused) {
  EXPECT_FALSE(decode_decide_reply(encode_error("x")).ok());
  EXPECT_FALSE(decode_status_reply(encode(DecideReply{})).ok());
}

TEST(ProtocolTest, FrameLengthIsBounded) {
  ByteVector ok = frame(ByteVector(10, 1));
  EXPECT_EQ(*frame_length(Bytes(ok).first(4)), 10u);
  ByteVector empty = {0, 0, 0, 0};
  EXPECT_FALSE(frame_length(empty).ok());
  ByteVector huge = {0x00, 0x04, 0x00, 0x01};  // 256 KiB + 1
  auto len = frame_length(huge);
  ASSERT_FALSE(len.ok());
  EXPECT_EQ(len.error().code, Errc::limit);
}

}  // namespace
}  // namespace machineid
