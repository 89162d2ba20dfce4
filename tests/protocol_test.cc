// The daemon protocol: round trips and refusals of every malformed frame,
// and the C client library (machineid/mid_client.h) against the daemon's
// C++ codec in both directions.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "machineid/encoding.h"
#include "machineid/mid_client.h"
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
  DecideReply m{true, "ok", "allowed", {"abc123", "bot-ci", "ci", "5b3c", "ci ops", "7", "SHA256:a", "SHA256:b"}, true};
  m.sudoers_file = "machineid-bot-ci";
  m.sudoers = "bot-ci ALL=(root) /bin/true\n";
  auto back = decode_decide_reply(encode(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->allowed);
  EXPECT_EQ(back->who, m.who);
  EXPECT_EQ(back->who.roles, "ci ops");
  EXPECT_TRUE(back->host_user);
  EXPECT_EQ(back->sudoers_file, "machineid-bot-ci");
  EXPECT_EQ(back->sudoers, m.sudoers);
}

TEST(ProtocolTest, SessionEventRoundTrips) {
  SessionEvent m;
  m.open = false;
  m.login = "root";
  m.who = {"c1", "bot-ci", "ci", "5b3c", "ci ops", "7", "SHA256:a", "SHA256:b"};
  m.source = "192.0.2.1";
  m.duration = 42;
  auto back = decode_session_event(encode(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_FALSE(back->open);
  EXPECT_EQ(back->login, "root");
  EXPECT_EQ(back->who, m.who);
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
  // A peer of the other version (a PAM module from before an upgrade, say).
  for (std::uint8_t version : {std::uint8_t(kProtocolVersion - 1), std::uint8_t(kProtocolVersion + 1)}) {
    ByteVector payload = encode(DecideRequest{});
    payload[0] = version;
    auto kind = peek_kind(payload);
    ASSERT_FALSE(kind.ok());
    EXPECT_NE(kind.error().message.find("protocol version " + std::to_string(version)), std::string::npos);
  }
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

// --- the C client library against protocol.cc --------------------------------

std::string str(const mid_string& s) { return std::string(s.data, s.size); }

// The payload a C writer framed, after checking the frame's length prefix.
ByteVector c_payload(const mid_writer& w) {
  EXPECT_FALSE(w.failed);
  auto length = frame_length(Bytes(w.data, 4));
  EXPECT_TRUE(length.ok());
  ByteVector payload(mid_payload(&w), mid_payload(&w) + mid_payload_size(&w));
  EXPECT_EQ(length.ok() ? *length : 0u, payload.size());
  return payload;
}

TEST(ProtocolCClientTest, DecideRequestFromCDecodesInCpp) {
  mid_writer w;
  mid_writer_heap(&w);
  mid_decide_request m{MID_ASKER_PAM, mid_str("root"), mid_str("ssh-ed25519-cert-v01@openssh.com"),
                       mid_str("AAAA+/="), mid_str("192.0.2.1")};
  ASSERT_EQ(mid_encode_decide_request(&w, &m), 0);
  ByteVector payload = c_payload(w);
  EXPECT_EQ(payload, encode(DecideRequest{Asker::pam, "root", "ssh-ed25519-cert-v01@openssh.com",
                                          "AAAA+/=", "192.0.2.1"}));
  auto back = decode_decide_request(payload);
  mid_writer_free(&w);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->asker, Asker::pam);
  EXPECT_EQ(back->login, "root");
  EXPECT_EQ(back->key_type, "ssh-ed25519-cert-v01@openssh.com");
  EXPECT_EQ(back->certificate, "AAAA+/=");
  EXPECT_EQ(back->source, "192.0.2.1");
}

TEST(ProtocolCClientTest, SessionEventFromCDecodesInCpp) {
  mid_writer w;
  mid_writer_heap(&w);
  mid_session_event m{0,
                      mid_str("root"),
                      {{mid_str("c1"), mid_str("bot-ci"), mid_str("ci"), mid_str("5b3c"), mid_str("ci ops"),
                        mid_str("7"), mid_str("SHA256:a"), mid_str("SHA256:b")}},
                      mid_str("192.0.2.1"),
                      42};
  ASSERT_EQ(mid_encode_session_event(&w, &m), 0);
  auto back = decode_session_event(c_payload(w));
  mid_writer_free(&w);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_FALSE(back->open);
  EXPECT_EQ(back->login, "root");
  EXPECT_EQ(back->who, (CertIdentity{"c1", "bot-ci", "ci", "5b3c", "ci ops", "7", "SHA256:a", "SHA256:b"}));
  EXPECT_EQ(back->source, "192.0.2.1");
  EXPECT_EQ(back->duration, 42);

  mid_session_event negative = m;
  negative.duration = -1;
  mid_writer_heap(&w);
  EXPECT_EQ(mid_encode_session_event(&w, &negative), -1);
  mid_writer_free(&w);
}

TEST(ProtocolCClientTest, UserAndSimpleRequestsFromCDecodeInCpp) {
  unsigned char buf[64];
  mid_writer w;
  mid_writer_fixed(&w, buf, sizeof buf);
  ASSERT_EQ(mid_encode_user_request(&w, MID_KIND_PROVISIONAL_USER, mid_str("bot-ci")), 0);
  auto user = decode_user_request(c_payload(w), MessageKind::provisional_user);
  ASSERT_TRUE(user.ok()) << user.error().message;
  EXPECT_EQ(user->login, "bot-ci");
  ASSERT_EQ(mid_encode_simple(&w, MID_KIND_STATUS), 0);
  EXPECT_EQ(c_payload(w), encode_simple(MessageKind::status));
  // A fixed writer never grows: a login that does not fit fails the frame.
  mid_writer_fixed(&w, buf, 12);
  EXPECT_EQ(mid_encode_user_request(&w, MID_KIND_PROVISIONAL_USER, mid_str("bot-ci")), -1);
  EXPECT_TRUE(w.failed);
}

TEST(ProtocolCClientTest, DecideReplyFromCppDecodesInC) {
  DecideReply m{true,
                "ok",
                "allowed",
                {"abc123", "bot-ci", "ci", "5b3c", "ci ops", "7", "SHA256:a", "SHA256:b"},
                true,
                "no-port-forwarding",
                "machineid-bot-ci",
                "bot-ci ALL=(ALL) NOPASSWD: ALL\n"};
  ByteVector payload = encode(m);
  mid_decide_reply d;
  ASSERT_EQ(mid_decode_decide_reply(payload.data(), payload.size(), &d), 0);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(str(d.reason), "ok");
  EXPECT_EQ(str(d.detail), "allowed");
  EXPECT_EQ(str(d.who.field[MID_ID_CORRELATION_ID]), "abc123");
  EXPECT_EQ(str(d.who.field[MID_ID_KEY_ID]), "bot-ci");
  EXPECT_EQ(str(d.who.field[MID_ID_BOT]), "ci");
  EXPECT_EQ(str(d.who.field[MID_ID_BOT_INSTANCE]), "5b3c");
  EXPECT_EQ(str(d.who.field[MID_ID_ROLES]), "ci ops");
  EXPECT_EQ(str(d.who.field[MID_ID_SERIAL]), "7");
  EXPECT_EQ(str(d.who.field[MID_ID_CERT_FP]), "SHA256:a");
  EXPECT_EQ(str(d.who.field[MID_ID_CA_FP]), "SHA256:b");
  EXPECT_TRUE(d.host_user);
  EXPECT_EQ(str(d.key_options), "no-port-forwarding");
  EXPECT_EQ(str(d.sudoers_file), "machineid-bot-ci");
  EXPECT_EQ(str(d.sudoers), "bot-ci ALL=(ALL) NOPASSWD: ALL\n");
}

TEST(ProtocolCClientTest, StatusErrorAndHostUserRepliesFromCppDecodeInC) {
  for (MessageKind kind : {MessageKind::status, MessageKind::reload, MessageKind::session,
                           MessageKind::users, MessageKind::forget_user}) {
    ByteVector payload = encode(StatusReply{true, "{\"a\":1}"}, kind);
    mid_status_reply status;
    ASSERT_EQ(mid_decode_status_reply(payload.data(), payload.size(), &status), 0);
    EXPECT_TRUE(status.ok);
    EXPECT_EQ(str(status.json), "{\"a\":1}");
  }
  ByteVector error = encode_error("no such thing");
  mid_string message;
  ASSERT_EQ(mid_decode_error(error.data(), error.size(), &message), 0);
  EXPECT_EQ(str(message), "no such thing");
  mid_status_reply status;
  EXPECT_EQ(mid_decode_status_reply(error.data(), error.size(), &status), -1);

  ByteVector user = encode(HostUserReply{true, "", "bot-ci", 61000, 61001, "bot ci", "/home/bot-ci", "/bin/sh"});
  mid_host_user_reply h;
  ASSERT_EQ(mid_decode_host_user_reply(user.data(), user.size(), &h), 0);
  EXPECT_EQ(str(h.name), "bot-ci");
  EXPECT_EQ(h.uid, 61000u);
  EXPECT_EQ(h.gid, 61001u);
  EXPECT_EQ(str(h.gecos), "bot ci");
  EXPECT_EQ(str(h.home), "/home/bot-ci");
  EXPECT_EQ(str(h.shell), "/bin/sh");
  EXPECT_TRUE(mid_host_user_usable(&h, "bot-ci"));
  EXPECT_FALSE(mid_host_user_usable(&h, "bot-cd"));
}

// Whatever protocol.cc refuses of a decide reply, the C reader refuses too:
// every truncation, a trailing byte, another version, a bool that is not
// 0 or 1, a NUL inside a string.
TEST(ProtocolCClientTest, CReaderRefusesWhatCppRefuses) {
  ByteVector good = encode(DecideReply{false, "expired", "", {"c", "k", "", "", "", "0", "", ""}});
  mid_decide_reply d;
  ASSERT_EQ(mid_decode_decide_reply(good.data(), good.size(), &d), 0);
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_EQ(mid_decode_decide_reply(good.data(), n, &d), -1) << n;
    EXPECT_FALSE(decode_decide_reply(Bytes(good.data(), n)).ok()) << n;
  }
  std::vector<ByteVector> bad;
  bad.push_back(good);
  bad.back().push_back(0);
  bad.push_back(good);
  bad.back()[0] = MID_PROTOCOL_VERSION + 1;
  bad.push_back(good);
  bad.back()[2] = 2;  // allowed
  bad.push_back(good);
  bad.back()[good.size() - 13] = 2;  // host_user, before the three empty strings that end the reply
  ByteVector nul = encode(DecideReply{false, std::string("exp\0ired", 8)});
  bad.push_back(nul);
  for (const ByteVector& b : bad) {
    EXPECT_EQ(mid_decode_decide_reply(b.data(), b.size(), &d), -1);
    EXPECT_FALSE(decode_decide_reply(b).ok());
  }
}

TEST(ProtocolCClientTest, EscapeMakesControlsAndNonAsciiOctalAndNeverOverflows) {
  char out[64];
  std::string text("bot-ci\n\x1b[31m\\x\x7f");
  EXPECT_STREQ(mid_escape(text.data(), text.size(), out, sizeof out), "bot-ci\\012\\033[31m\\x\\177");
  EXPECT_EQ(std::string(out), escape_untrusted(text));  // the C++ escaping of the same ASCII text
  EXPECT_STREQ(mid_escape("\xc3\xa9", 2, out, sizeof out), "\\303\\251");
  // Cut short, never in the middle of an escape, and always terminated.
  EXPECT_STREQ(mid_escape("ab\ncd", 5, out, 6), "ab");
  EXPECT_STREQ(mid_escape("abc", 3, out, 1), "");
}

// A listening Unix socket at `path`, or -1.
int listen_at(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 4) != 0) return -1;
  return fd;
}

std::string call_error(const std::string& path, unsigned checks) {
  unsigned char request_buf[64], reply[64];
  mid_writer w;
  mid_writer_fixed(&w, request_buf, sizeof request_buf);
  EXPECT_EQ(mid_encode_simple(&w, MID_KIND_STATUS), 0);
  std::size_t size = 0;
  char err[256] = "unset";
  EXPECT_EQ(mid_call(path.c_str(), &w, mid_now_ms() + 2000, checks, reply, sizeof reply, &size, err, sizeof err), -1);
  return err;
}

// The modules talk only to root's daemon, and NSS never to its own process:
// a socket someone else listens on is refused before anything is sent.
TEST(ProtocolCClientTest, PeerChecksRefuseANonRootDaemonAndThisProcessItself) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to listen as another user";
  std::string dir = "/tmp/mid-peer-" + std::to_string(getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(chown(dir.c_str(), 65534, 65534), 0);  // nobody may listen there
  std::string other = dir + "/other.sock", self = dir + "/self.sock";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Listens as nobody, then waits to be killed.
    int fd = setgid(65534) == 0 && setuid(65534) == 0 ? listen_at(other) : -1;
    char c = fd >= 0 ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    pause();
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  EXPECT_EQ(c, 'y');
  EXPECT_NE(call_error(other, MID_PEER_ROOT).find("not root"), std::string::npos);

  int own = listen_at(self);
  ASSERT_GE(own, 0);
  EXPECT_NE(call_error(self, MID_PEER_NOT_SELF).find("this process's own"), std::string::npos);
  EXPECT_NE(call_error(dir + "/absent.sock", 0).find("cannot connect"), std::string::npos);

  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(own);
  close(ready[0]);
  close(ready[1]);
  unlink(other.c_str());
  unlink(self.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace machineid
