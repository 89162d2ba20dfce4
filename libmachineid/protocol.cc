#include "machineid/protocol.h"

#include <array>
#include <cstdint>

namespace machineid {
namespace {

WireWriter header(MessageKind kind) {
  WireWriter w;
  w.u8(kProtocolVersion).u8(static_cast<std::uint8_t>(kind));
  return w;
}

// A reader positioned after the header, which must announce `kind`.
Result<WireReader> body(Bytes payload, MessageKind kind) {
  MID_TRY(actual, peek_kind(payload));
  if (actual != kind)
    return make_error(Errc::malformed, "message kind " + std::to_string(static_cast<int>(actual)) + ", expected " +
                                           std::to_string(static_cast<int>(kind)));
  return WireReader(payload.subspan(2));
}

Result<std::string> read_string(WireReader& r) {
  MID_TRY(s, r.cstring());
  return std::string(s);
}

// The CertIdentity's fields, in their one wire order.
template <class Identity>
auto identity_fields(Identity& who) {
  return std::array{&who.correlation_id, &who.key_id, &who.bot,     &who.bot_instance,
                    &who.roles,          &who.serial, &who.cert_fp, &who.ca_fp};
}

void write_identity(WireWriter& w, const CertIdentity& who) {
  for (const std::string* field : identity_fields(who)) w.string(*field);
}

Status read_identity(WireReader& r, CertIdentity& who) {
  for (std::string* field : identity_fields(who)) {
    MID_TRY(s, read_string(r));
    *field = std::move(s);
  }
  return {};
}

}  // namespace

ByteVector encode(const DecideRequest& m) {
  WireWriter w = header(MessageKind::decide);
  w.u8(static_cast<std::uint8_t>(m.asker)).string(m.login).string(m.key_type).string(m.certificate).string(m.source);
  return w.take();
}

ByteVector encode(const DecideReply& m) {
  WireWriter w = header(MessageKind::decide);
  w.u8(m.allowed ? 1 : 0).string(m.reason).string(m.detail);
  write_identity(w, m.who);
  w.u8(m.host_user ? 1 : 0).string(m.key_options);
  w.string(m.sudoers_file).string(m.sudoers);
  return w.take();
}

ByteVector encode(const SessionEvent& m) {
  WireWriter w = header(MessageKind::session);
  w.u8(m.open ? 1 : 0).string(m.login);
  write_identity(w, m.who);
  w.string(m.source);
  w.u64(static_cast<std::uint64_t>(m.duration));
  return w.take();
}

ByteVector encode(const UserRequest& m, MessageKind kind) {
  WireWriter w = header(kind);
  w.string(m.login);
  return w.take();
}

ByteVector encode(const HostUserReply& m) {
  WireWriter w = header(MessageKind::provisional_user);
  w.u8(m.found ? 1 : 0).string(m.message).string(m.name).u32(m.uid).u32(m.gid);
  w.string(m.gecos).string(m.home).string(m.shell);
  return w.take();
}

ByteVector encode(const StatusReply& m, MessageKind kind) {
  WireWriter w = header(kind);
  w.u8(m.ok ? 1 : 0).string(m.json);
  return w.take();
}

ByteVector encode_simple(MessageKind kind) { return header(kind).take(); }

ByteVector encode_error(std::string_view message) {
  WireWriter w = header(MessageKind::error);
  w.string(message);
  return w.take();
}

Result<MessageKind> peek_kind(Bytes payload) {
  WireReader r(payload);
  MID_TRY(version, r.u8());
  if (version != kProtocolVersion)
    return make_error(Errc::unsupported, "protocol version " + std::to_string(version) + ", expected " +
                                             std::to_string(kProtocolVersion));
  MID_TRY(kind, r.u8());
  switch (static_cast<MessageKind>(kind)) {
    case MessageKind::decide:
    case MessageKind::status:
    case MessageKind::reload:
    case MessageKind::session:
    case MessageKind::provisional_user:
    case MessageKind::users:
    case MessageKind::forget_user:
    case MessageKind::sessions:
    case MessageKind::kill_session:
    case MessageKind::error:
      return static_cast<MessageKind>(kind);
  }
  return make_error(Errc::malformed, "unknown message kind " + std::to_string(kind));
}

Result<DecideRequest> decode_decide_request(Bytes payload) {
  MID_TRY(r, body(payload, MessageKind::decide));
  DecideRequest m;
  MID_TRY(asker, r.u8());
  if (asker < 1 || asker > 3) return make_error(Errc::malformed, "unknown asker " + std::to_string(asker));
  m.asker = static_cast<Asker>(asker);
  MID_TRY(login, read_string(r));
  MID_TRY(key_type, read_string(r));
  MID_TRY(certificate, read_string(r));
  MID_TRY(source, read_string(r));
  MID_CHECK(r.expect_end("decide request"));
  m.login = std::move(login);
  m.key_type = std::move(key_type);
  m.certificate = std::move(certificate);
  m.source = std::move(source);
  return m;
}

Result<DecideReply> decode_decide_reply(Bytes payload) {
  MID_TRY(r, body(payload, MessageKind::decide));
  DecideReply m;
  MID_TRY(allowed, r.boolean());
  m.allowed = allowed;
  for (std::string* field : {&m.reason, &m.detail}) {
    MID_TRY(s, read_string(r));
    *field = std::move(s);
  }
  MID_CHECK(read_identity(r, m.who));
  MID_TRY(host_user, r.boolean());
  m.host_user = host_user;
  for (std::string* field : {&m.key_options, &m.sudoers_file, &m.sudoers}) {
    MID_TRY(s, read_string(r));
    *field = std::move(s);
  }
  MID_CHECK(r.expect_end("decide reply"));
  return m;
}

Result<SessionEvent> decode_session_event(Bytes payload) {
  MID_TRY(r, body(payload, MessageKind::session));
  SessionEvent m;
  MID_TRY(open, r.boolean());
  m.open = open;
  MID_TRY(login, read_string(r));
  m.login = std::move(login);
  MID_CHECK(read_identity(r, m.who));
  MID_TRY(source, read_string(r));
  m.source = std::move(source);
  MID_TRY(duration, r.u64());
  if (duration > static_cast<std::uint64_t>(INT64_MAX)) return make_error(Errc::malformed, "session duration out of range");
  m.duration = static_cast<std::int64_t>(duration);
  MID_CHECK(r.expect_end("session event"));
  return m;
}

Result<UserRequest> decode_user_request(Bytes payload, MessageKind kind) {
  MID_TRY(r, body(payload, kind));
  MID_TRY(login, read_string(r));
  MID_CHECK(r.expect_end("user request"));
  return UserRequest{std::move(login)};
}

Result<HostUserReply> decode_host_user_reply(Bytes payload) {
  MID_TRY(r, body(payload, MessageKind::provisional_user));
  HostUserReply m;
  MID_TRY(found, r.boolean());
  m.found = found;
  MID_TRY(message, read_string(r));
  MID_TRY(name, read_string(r));
  MID_TRY(uid, r.u32());
  MID_TRY(gid, r.u32());
  m.message = std::move(message);
  m.name = std::move(name);
  m.uid = uid;
  m.gid = gid;
  for (std::string* field : {&m.gecos, &m.home, &m.shell}) {
    MID_TRY(s, read_string(r));
    *field = std::move(s);
  }
  MID_CHECK(r.expect_end("host user reply"));
  return m;
}

Result<StatusReply> decode_status_reply(Bytes payload) {
  MID_TRY(kind, peek_kind(payload));
  if (kind != MessageKind::status && kind != MessageKind::reload && kind != MessageKind::session &&
      kind != MessageKind::users && kind != MessageKind::forget_user && kind != MessageKind::sessions &&
      kind != MessageKind::kill_session)
    return make_error(Errc::malformed, "expected a status reply");
  WireReader r(payload.subspan(2));  // peek_kind read the two header bytes
  StatusReply m;
  MID_TRY(ok, r.boolean());
  MID_TRY(json, read_string(r));
  MID_CHECK(r.expect_end("status reply"));
  m.ok = ok;
  m.json = std::move(json);
  return m;
}

Result<std::string> decode_error(Bytes payload) {
  MID_TRY(r, body(payload, MessageKind::error));
  MID_TRY(message, read_string(r));
  MID_CHECK(r.expect_end("error reply"));
  return message;
}

ByteVector frame(const ByteVector& payload) {
  WireWriter w;
  w.u32(static_cast<std::uint32_t>(payload.size())).raw(payload);
  return w.take();
}

Result<std::uint32_t> frame_length(Bytes header) {
  WireReader r(header);
  MID_TRY(len, r.u32());
  if (len == 0 || len > kMaxFrameBytes)
    return make_error(Errc::limit, "frame of " + std::to_string(len) + " bytes (limit " +
                                       std::to_string(kMaxFrameBytes) + ")");
  return len;
}

}  // namespace machineid
