/* The daemon's answer to provisional_user, read by libnss_machineid. Plain C
 * (it also compiles as C++ for the fuzzer), the same frames as
 * include/machineid/protocol.h:
 *
 *   payload = byte version (1), byte kind (5 provisional_user, 127 error), then
 *             for kind 5: bool found, string message, string name,
 *             uint32 uid, uint32 gid, string gecos, string home, string shell
 *
 * with big-endian uint32s and uint32-length-prefixed strings. */
#ifndef MACHINEID_NSS_REPLY_H
#define MACHINEID_NSS_REPLY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MID_PROTOCOL_VERSION 1u
#define MID_KIND_PROVISIONAL_USER 5u
/* A reply holds five short strings; anything longer is not one. */
#define MID_MAX_REPLY_BYTES 4096u

/* A view of a string inside the payload; not NUL-terminated. */
struct mid_reply_string {
  const char* data;
  uint32_t size;
};

struct mid_reply {
  int found;
  struct mid_reply_string message, name, gecos, home, shell;
  uint32_t uid, gid;
};

/* A cursor that never reads past `end`: each getter returns 0 on success
 * and advances, or -1 and leaves the cursor unusable. */
struct mid_cursor {
  const unsigned char* p;
  const unsigned char* end;
};

static inline int mid_get_u8(struct mid_cursor* c, uint8_t* v) {
  if (c->end - c->p < 1) return -1;
  *v = *c->p++;
  return 0;
}

static inline int mid_get_u32(struct mid_cursor* c, uint32_t* v) {
  if (c->end - c->p < 4) return -1;
  *v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 |
       (uint32_t)c->p[3];
  c->p += 4;
  return 0;
}

/* A string without NUL bytes (they would cut a passwd field short). */
static inline int mid_get_cstring(struct mid_cursor* c, struct mid_reply_string* s) {
  uint32_t n;
  if (mid_get_u32(c, &n) != 0 || (size_t)(c->end - c->p) < n || memchr(c->p, 0, n) != NULL)
    return -1;
  s->data = (const char*)c->p;
  s->size = n;
  c->p += n;
  return 0;
}

/* Parses one provisional_user reply payload into `r` (views into `payload`).
 * Returns 0, or -1 for anything else: an error reply, another version or
 * kind, a malformed field, or trailing bytes. */
static inline int mid_reply_parse(const unsigned char* payload, size_t size, struct mid_reply* r) {
  struct mid_cursor c = {payload, payload + size};
  uint8_t version, kind, found;
  memset(r, 0, sizeof *r);
  if (mid_get_u8(&c, &version) != 0 || version != MID_PROTOCOL_VERSION ||
      mid_get_u8(&c, &kind) != 0 || kind != MID_KIND_PROVISIONAL_USER || mid_get_u8(&c, &found) != 0 ||
      found > 1 || mid_get_cstring(&c, &r->message) != 0 || mid_get_cstring(&c, &r->name) != 0 ||
      mid_get_u32(&c, &r->uid) != 0 || mid_get_u32(&c, &r->gid) != 0 ||
      mid_get_cstring(&c, &r->gecos) != 0 || mid_get_cstring(&c, &r->home) != 0 ||
      mid_get_cstring(&c, &r->shell) != 0 || c.p != c.end)
    return -1;
  r->found = found;
  return 0;
}

/* Whether a parsed reply is a usable passwd entry for `login`: found, for
 * that very name, not root's ids nor (uid_t)-1, an absolute home and shell. */
static inline int mid_reply_usable(const struct mid_reply* r, const char* login) {
  size_t n = strlen(login);
  return r->found && r->name.size == n && memcmp(r->name.data, login, n) == 0 && r->uid != 0 &&
         r->gid != 0 && r->uid != UINT32_MAX && r->gid != UINT32_MAX && r->home.size > 0 &&
         r->home.data[0] == '/' && r->shell.size > 0 && r->shell.data[0] == '/';
}

#endif /* MACHINEID_NSS_REPLY_H */
