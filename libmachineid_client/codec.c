/* Framing, the bounded reader, and the messages the clients use
 * (include/machineid/mid_client.h). */
#include <stdlib.h>
#include <string.h>

#include "machineid/mid_client.h"

/* The 4-byte frame length every writer starts with. */
#define FRAME_HEADER 4u

struct mid_string mid_str(const char* s) {
  struct mid_string r = {s != NULL ? s : "", s != NULL ? strlen(s) : 0};
  return r;
}

/* --- writing ------------------------------------------------------------- */

void mid_writer_fixed(struct mid_writer* w, unsigned char* buf, size_t cap) {
  w->data = buf;
  w->size = 0;
  w->cap = cap;
  w->heap = 0;
  w->failed = 0;
}

void mid_writer_heap(struct mid_writer* w) {
  mid_writer_fixed(w, NULL, 0);
  w->heap = 1;
}

void mid_writer_free(struct mid_writer* w) {
  if (w->heap) free(w->data);
  mid_writer_heap(w);
}

/* Room for `n` more bytes, or -1 (and `failed`). */
static int reserve(struct mid_writer* w, size_t n) {
  if (w->failed) return -1;
  if (n <= w->cap - w->size) return 0;
  size_t limit = MID_MAX_FRAME_BYTES + FRAME_HEADER;
  if (!w->heap || n > limit - w->size) {
    w->failed = 1;
    return -1;
  }
  size_t cap = w->cap < 256 ? 256 : w->cap;
  while (cap - w->size < n) cap = cap > limit / 2 ? limit : cap * 2;
  unsigned char* grown = realloc(w->data, cap);
  if (grown == NULL) {
    w->failed = 1;
    return -1;
  }
  w->data = grown;
  w->cap = cap;
  return 0;
}

static void put_bytes(struct mid_writer* w, const void* p, size_t n) {
  if (reserve(w, n) != 0) return;
  if (n > 0) memcpy(w->data + w->size, p, n);
  w->size += n;
}

void mid_put_u8(struct mid_writer* w, uint8_t v) { put_bytes(w, &v, 1); }

void mid_put_u32(struct mid_writer* w, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  put_bytes(w, b, sizeof b);
}

void mid_put_u64(struct mid_writer* w, uint64_t v) {
  mid_put_u32(w, (uint32_t)(v >> 32));
  mid_put_u32(w, (uint32_t)v);
}

void mid_put_string(struct mid_writer* w, struct mid_string s) {
  if (s.size > MID_MAX_FRAME_BYTES) {
    w->failed = 1;
    return;
  }
  mid_put_u32(w, (uint32_t)s.size);
  put_bytes(w, s.data, s.size);
}

void mid_begin(struct mid_writer* w, enum mid_kind kind) {
  w->size = 0;
  mid_put_u32(w, 0);
  mid_put_u8(w, MID_PROTOCOL_VERSION);
  mid_put_u8(w, (uint8_t)kind);
}

int mid_finish(struct mid_writer* w) {
  if (w->failed || w->size <= FRAME_HEADER || w->size - FRAME_HEADER > MID_MAX_FRAME_BYTES) {
    w->failed = 1;
    return -1;
  }
  uint32_t n = (uint32_t)(w->size - FRAME_HEADER);
  w->data[0] = (unsigned char)(n >> 24);
  w->data[1] = (unsigned char)(n >> 16);
  w->data[2] = (unsigned char)(n >> 8);
  w->data[3] = (unsigned char)n;
  return 0;
}

const unsigned char* mid_payload(const struct mid_writer* w) { return w->data + FRAME_HEADER; }

size_t mid_payload_size(const struct mid_writer* w) {
  return w->size > FRAME_HEADER ? w->size - FRAME_HEADER : 0;
}

/* --- reading ------------------------------------------------------------- */

int mid_get_u8(struct mid_cursor* c, uint8_t* v) {
  if (c->end - c->p < 1) return -1;
  *v = *c->p++;
  return 0;
}

int mid_get_bool(struct mid_cursor* c, int* v) {
  if (c->end - c->p < 1 || *c->p > 1) return -1;
  *v = *c->p++;
  return 0;
}

int mid_get_u32(struct mid_cursor* c, uint32_t* v) {
  if (c->end - c->p < 4) return -1;
  *v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 |
       (uint32_t)c->p[3];
  c->p += 4;
  return 0;
}

int mid_get_u64(struct mid_cursor* c, uint64_t* v) {
  uint64_t r = 0;
  if (c->end - c->p < 8) return -1;
  for (int i = 0; i < 8; ++i) r = r << 8 | *c->p++;
  *v = r;
  return 0;
}

int mid_get_cstring(struct mid_cursor* c, struct mid_string* s) {
  struct mid_cursor at = *c;
  uint32_t n;
  if (mid_get_u32(&at, &n) != 0 || (size_t)(at.end - at.p) < n || memchr(at.p, 0, n) != NULL)
    return -1;
  s->data = (const char*)at.p;
  s->size = n;
  c->p = at.p + n;
  return 0;
}

int mid_peek_kind(const unsigned char* payload, size_t size) {
  if (size < 2 || payload[0] != MID_PROTOCOL_VERSION) return -1;
  switch (payload[1]) {
    case MID_KIND_DECIDE:
    case MID_KIND_STATUS:
    case MID_KIND_RELOAD:
    case MID_KIND_SESSION:
    case MID_KIND_PROVISIONAL_USER:
    case MID_KIND_USERS:
    case MID_KIND_FORGET_USER:
    case MID_KIND_SESSIONS:
    case MID_KIND_KILL_SESSION:
    case MID_KIND_ERROR:
      return payload[1];
    default:
      return -1;
  }
}

/* A cursor after the header of a payload of `kind`, or -1. */
static int body(const unsigned char* payload, size_t size, enum mid_kind kind,
                struct mid_cursor* c) {
  if (mid_peek_kind(payload, size) != (int)kind) return -1;
  c->p = payload + 2;
  c->end = payload + size;
  return 0;
}

/* Reads `count` strings into `fields`, in order. */
static int get_strings(struct mid_cursor* c, struct mid_string* const* fields, size_t count) {
  for (size_t i = 0; i < count; ++i)
    if (mid_get_cstring(c, fields[i]) != 0) return -1;
  return 0;
}

/* --- messages ------------------------------------------------------------ */

int mid_encode_decide_request(struct mid_writer* w, const struct mid_decide_request* m) {
  mid_begin(w, MID_KIND_DECIDE);
  mid_put_u8(w, (uint8_t)m->asker);
  mid_put_string(w, m->login);
  mid_put_string(w, m->key_type);
  mid_put_string(w, m->certificate);
  mid_put_string(w, m->source);
  return mid_finish(w);
}

static void put_identity(struct mid_writer* w, const struct mid_identity* who) {
  for (int i = 0; i < MID_ID_FIELDS; ++i) mid_put_string(w, who->field[i]);
}

int mid_encode_session_event(struct mid_writer* w, const struct mid_session_event* m) {
  mid_begin(w, MID_KIND_SESSION);
  mid_put_u8(w, m->open ? 1 : 0);
  mid_put_string(w, m->login);
  put_identity(w, &m->who);
  mid_put_string(w, m->source);
  if (m->duration < 0) w->failed = 1;
  mid_put_u64(w, (uint64_t)m->duration);
  return mid_finish(w);
}

int mid_encode_user_request(struct mid_writer* w, enum mid_kind kind, struct mid_string login) {
  mid_begin(w, kind);
  mid_put_string(w, login);
  return mid_finish(w);
}

int mid_encode_simple(struct mid_writer* w, enum mid_kind kind) {
  mid_begin(w, kind);
  return mid_finish(w);
}

int mid_decode_decide_reply(const unsigned char* payload, size_t size, struct mid_decide_reply* m) {
  struct mid_cursor c;
  struct mid_string* const fields[] = {&m->reason, &m->detail};
  struct mid_string* who[MID_ID_FIELDS];
  for (int i = 0; i < MID_ID_FIELDS; ++i) who[i] = &m->who.field[i];
  memset(m, 0, sizeof *m);
  if (body(payload, size, MID_KIND_DECIDE, &c) != 0 || mid_get_bool(&c, &m->allowed) != 0 ||
      get_strings(&c, fields, sizeof fields / sizeof fields[0]) != 0 ||
      get_strings(&c, who, MID_ID_FIELDS) != 0 ||
      mid_get_bool(&c, &m->host_user) != 0 || mid_get_cstring(&c, &m->key_options) != 0 ||
      mid_get_cstring(&c, &m->sudoers_file) != 0 || mid_get_cstring(&c, &m->sudoers) != 0 ||
      c.p != c.end) {
    memset(m, 0, sizeof *m);
    return -1;
  }
  return 0;
}

int mid_decode_status_reply(const unsigned char* payload, size_t size, struct mid_status_reply* m) {
  struct mid_cursor c;
  int kind = mid_peek_kind(payload, size);
  memset(m, 0, sizeof *m);
  if (kind != MID_KIND_STATUS && kind != MID_KIND_RELOAD && kind != MID_KIND_SESSION &&
      kind != MID_KIND_USERS && kind != MID_KIND_FORGET_USER && kind != MID_KIND_SESSIONS &&
      kind != MID_KIND_KILL_SESSION)
    return -1;
  c.p = payload + 2; /* after the version and kind mid_peek_kind checked */
  c.end = payload + size;
  if (mid_get_bool(&c, &m->ok) != 0 || mid_get_cstring(&c, &m->json) != 0 || c.p != c.end) {
    memset(m, 0, sizeof *m);
    return -1;
  }
  return 0;
}

int mid_decode_host_user_reply(const unsigned char* payload, size_t size,
                               struct mid_host_user_reply* m) {
  struct mid_cursor c;
  struct mid_string* const tail[] = {&m->gecos, &m->home, &m->shell};
  memset(m, 0, sizeof *m);
  if (body(payload, size, MID_KIND_PROVISIONAL_USER, &c) != 0 || mid_get_bool(&c, &m->found) != 0 ||
      mid_get_cstring(&c, &m->message) != 0 || mid_get_cstring(&c, &m->name) != 0 ||
      mid_get_u32(&c, &m->uid) != 0 || mid_get_u32(&c, &m->gid) != 0 ||
      get_strings(&c, tail, 3) != 0 || c.p != c.end) {
    memset(m, 0, sizeof *m);
    return -1;
  }
  return 0;
}

int mid_decode_error(const unsigned char* payload, size_t size, struct mid_string* message) {
  struct mid_cursor c;
  if (body(payload, size, MID_KIND_ERROR, &c) != 0 || mid_get_cstring(&c, message) != 0 ||
      c.p != c.end) {
    message->data = "";
    message->size = 0;
    return -1;
  }
  return 0;
}

int mid_host_user_usable(const struct mid_host_user_reply* m, const char* login) {
  size_t n = strlen(login);
  return m->found && m->name.size == n && memcmp(m->name.data, login, n) == 0 && m->uid != 0 &&
         m->gid != 0 && m->uid != UINT32_MAX && m->gid != UINT32_MAX && m->home.size > 0 &&
         m->home.data[0] == '/' && m->shell.size > 0 && m->shell.data[0] == '/';
}

/* --- logging untrusted text ---------------------------------------------- */

char* mid_escape(const char* in, size_t n, char* out, size_t outlen) {
  size_t o = 0;
  for (size_t i = 0; i < n; ++i) {
    unsigned char b = (unsigned char)in[i];
    if (b >= 0x20 && b < 0x7f) {
      if (outlen - o < 2) break;
      out[o++] = (char)b;
    } else {
      if (outlen - o < 5) break;
      out[o++] = '\\';
      out[o++] = (char)('0' + (b >> 6));
      out[o++] = (char)('0' + ((b >> 3) & 7));
      out[o++] = (char)('0' + (b & 7));
    }
  }
  out[o] = '\0';
  return out;
}
