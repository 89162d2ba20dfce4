/* users.db, the host-user database: machineid-verifierd writes it (userdb.h)
 * and libnss_machineid reads it. Plain C that also compiles as C++, so the
 * NSS module reads it without any C++ runtime and the daemon, its tests and
 * the fuzzer read it through the very same checks.
 *
 * Version 3 (written since) is a pair of open-addressing hash tables over a
 * heap of records, so that a lookup reads three small pieces of the file
 * and a change writes one record and one or two slots, whatever the number
 * of host users. Every number in host byte order (the file never leaves the
 * machine that wrote it):
 *
 *   header   struct mid_userdb_header3, its own checksum; written once, when
 *            the file is made (made anew, atomically, when a table fills)
 *   names    nslots struct mid_userdb_slot, by name: users and made groups
 *   ids      nslots struct mid_userdb_slot, by id: every id of the range
 *            that is not free (a user's uid, a made group's gid, a retired
 *            uid, an id another NSS source has)
 *   heap     struct mid_userdb_record, each with its own checksum, 8-byte
 *            aligned, appended and never changed; a changed user is a new
 *            record and its slots are pointed at it
 *
 * A slot is 16 bytes, 16-aligned, with a check of its own position and
 * content: a reader that catches one half-written (or a file changed in
 * place) sees a bad slot, never a wrong one, and retries or fails. The
 * daemon writes a record and syncs it before any slot points at it, so no
 * slot ever points at a torn record; the id table is authoritative, the
 * name table an index the daemon repairs on load when a crash cut an
 * update between the two.
 *
 * Versions 1 and 2 were one sorted, whole-file-checksummed snapshot
 * (struct mid_userdb_header, mid_userdb_open below); the daemon still
 * reads them and rewrites them as version 3 when it loads them. */
#ifndef MACHINEID_USERDB_FORMAT_H
#define MACHINEID_USERDB_FORMAT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef __cplusplus
#define MID_USERDB_STATIC_ASSERT static_assert
#else
#define MID_USERDB_STATIC_ASSERT _Static_assert
#endif

#define MID_USERDB_MAGIC "MIDUSRDB" /* 8 bytes, no NUL */
/* The version written. */
#define MID_USERDB_VERSION 3u
/* The snapshot versions still read (mid_userdb_open), to be migrated. */
#define MID_USERDB_VERSION_MIN 1u
#define MID_USERDB_SNAPSHOT_VERSION_MAX 2u
#define MID_USERDB_BYTE_ORDER 0x01020304u
/* Version 1 and 2 files: far above any real node, and small enough that
 * every offset and count fits in 32 bits. */
#define MID_USERDB_MAX_BYTES (256u * 1024u * 1024u)
/* A login is 1 to 32 bytes (as useradd's and Teleport's limit). */
#define MID_USERDB_MAX_LOGIN 32u

/* Version 1 only: a user reserved before authentication, never granted.
 * Not a user for NSS; version 2 files never hold one. */
#define MID_USERDB_PENDING 1u

/* Why an id is in the taken section. */
#define MID_USERDB_TAKEN_USER 1u    /* given to a host user (or retired with it) */
#define MID_USERDB_TAKEN_GROUP 2u   /* given to a group made for host_groups */
#define MID_USERDB_TAKEN_OTHER 3u   /* found known to another NSS source */

struct mid_userdb_section {
  uint32_t offset; /* from the start of the file */
  uint32_t count;  /* records; bytes for strings */
};

struct mid_userdb_header {
  char magic[8];
  uint64_t checksum; /* mid_userdb_checksum() of bytes [16, size) */
  uint32_t version;
  uint32_t byte_order;
  uint64_t size; /* of the whole file */
  struct mid_userdb_section users, users_by_uid, groups, groups_by_gid, retired, ids, strings;
  struct mid_userdb_section taken; /* version 2 on */
};
/* A version 1 header ends before `taken`. */
#define MID_USERDB_HEADER_V1_SIZE 88u

struct mid_userdb_user {
  uint32_t uid; /* also the gid of its primary group, which bears its name */
  uint32_t flags;
  uint32_t name, gecos, home, shell, bot; /* offsets into strings */
  uint32_t gids, ngids;                   /* supplementary gids: ids[gids, gids + ngids) */
  uint32_t reserved;                      /* zero */
  int64_t first_login, last_login;        /* unix seconds */
  int64_t unused;                         /* zero (version 1: a pending user's expiry) */
};

struct mid_userdb_group {
  uint32_t gid;
  uint32_t name;              /* offset into strings */
  uint32_t members, nmembers; /* indices into users: ids[members, members + nmembers) */
};

struct mid_userdb_retired {
  uint32_t uid;
  uint32_t name; /* the login it was given to */
  int64_t retired_at;
};

struct mid_userdb_taken {
  uint32_t id;
  uint32_t kind;   /* MID_USERDB_TAKEN_* */
  int64_t since;   /* unix seconds when the daemon took it or found it taken */
};

MID_USERDB_STATIC_ASSERT(sizeof(struct mid_userdb_header) == 96, "header layout");
MID_USERDB_STATIC_ASSERT(sizeof(struct mid_userdb_taken) == 16, "taken layout");
MID_USERDB_STATIC_ASSERT(sizeof(struct mid_userdb_user) == 64, "user layout");
MID_USERDB_STATIC_ASSERT(sizeof(struct mid_userdb_group) == 16, "group layout");
MID_USERDB_STATIC_ASSERT(sizeof(struct mid_userdb_retired) == 16, "retired layout");

/* Why a file was refused. */
enum mid_userdb_error {
  MID_USERDB_OK = 0,
  MID_USERDB_E_SIZE =
      -1, /* shorter than a header, longer than the limit, or not the size it says */
  MID_USERDB_E_MAGIC = -2,    /* not a users.db */
  MID_USERDB_E_VERSION = -3,  /* another version or byte order */
  MID_USERDB_E_CHECKSUM = -4, /* torn or corrupt */
  MID_USERDB_E_LAYOUT = -5,   /* a section, offset, index or order is wrong */
};

static inline const char* mid_userdb_strerror(int error) {
  switch (error) {
    case MID_USERDB_OK:
      return "ok";
    case MID_USERDB_E_SIZE:
      return "wrong size (truncated?)";
    case MID_USERDB_E_MAGIC:
      return "not a users.db file";
    case MID_USERDB_E_VERSION:
      return "unsupported version or byte order";
    case MID_USERDB_E_CHECKSUM:
      return "checksum mismatch (torn or corrupt)";
    case MID_USERDB_E_LAYOUT:
      return "inconsistent layout";
  }
  return "unknown error";
}

static inline uint64_t mid_userdb_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t mid_userdb_load64(const unsigned char* p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

/* A 64-bit checksum for torn or corrupted files, not an adversary: four
 * independent multiply-rotate lanes over 8-byte words (so it runs at memory
 * speed), the length, and a final avalanche. */
static inline uint64_t mid_userdb_checksum(const void* data, size_t n) {
  const uint64_t p1 = 0x9e3779b185ebca87ull, p2 = 0xc2b2ae3d27d4eb4full;
  const unsigned char* p = (const unsigned char*)data;
  uint64_t lane[4] = {p1, p2, p1 ^ p2, p1 + p2};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 4; ++l)
      lane[l] = mid_userdb_rotl(lane[l] + mid_userdb_load64(p + i + 8 * l) * p2, 31) * p1;
  unsigned char tail[32] = {0};
  memcpy(tail, p + i, n - i);
  for (int l = 0; l < 4; ++l)
    lane[l] = mid_userdb_rotl(lane[l] + mid_userdb_load64(tail + 8 * l) * p2, 31) * p1;
  uint64_t h = (uint64_t)n;
  for (int l = 0; l < 4; ++l) h = mid_userdb_rotl(h ^ lane[l], 27) * p1 + p2;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

/* Whether `login` may name a host user: 1 to MID_USERDB_MAX_LOGIN bytes, a
 * letter or '_' first, then letters, digits, '_', '.' and '-' (the portable
 * set useradd accepts; no ':', '/', blank or control character can reach a
 * passwd line or a path). */
static inline int mid_userdb_valid_login(const char* login) {
  size_t n = 0;
  for (; login[n] != '\0'; ++n) {
    char c = login[n];
    int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    int other = (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (n >= MID_USERDB_MAX_LOGIN || !(letter || (n > 0 && other))) return 0;
  }
  return n > 0;
}

/* A checked file: pointers into the caller's bytes, which must stay mapped
 * and unchanged while it is used. */
struct mid_userdb {
  const struct mid_userdb_user* users;
  const uint32_t* users_by_uid;
  const struct mid_userdb_group* groups;
  const uint32_t* groups_by_gid;
  const struct mid_userdb_retired* retired;
  const uint32_t* ids;
  const char* strings;
  const struct mid_userdb_taken* taken;
  uint32_t nusers, ngroups, nretired, nids, strings_size, ntaken;
  uint32_t version;
};

static inline const char* mid_userdb_string(const struct mid_userdb* db, uint32_t offset) {
  return db->strings + offset;
}

/* Whether [offset, offset + count * elem) lies in a file of `size` bytes and
 * starts aligned. */
static inline int mid_userdb_section_ok(struct mid_userdb_section s, size_t elem, uint64_t size,
                                        size_t header_size) {
  return s.offset % 8 == 0 && s.offset >= header_size && s.offset <= size &&
         (uint64_t)s.count * elem <= size - s.offset;
}

/* Whether ids[first, first + n) lies within the ids section. */
static inline int mid_userdb_slice_ok(const struct mid_userdb* db, uint32_t first, uint32_t n) {
  return (uint64_t)first + n <= db->nids;
}

/* A version 1 or 2 file (a version 3 one is MID_USERDB_E_VERSION here):
 * checks every byte of `data` (8-byte aligned, `size` bytes) and fills `db`.
 * Returns MID_USERDB_OK, or a mid_userdb_error and leaves `db` unusable. */
static inline int mid_userdb_open(struct mid_userdb* db, const void* data, size_t size) {
  const unsigned char* base = (const unsigned char*)data;
  const struct mid_userdb_header* h = (const struct mid_userdb_header*)data;
  struct mid_userdb_section taken = {0, 0};
  size_t header_size;
  memset(db, 0, sizeof *db);
  if (size < MID_USERDB_HEADER_V1_SIZE || size > MID_USERDB_MAX_BYTES) return MID_USERDB_E_SIZE;
  if (memcmp(h->magic, MID_USERDB_MAGIC, sizeof h->magic) != 0) return MID_USERDB_E_MAGIC;
  if (h->version < MID_USERDB_VERSION_MIN || h->version > MID_USERDB_SNAPSHOT_VERSION_MAX ||
      h->byte_order != MID_USERDB_BYTE_ORDER)
    return MID_USERDB_E_VERSION;
  header_size = h->version == 1 ? MID_USERDB_HEADER_V1_SIZE : sizeof *h;
  if (size < header_size || h->size != size) return MID_USERDB_E_SIZE;
  if (mid_userdb_checksum(base + 16, size - 16) != h->checksum) return MID_USERDB_E_CHECKSUM;
  if (h->version >= 2) {
    taken = h->taken;
    if (!mid_userdb_section_ok(taken, sizeof(struct mid_userdb_taken), size, header_size))
      return MID_USERDB_E_LAYOUT;
  }

  if (!mid_userdb_section_ok(h->users, sizeof(struct mid_userdb_user), size, header_size) ||
      !mid_userdb_section_ok(h->users_by_uid, sizeof(uint32_t), size, header_size) ||
      !mid_userdb_section_ok(h->groups, sizeof(struct mid_userdb_group), size, header_size) ||
      !mid_userdb_section_ok(h->groups_by_gid, sizeof(uint32_t), size, header_size) ||
      !mid_userdb_section_ok(h->retired, sizeof(struct mid_userdb_retired), size, header_size) ||
      !mid_userdb_section_ok(h->ids, sizeof(uint32_t), size, header_size) ||
      !mid_userdb_section_ok(h->strings, 1, size, header_size) ||
      h->users_by_uid.count != h->users.count ||
      h->groups_by_gid.count != h->groups.count || h->strings.count == 0 ||
      base[h->strings.offset + h->strings.count - 1] != '\0' || base[h->strings.offset] != '\0')
    return MID_USERDB_E_LAYOUT;
  db->users = (const struct mid_userdb_user*)(base + h->users.offset);
  db->users_by_uid = (const uint32_t*)(base + h->users_by_uid.offset);
  db->groups = (const struct mid_userdb_group*)(base + h->groups.offset);
  db->groups_by_gid = (const uint32_t*)(base + h->groups_by_gid.offset);
  db->retired = (const struct mid_userdb_retired*)(base + h->retired.offset);
  db->ids = (const uint32_t*)(base + h->ids.offset);
  db->strings = (const char*)(base + h->strings.offset);
  db->nusers = h->users.count;
  db->ngroups = h->groups.count;
  db->nretired = h->retired.count;
  db->nids = h->ids.count;
  db->strings_size = h->strings.count;
  db->taken = (const struct mid_userdb_taken*)(base + (taken.count > 0 ? taken.offset : 0));
  db->ntaken = taken.count;
  db->version = h->version;

  /* The strings section ends in NUL, so every string that starts inside it
   * ends inside it. */
  for (uint32_t i = 0; i < db->nusers; ++i) {
    const struct mid_userdb_user* u = &db->users[i];
    if (u->name >= db->strings_size || u->gecos >= db->strings_size ||
        u->home >= db->strings_size || u->shell >= db->strings_size || u->bot >= db->strings_size ||
        (u->flags & ~(db->version == 1 ? MID_USERDB_PENDING : 0u)) != 0 || u->reserved != 0 ||
        (db->version >= 2 && u->unused != 0) ||
        !mid_userdb_slice_ok(db, u->gids, u->ngids) ||
        !mid_userdb_valid_login(mid_userdb_string(db, u->name)) ||
        (i > 0 && strcmp(mid_userdb_string(db, db->users[i - 1].name),
                         mid_userdb_string(db, u->name)) >= 0)) {
      memset(db, 0, sizeof *db);
      return MID_USERDB_E_LAYOUT;
    }
  }
  for (uint32_t i = 0; i < db->nusers; ++i) {
    uint32_t at = db->users_by_uid[i];
    if (at >= db->nusers ||
        (i > 0 && db->users[db->users_by_uid[i - 1]].uid >= db->users[at].uid)) {
      memset(db, 0, sizeof *db);
      return MID_USERDB_E_LAYOUT;
    }
  }
  for (uint32_t i = 0; i < db->ngroups; ++i) {
    const struct mid_userdb_group* g = &db->groups[i];
    int bad = g->name >= db->strings_size || !mid_userdb_slice_ok(db, g->members, g->nmembers) ||
              (i > 0 && strcmp(mid_userdb_string(db, db->groups[i - 1].name),
                               mid_userdb_string(db, g->name)) >= 0);
    for (uint32_t m = 0; !bad && m < g->nmembers; ++m) bad = db->ids[g->members + m] >= db->nusers;
    uint32_t at = db->groups_by_gid[i];
    bad = bad || at >= db->ngroups ||
          (i > 0 && db->groups[db->groups_by_gid[i - 1]].gid >= db->groups[at].gid);
    if (bad) {
      memset(db, 0, sizeof *db);
      return MID_USERDB_E_LAYOUT;
    }
  }
  for (uint32_t i = 0; i < db->nretired; ++i) {
    if (db->retired[i].name >= db->strings_size ||
        (i > 0 && db->retired[i - 1].uid >= db->retired[i].uid)) {
      memset(db, 0, sizeof *db);
      return MID_USERDB_E_LAYOUT;
    }
  }
  for (uint32_t i = 0; i < db->ntaken; ++i) {
    if (db->taken[i].kind < MID_USERDB_TAKEN_USER || db->taken[i].kind > MID_USERDB_TAKEN_OTHER ||
        (i > 0 && db->taken[i - 1].id >= db->taken[i].id)) {
      memset(db, 0, sizeof *db);
      return MID_USERDB_E_LAYOUT;
    }
  }
  return MID_USERDB_OK;
}

/* The user named `name` (in a version 1 file possibly pending), or NULL:
 * binary search. */
static inline const struct mid_userdb_user* mid_userdb_user_by_name(const struct mid_userdb* db,
                                                                    const char* name) {
  uint32_t lo = 0, hi = db->nusers;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, mid_userdb_string(db, db->users[mid].name));
    if (c == 0) return &db->users[mid];
    if (c < 0) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return NULL;
}

/* The user with `uid` (in a version 1 file possibly pending), or NULL. */
static inline const struct mid_userdb_user* mid_userdb_user_by_uid(const struct mid_userdb* db,
                                                                   uint32_t uid) {
  uint32_t lo = 0, hi = db->nusers;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const struct mid_userdb_user* u = &db->users[db->users_by_uid[mid]];
    if (u->uid == uid) return u;
    if (uid < u->uid) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return NULL;
}

static inline const struct mid_userdb_group* mid_userdb_group_by_name(const struct mid_userdb* db,
                                                                      const char* name) {
  uint32_t lo = 0, hi = db->ngroups;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, mid_userdb_string(db, db->groups[mid].name));
    if (c == 0) return &db->groups[mid];
    if (c < 0) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return NULL;
}

static inline const struct mid_userdb_group* mid_userdb_group_by_gid(const struct mid_userdb* db,
                                                                     uint32_t gid) {
  uint32_t lo = 0, hi = db->ngroups;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const struct mid_userdb_group* g = &db->groups[db->groups_by_gid[mid]];
    if (g->gid == gid) return g;
    if (gid < g->gid) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return NULL;
}

/* ---- version 3 -------------------------------------------------------- */

/* A version 3 file: 4 GiB (a million host users take about 160 MiB). */
#define MID_USERDB_MAX_FILE_BYTES (4ull * 1024u * 1024u * 1024u)
/* One record, strings and gids included. */
#define MID_USERDB_MAX_RECORD 4096u
/* Slots per table: a power of two; the daemon keeps each table at most
 * half full (live and deleted slots), so a probe is short. */
#define MID_USERDB_MIN_SLOTS 64u
#define MID_USERDB_MAX_SLOTS (1u << 26)

/* What a record is. */
#define MID_USERDB_REC_USER 1u    /* a host user; its primary group has its name and uid */
#define MID_USERDB_REC_GROUP 2u   /* a group made for host_groups */
#define MID_USERDB_REC_RETIRED 3u /* a uid given once, to `name`, and never again */
#define MID_USERDB_REC_TAKEN 4u   /* an id not free for another reason (count: MID_USERDB_TAKEN_*) */

/* The offset of a deleted slot (a forgotten user's name). */
#define MID_USERDB_SLOT_DELETED 1u

#define MID_USERDB_TABLE_NAMES 1u
#define MID_USERDB_TABLE_IDS 2u

struct mid_userdb_header3 {
  char magic[8];
  uint64_t checksum; /* mid_userdb_checksum() of bytes [16, 64) */
  uint32_t version;  /* 3 */
  uint32_t byte_order;
  uint32_t nslots;   /* per table */
  uint32_t reserved; /* zero */
  uint64_t names;    /* offset of the name table: 64 */
  uint64_t ids;      /* offset of the id table: names + nslots * 16 */
  uint64_t heap;     /* offset of the first record: ids + nslots * 16 */
  uint64_t unused;   /* zero */
};

struct mid_userdb_slot {
  uint64_t offset; /* of its record; 0 (the whole slot zero): empty; MID_USERDB_SLOT_DELETED */
  uint32_t key;    /* names: the name's mid_userdb_name_hash() >> 32; ids: the id */
  uint32_t check;  /* mid_userdb_slot_check() */
};

struct mid_userdb_record {
  uint64_t checksum; /* mid_userdb_checksum() of bytes [8, length) */
  uint32_t length;   /* of the whole record: a multiple of 8, at most MID_USERDB_MAX_RECORD */
  uint32_t kind;     /* MID_USERDB_REC_* */
  uint32_t id;       /* uid or gid */
  uint32_t count;    /* users: how many supplementary gids; taken: MID_USERDB_TAKEN_*; else 0 */
  int64_t since;     /* unix seconds: when the id was taken (retired: when it was retired) */
  int64_t first_login, last_login; /* users (retired: first_login is when); else 0 */
  /* Then `count` uint32_t gids (users), then NUL-terminated strings (users:
   * name, gecos, home, shell, bot; groups and retired uids: name; taken: none),
   * then zeros up to `length`. */
};

MID_USERDB_STATIC_ASSERT(sizeof(struct mid_userdb_header3) == 64, "header3 layout");
MID_USERDB_STATIC_ASSERT(sizeof(struct mid_userdb_slot) == 16, "slot layout");
MID_USERDB_STATIC_ASSERT(sizeof(struct mid_userdb_record) == 48, "record layout");

/* One record, checked: pointers into the caller's buffer. */
struct mid_userdb_entry {
  uint32_t kind, id, count;
  int64_t since, first_login, last_login;
  uint32_t length;
  const unsigned char* gids; /* count of them, unaligned: mid_userdb_gid() */
  const char *name, *gecos, *home, *shell, *bot; /* "" where the kind has none */
};

static inline uint32_t mid_userdb_gid(const struct mid_userdb_entry* e, uint32_t i) {
  uint32_t gid;
  memcpy(&gid, e->gids + 4 * (size_t)i, sizeof gid);
  return gid;
}

static inline uint64_t mid_userdb_mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

/* Where a name goes in the name table: FNV-1a, then a finaliser. */
static inline uint64_t mid_userdb_name_hash(const char* name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char* p = (const unsigned char*)name; *p != '\0'; ++p)
    h = (h ^ *p) * 0x100000001b3ull;
  return mid_userdb_mix(h);
}

static inline uint64_t mid_userdb_id_hash(uint32_t id) {
  return mid_userdb_mix((uint64_t)id * 0x9e3779b97f4a7c15ull + 1);
}

/* The check of a slot at `index` of `table` holding (offset, key): never 0. */
static inline uint32_t mid_userdb_slot_check(uint32_t table, uint32_t index, uint64_t offset,
                                             uint32_t key) {
  unsigned char b[24];
  uint32_t t[2] = {table, index};
  uint32_t k[2] = {key, 0x6d696473u};
  memcpy(b, t, 8);
  memcpy(b + 8, &offset, 8);
  memcpy(b + 16, k, 8);
  uint32_t c = (uint32_t)mid_userdb_checksum(b, sizeof b);
  return c != 0 ? c : 1;
}

static inline struct mid_userdb_slot mid_userdb_make_slot(uint32_t table, uint32_t index,
                                                          uint64_t offset, uint32_t key) {
  struct mid_userdb_slot s;
  s.offset = offset;
  s.key = key;
  s.check = mid_userdb_slot_check(table, index, offset, key);
  return s;
}

static inline void mid_userdb_seal_header(struct mid_userdb_header3* h) {
  h->checksum = mid_userdb_checksum((const unsigned char*)h + 16, sizeof *h - 16);
}

/* Checks a version 3 header. */
static inline int mid_userdb_header3_check(const struct mid_userdb_header3* h) {
  if (memcmp(h->magic, MID_USERDB_MAGIC, sizeof h->magic) != 0) return MID_USERDB_E_MAGIC;
  if (h->version != MID_USERDB_VERSION || h->byte_order != MID_USERDB_BYTE_ORDER)
    return MID_USERDB_E_VERSION;
  if (mid_userdb_checksum((const unsigned char*)h + 16, sizeof *h - 16) != h->checksum)
    return MID_USERDB_E_CHECKSUM;
  if (h->nslots < MID_USERDB_MIN_SLOTS || h->nslots > MID_USERDB_MAX_SLOTS ||
      (h->nslots & (h->nslots - 1)) != 0 || h->reserved != 0 || h->unused != 0 ||
      h->names != sizeof *h || h->ids != h->names + (uint64_t)h->nslots * 16 ||
      h->heap != h->ids + (uint64_t)h->nslots * 16)
    return MID_USERDB_E_LAYOUT;
  return MID_USERDB_OK;
}

/* Checks slot `index` of `table` as read: 1 live, 0 empty, 2 deleted, or a
 * negative mid_userdb_error (a torn or corrupt slot). */
static inline int mid_userdb_slot_state(const struct mid_userdb_header3* h, uint32_t table,
                                        uint32_t index, const struct mid_userdb_slot* s) {
  if (s->offset == 0) return s->key == 0 && s->check == 0 ? 0 : MID_USERDB_E_CHECKSUM;
  if (s->check != mid_userdb_slot_check(table, index, s->offset, s->key))
    return MID_USERDB_E_CHECKSUM;
  if (s->offset == MID_USERDB_SLOT_DELETED) return table == MID_USERDB_TABLE_NAMES && s->key == 0 ? 2 : MID_USERDB_E_LAYOUT;
  if (s->offset < h->heap || s->offset % 8 != 0 || s->offset >= MID_USERDB_MAX_FILE_BYTES)
    return MID_USERDB_E_LAYOUT;
  return 1;
}

/* Takes the next NUL-terminated string of [*at, end). */
static inline const char* mid_userdb_take_string(const unsigned char** at,
                                                 const unsigned char* end) {
  const unsigned char* nul = *at < end ? (const unsigned char*)memchr(*at, 0, (size_t)(end - *at)) : NULL;
  if (nul == NULL) return NULL;
  const char* s = (const char*)*at;
  *at = nul + 1;
  return s;
}

/* Checks the record at the start of `data` (`avail` bytes readable, at any
 * alignment: it reads through memcpy) and fills `e` with pointers into it.
 * MID_USERDB_OK or an error. */
static inline int mid_userdb_record_check(const void* data, size_t avail,
                                          struct mid_userdb_entry* e) {
  const unsigned char* base = (const unsigned char*)data;
  struct mid_userdb_record r;
  memset(e, 0, sizeof *e);
  if (avail < sizeof r) return MID_USERDB_E_SIZE;
  memcpy(&r, base, sizeof r);
  if (r.length < sizeof r || r.length % 8 != 0 || r.length > MID_USERDB_MAX_RECORD) return MID_USERDB_E_LAYOUT;
  if (r.length > avail) return MID_USERDB_E_SIZE;
  if (mid_userdb_checksum(base + 8, r.length - 8) != r.checksum) return MID_USERDB_E_CHECKSUM;
  const unsigned char* end = base + r.length;
  const unsigned char* at = base + sizeof r;
  e->kind = r.kind;
  e->id = r.id;
  e->count = r.count;
  e->since = r.since;
  e->first_login = r.first_login;
  e->last_login = r.last_login;
  e->length = r.length;
  e->name = e->gecos = e->home = e->shell = e->bot = "";
  switch (r.kind) {
    case MID_USERDB_REC_USER:
      if (r.count > (r.length - sizeof r) / 4) return MID_USERDB_E_LAYOUT;
      e->gids = at;
      at += 4 * (size_t)r.count;
      if ((e->name = mid_userdb_take_string(&at, end)) == NULL ||
          (e->gecos = mid_userdb_take_string(&at, end)) == NULL ||
          (e->home = mid_userdb_take_string(&at, end)) == NULL ||
          (e->shell = mid_userdb_take_string(&at, end)) == NULL ||
          (e->bot = mid_userdb_take_string(&at, end)) == NULL)
        return MID_USERDB_E_LAYOUT;
      break;
    case MID_USERDB_REC_GROUP:
    case MID_USERDB_REC_RETIRED: /* first_login: when it was retired */
      if (r.count != 0 || (r.kind == MID_USERDB_REC_GROUP && r.first_login != 0) ||
          r.last_login != 0 ||
          (e->name = mid_userdb_take_string(&at, end)) == NULL)
        return MID_USERDB_E_LAYOUT;
      break;
    case MID_USERDB_REC_TAKEN:
      if (r.count < MID_USERDB_TAKEN_USER || r.count > MID_USERDB_TAKEN_OTHER ||
          r.first_login != 0 || r.last_login != 0)
        return MID_USERDB_E_LAYOUT;
      e->name = "";
      break;
    default:
      return MID_USERDB_E_LAYOUT;
  }
  if (r.kind != MID_USERDB_REC_TAKEN && !mid_userdb_valid_login(e->name)) return MID_USERDB_E_LAYOUT;
  for (; at < end; ++at)
    if (*at != 0) return MID_USERDB_E_LAYOUT;
  return MID_USERDB_OK;
}

/* ---- version 3 through a file descriptor (pread only, never a map) ---- */

/* Reads exactly `n` bytes at `offset`: MID_USERDB_OK, or MID_USERDB_E_SIZE
 * (errno set; EIO for a file shorter than that). */
static inline int mid_userdb_pread(int fd, void* buf, size_t n, uint64_t offset) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char*)buf + got, n - got, (off_t)(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;
      return MID_USERDB_E_SIZE;
    }
    got += (size_t)r;
  }
  return MID_USERDB_OK;
}

/* Reads and checks the header of a version 3 file. */
static inline int mid_userdb_read_header(int fd, struct mid_userdb_header3* h) {
  int rc = mid_userdb_pread(fd, h, sizeof *h, 0);
  return rc != MID_USERDB_OK ? rc : mid_userdb_header3_check(h);
}

/* Reads slot `index` of `table`: as mid_userdb_slot_state(). */
static inline int mid_userdb_read_slot(int fd, const struct mid_userdb_header3* h, uint32_t table,
                                       uint32_t index, struct mid_userdb_slot* s) {
  uint64_t at = (table == MID_USERDB_TABLE_NAMES ? h->names : h->ids) + (uint64_t)index * sizeof *s;
  int rc = mid_userdb_pread(fd, s, sizeof *s, at);
  return rc != MID_USERDB_OK ? rc : mid_userdb_slot_state(h, table, index, s);
}

/* Reads and checks the record at `offset` into `buf` (MID_USERDB_MAX_RECORD
 * bytes, 8-byte aligned). */
static inline int mid_userdb_read_record(int fd, uint64_t offset, void* buf,
                                         struct mid_userdb_entry* e) {
  size_t got = 0;
  while (got < MID_USERDB_MAX_RECORD) {
    ssize_t r = pread(fd, (char*)buf + got, MID_USERDB_MAX_RECORD - got, (off_t)(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return MID_USERDB_E_SIZE;
    if (r == 0) break;
    got += (size_t)r;
    if (got >= sizeof(struct mid_userdb_record)) {
      uint32_t length;
      memcpy(&length, (char*)buf + 8, sizeof length);
      if (length <= got) break;
    }
  }
  int rc = mid_userdb_record_check(buf, got, e);
  if (rc == MID_USERDB_E_SIZE) errno = EIO;
  return rc;
}

/* Looks up the user or made group named `name` (by_name) or the entry of
 * id `id` (any kind: the caller checks e->kind): 1 found, 0 absent, or a
 * negative mid_userdb_error (a torn read, a changed or corrupt file, I/O:
 * worth one more try, never an answer). At most one slot per probe step
 * and one record per slot whose key matches are read. */
static inline int mid_userdb_find(int fd, const struct mid_userdb_header3* h, int by_name,
                                  const char* name, uint32_t id, void* buf,
                                  struct mid_userdb_entry* e) {
  uint64_t hash = by_name ? mid_userdb_name_hash(name) : mid_userdb_id_hash(id);
  uint32_t key = by_name ? (uint32_t)(hash >> 32) : id;
  uint32_t table = by_name ? MID_USERDB_TABLE_NAMES : MID_USERDB_TABLE_IDS;
  uint32_t mask = h->nslots - 1;
  for (uint32_t i = 0; i < h->nslots; ++i) {
    uint32_t at = (uint32_t)(hash + i) & mask;
    struct mid_userdb_slot s;
    int rc = mid_userdb_read_slot(fd, h, table, at, &s);
    if (rc < 0) return rc;
    if (rc == 0) return 0;
    if (rc == 2 || s.key != key) continue;
    if ((rc = mid_userdb_read_record(fd, s.offset, buf, e)) != MID_USERDB_OK) return rc;
    if (by_name) {
      if ((e->kind == MID_USERDB_REC_USER || e->kind == MID_USERDB_REC_GROUP) &&
          strcmp(e->name, name) == 0)
        return 1;
    } else if (e->id == id) {
      return 1;
    }
  }
  return 0;
}

#endif /* MACHINEID_USERDB_FORMAT_H */
