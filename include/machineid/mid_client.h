/* The C client of machineid-verifierd's socket protocol: what the NSS module,
 * the PAM module and the principals helper share, and what
 * machineid::call_daemon runs on. Plain C11 against libc alone, so it loads
 * into sshd, cron, su and login without a C++ runtime. The frames are those
 * of include/machineid/protocol.h (the daemon's C++ codec):
 *
 *   frame   = uint32 length, payload (0 < length <= MID_MAX_FRAME_BYTES)
 *   payload = byte version (MID_PROTOCOL_VERSION), byte kind, fields...
 *
 * with big-endian integers and uint32-length-prefixed strings. Only the
 * messages the clients send or read are here.
 *
 * Every function returns 0 on success and -1 on failure unless it says
 * otherwise; nothing reads past the bytes it is given. */
#ifndef MACHINEID_MID_CLIENT_H
#define MACHINEID_MID_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MID_PROTOCOL_VERSION 2u
#define MID_MAX_FRAME_BYTES (256u * 1024u)
#define MID_DEFAULT_SOCKET "/run/machineid/verifierd.sock"

/* The kinds of include/machineid/protocol.h. */
enum mid_kind {
  MID_KIND_DECIDE = 1,
  MID_KIND_STATUS = 2,
  MID_KIND_RELOAD = 3,
  MID_KIND_SESSION = 4,
  MID_KIND_PROVISIONAL_USER = 5,
  MID_KIND_USERS = 6,
  MID_KIND_FORGET_USER = 7,
  MID_KIND_SESSIONS = 8,
  MID_KIND_KILL_SESSION = 9,
  MID_KIND_ERROR = 127
};

enum mid_asker { MID_ASKER_PRINCIPALS = 1, MID_ASKER_PAM = 2, MID_ASKER_CLI = 3 };

/* A string by pointer and size; not NUL-terminated when it is a view into a
 * reply. */
struct mid_string {
  const char* data;
  size_t size;
};

/* A NUL-terminated string as a mid_string (NULL as the empty string). */
struct mid_string mid_str(const char* s);

/* --- writing ------------------------------------------------------------- */

/* An outgoing frame. It starts with room for the frame's length, which
 * mid_finish fills in. A fixed writer never allocates and fails once its
 * buffer is full; a heap writer grows (up to MID_MAX_FRAME_BYTES + 4). A
 * failed write leaves `failed` set and every later write does nothing. */
struct mid_writer {
  unsigned char* data;
  size_t size, cap;
  int heap, failed;
};

void mid_writer_fixed(struct mid_writer* w, unsigned char* buf, size_t cap);
void mid_writer_heap(struct mid_writer* w);
/* Frees a heap writer's buffer; does nothing for a fixed one. */
void mid_writer_free(struct mid_writer* w);

/* Starts a frame of `kind`: the length placeholder, version and kind. */
void mid_begin(struct mid_writer* w, enum mid_kind kind);
void mid_put_u8(struct mid_writer* w, uint8_t v);
void mid_put_u32(struct mid_writer* w, uint32_t v);
void mid_put_u64(struct mid_writer* w, uint64_t v);
void mid_put_string(struct mid_writer* w, struct mid_string s);
/* Writes the payload's length into the frame: 0, or -1 when a write failed
 * or the payload exceeds MID_MAX_FRAME_BYTES. */
int mid_finish(struct mid_writer* w);
/* The payload of a finished frame (after its 4-byte length). */
const unsigned char* mid_payload(const struct mid_writer* w);
size_t mid_payload_size(const struct mid_writer* w);

/* --- reading ------------------------------------------------------------- */

/* A cursor over untrusted bytes: each getter returns 0 and advances, or -1
 * and leaves the cursor where it was. */
struct mid_cursor {
  const unsigned char* p;
  const unsigned char* end;
};

int mid_get_u8(struct mid_cursor* c, uint8_t* v);
int mid_get_bool(struct mid_cursor* c, int* v); /* a byte that is 0 or 1 */
int mid_get_u32(struct mid_cursor* c, uint32_t* v);
int mid_get_u64(struct mid_cursor* c, uint64_t* v);
/* A string without NUL bytes, as a view into the cursor's bytes. */
int mid_get_cstring(struct mid_cursor* c, struct mid_string* s);

/* The kind of a payload of this protocol version: MID_KIND_*, or -1 for
 * another version, an unknown kind or fewer than two bytes. */
int mid_peek_kind(const unsigned char* payload, size_t size);

/* --- messages ------------------------------------------------------------ */

struct mid_decide_request {
  enum mid_asker asker;
  struct mid_string login, key_type, certificate, source; /* source: "" unknown */
};

/* Who a certificate login is: protocol.h's CertIdentity, one record in the
 * decide reply and the session event, its fields in their wire order. */
enum mid_identity_field {
  MID_ID_CORRELATION_ID,
  MID_ID_KEY_ID,
  MID_ID_BOT,
  MID_ID_BOT_INSTANCE,
  MID_ID_ROLES, /* space-separated */
  MID_ID_SERIAL, /* decimal */
  MID_ID_CERT_FP,
  MID_ID_CA_FP,
  MID_ID_FIELDS
};
struct mid_identity {
  struct mid_string field[MID_ID_FIELDS];
};

struct mid_decide_reply {
  int allowed;
  struct mid_string reason, detail;
  struct mid_identity who;
  int host_user;
  struct mid_string key_options;
  /* A host user's sudoers file: its name in the sudoers directory and its
   * content ("" when no role grants host_sudoers). */
  struct mid_string sudoers_file, sudoers;
};

/* A PAM session opening (open = 1) or closing, for the audit trail. */
struct mid_session_event {
  int open;
  struct mid_string login;
  struct mid_identity who;
  struct mid_string source;
  int64_t duration; /* seconds, for a close; never negative */
};

struct mid_status_reply {
  int ok;
  struct mid_string json;
};

struct mid_host_user_reply {
  int found;
  struct mid_string message, name, gecos, home, shell;
  uint32_t uid, gid;
};

/* Each encoder begins and finishes one frame in `w`; 0, or -1 when it does
 * not fit (or a duration is negative). */
int mid_encode_decide_request(struct mid_writer* w, const struct mid_decide_request* m);
int mid_encode_session_event(struct mid_writer* w, const struct mid_session_event* m);
/* provisional_user and forget_user: one login. */
int mid_encode_user_request(struct mid_writer* w, enum mid_kind kind, struct mid_string login);
/* status, reload and users: no fields. */
int mid_encode_simple(struct mid_writer* w, enum mid_kind kind);

/* Each decoder reads one whole payload into `m`, whose strings are views
 * into `payload`: 0, or -1 for another version or kind, a malformed field
 * or trailing bytes. */
int mid_decode_decide_reply(const unsigned char* payload, size_t size, struct mid_decide_reply* m);
/* The answer to status, reload, session, users, forget_user, sessions and
 * kill_session. */
int mid_decode_status_reply(const unsigned char* payload, size_t size, struct mid_status_reply* m);
int mid_decode_host_user_reply(const unsigned char* payload, size_t size,
                               struct mid_host_user_reply* m);
int mid_decode_error(const unsigned char* payload, size_t size, struct mid_string* message);

/* Whether a host-user reply is a usable passwd entry for `login`: found,
 * for that very name, not root's ids nor (uid_t)-1, an absolute home and
 * shell. 1 or 0. */
int mid_host_user_usable(const struct mid_host_user_reply* m, const char* login);

/* --- talking to the daemon ------------------------------------------------ */

/* Milliseconds on the monotonic clock, for deadlines. */
int64_t mid_now_ms(void);

/* Peer checks for mid_call. */
#define MID_PEER_ROOT 1u     /* the daemon must run as root */
#define MID_PEER_NOT_SELF 2u /* and must not be this very process */

/* Sends the finished frame in `request` to the daemon listening on
 * `socket_path` and reads its one reply payload into `reply` (room for
 * `cap` bytes; a longer reply is refused), setting `*size`. Connecting,
 * checking the peer, writing and reading all end by `deadline` (mid_now_ms
 * time). Returns 0, or -1 with a message naming the socket in `err` (when
 * not NULL; always NUL-terminated, cut to `errlen`). */
int mid_call(const char* socket_path, const struct mid_writer* request, int64_t deadline,
             unsigned peer_checks, unsigned char* reply, size_t cap, size_t* size, char* err,
             size_t errlen);

/* --- logging untrusted text ---------------------------------------------- */

/* Copies `in` (`n` bytes) to `out` for a log line: printable ASCII stays,
 * every other byte (controls, DEL, all of UTF-8) becomes a three-digit octal
 * escape ("\033"), as OpenSSH's strnvis(VIS_OCTAL) writes it. The result is
 * always NUL-terminated and cut short, never mid-escape, to fit `outlen`
 * (which must be at least 1). Returns `out`. */
char* mid_escape(const char* in, size_t n, char* out, size_t outlen);

#ifdef __cplusplus
}
#endif

#endif /* MACHINEID_MID_CLIENT_H */
