// The verifierd socket protocol: length-prefixed frames of SSH wire values.
//
//   frame    = uint32 length, payload (length <= kMaxFrameBytes)
//   payload  = byte version (kProtocolVersion), byte kind, fields...
//
// Every request gets exactly one reply frame; a malformed frame closes the
// connection. This is the daemon's codec; the clients (NSS, PAM, the
// principals helper, call_daemon) speak the same frames through the C
// library in include/machineid/mid_client.h, and tests/protocol_test.cc
// checks each side against the other.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "machineid/result.h"
#include "machineid/wire.h"

namespace machineid {

// 2: one CertIdentity record in the decide reply and the session event.
inline constexpr std::uint8_t kProtocolVersion = 2;
inline constexpr std::size_t kMaxFrameBytes = 256 * 1024;

enum class MessageKind : std::uint8_t {
  decide = 1,        // DecideRequest -> DecideReply
  status = 2,        // (no fields) -> StatusReply
  reload = 3,        // (no fields) -> StatusReply (root only)
  session = 4,       // SessionEvent -> StatusReply (root only: PAM in sshd)
  provisional_user = 5,  // UserRequest -> HostUserReply (root only: NSS in sshd; stores nothing)
  users = 6,         // (no fields) -> StatusReply, json lists host users
  forget_user = 7,   // UserRequest -> StatusReply (root only)
  sessions = 8,      // (no fields) -> StatusReply, json lists open sessions
  kill_session = 9,  // UserRequest naming a session id -> StatusReply (root only)
  error = 127,       // reply only: string message
};

// Who asks, so the audit trail can tell the sshd helper from PAM.
enum class Asker : std::uint8_t { principals = 1, pam = 2, cli = 3 };

struct DecideRequest {
  Asker asker = Asker::principals;
  std::string login;
  std::string key_type;     // as sshd's %t
  std::string certificate;  // base64, as sshd's %k
  std::string source;       // client IP, empty when unknown
};

// Who a certificate login is. The decision's reply, the session's events,
// the session table and every audit record carry this one record, written
// by one encoder and read by one decoder (here, and in the C client). Roles
// and serial keep the forms every consumer uses: TELEPORT_ROLES and
// MACHINEID_ROLES are space-separated, MACHINEID_SERIAL is decimal.
struct CertIdentity {
  std::string correlation_id;  // one per sshd connection (SPEC §7)
  std::string key_id, bot, bot_instance;
  std::string roles;   // space-separated
  std::string serial;  // decimal; "" when the certificate did not parse
  std::string cert_fp, ca_fp;
  bool operator==(const CertIdentity&) const = default;
};

struct DecideReply {
  bool allowed = false;
  std::string reason;  // SPEC §4 reason code, "ok" when allowed
  std::string detail;
  CertIdentity who;
  bool host_user = false;  // the login is (or becomes) a host user made for this grant
  // authorized_keys options for sshd when allowed ("" for none); the
  // principals helper prints them before the login.
  std::string key_options;
  // A host user's sudoers file (sudoers.h), for PAM's session open (root):
  // its name in /etc/sudoers.d and its content, "" when its roles grant no
  // host_sudoers (PAM then removes any file of that name). Only PAM's
  // asks get them.
  std::string sudoers_file, sudoers;
};

// A PAM session opening or closing, for the audit trail (SPEC §7), with
// the identity the login's DecideReply gave.
struct SessionEvent {
  bool open = true;
  std::string login;
  CertIdentity who;
  std::string source;
  std::int64_t duration = 0;  // seconds, for a close
};

// provisional_user and forget_user name one login.
struct UserRequest {
  std::string login;
};

// A host user's passwd entry, as NSS hands it out.
struct HostUserReply {
  bool found = false;  // false: no such host user can exist (message says why)
  std::string message;
  std::string name;
  std::uint32_t uid = 0, gid = 0;
  std::string gecos, home, shell;
};

struct StatusReply {
  bool ok = false;
  std::string json;  // the daemon's state, for machineidctl status
};

ByteVector encode(const DecideRequest& m);
ByteVector encode(const DecideReply& m);
ByteVector encode(const StatusReply& m, MessageKind kind);
ByteVector encode(const SessionEvent& m);
ByteVector encode(const UserRequest& m, MessageKind kind);
ByteVector encode(const HostUserReply& m);
ByteVector encode_simple(MessageKind kind);  // status and reload requests
ByteVector encode_error(std::string_view message);

// The kind of a payload, after checking its version.
Result<MessageKind> peek_kind(Bytes payload);
Result<DecideRequest> decode_decide_request(Bytes payload);
Result<DecideReply> decode_decide_reply(Bytes payload);
Result<StatusReply> decode_status_reply(Bytes payload);
Result<std::string> decode_error(Bytes payload);
Result<SessionEvent> decode_session_event(Bytes payload);
Result<UserRequest> decode_user_request(Bytes payload, MessageKind kind);
Result<HostUserReply> decode_host_user_reply(Bytes payload);

// Prepends the uint32 length to a payload.
ByteVector frame(const ByteVector& payload);
// The payload length announced by a 4-byte frame header; an error when it
// exceeds kMaxFrameBytes or is empty.
Result<std::uint32_t> frame_length(Bytes header);

}  // namespace machineid
