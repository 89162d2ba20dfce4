/* users.db, the host-user database: machineid-verifierd writes it (userdb.h)
 * and libnss_machineid reads it. Plain C that also compiles as C++, so the
 * NSS module reads it without any C++ runtime and the daemon, its tests and
 * the fuzzer read it through the very same checks.
 *
 * Layout, every number in host byte order (the file never leaves the machine
 * that wrote it), every section 8-byte aligned:
 *
 *   header         struct mid_userdb_header
 *   users          struct mid_userdb_user[], host users, sorted by name
 *                  (strcmp), names unique
 *   users_by_uid   uint32_t[], indices into users, sorted by uid, uids unique
 *   groups         struct mid_userdb_group[], groups machineid made for
 *                  host_groups, sorted by name
 *   groups_by_gid  uint32_t[], indices into groups, sorted by gid
 *   retired        struct mid_userdb_retired[], uids given once and never
 *                  again, sorted by uid
 *   ids            uint32_t[], slices: a user's supplementary gids, a
 *                  group's members (indices into users)
 *   strings        NUL-terminated strings; offset 0 holds ""
 *   taken          struct mid_userdb_taken[], every id of the range that is
 *                  not free, sorted by id, with when it stopped being free
 *                  (version 2)
 *
 * Version 1 had no `taken` section (its header ends before it) and could
 * hold pending users (MID_USERDB_PENDING), reserved before authentication;
 * it is still read, pending users are no users, and the daemon rewrites it
 * as version 2 on its next change.
 *
 * The checksum covers every byte after it. mid_userdb_open() checks all of
 * the above once, so that lookups afterwards need no bounds checks; a file
 * that fails any check is not used at all. */
#ifndef MACHINEID_USERDB_FORMAT_H
#define MACHINEID_USERDB_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
#define MID_USERDB_STATIC_ASSERT static_assert
#else
#define MID_USERDB_STATIC_ASSERT _Static_assert
#endif

#define MID_USERDB_MAGIC "MIDUSRDB" /* 8 bytes, no NUL */
#define MID_USERDB_VERSION 2u
/* The oldest version still read. */
#define MID_USERDB_VERSION_MIN 1u
#define MID_USERDB_BYTE_ORDER 0x01020304u
/* Far above any real node (100 000 host users take about 12 MiB), and small
 * enough that every offset and count fits in 32 bits. */
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

/* Checks every byte of `data` (8-byte aligned, `size` bytes) and fills `db`.
 * Returns MID_USERDB_OK, or a mid_userdb_error and leaves `db` unusable. */
static inline int mid_userdb_open(struct mid_userdb* db, const void* data, size_t size) {
  const unsigned char* base = (const unsigned char*)data;
  const struct mid_userdb_header* h = (const struct mid_userdb_header*)data;
  struct mid_userdb_section taken = {0, 0};
  size_t header_size;
  memset(db, 0, sizeof *db);
  if (size < MID_USERDB_HEADER_V1_SIZE || size > MID_USERDB_MAX_BYTES) return MID_USERDB_E_SIZE;
  if (memcmp(h->magic, MID_USERDB_MAGIC, sizeof h->magic) != 0) return MID_USERDB_E_MAGIC;
  if (h->version < MID_USERDB_VERSION_MIN || h->version > MID_USERDB_VERSION ||
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

#endif /* MACHINEID_USERDB_FORMAT_H */
