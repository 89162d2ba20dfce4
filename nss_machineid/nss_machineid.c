/* libnss_machineid.so.2: passwd, group and initgroups for the host users
 * machineid-verifierd keeps in users.db (SPEC §6).
 *
 * Every lookup reads a private, checked copy of the database, read again
 * when the file at its path changes (the daemon replaces it atomically).
 * A copy, not a shared map: a file changed in place (a restore with `cat
 * backup > users.db`, a truncation) can then never fault a lookup (SIGBUS)
 * or show it half-written bytes; the copy taken while it changed fails its
 * checks and is refused. The only question ever
 * put to the daemon is sshd's: getpwnam of a name the database does not
 * know, asked by the sshd process itself as root, which the daemon answers
 * with a provisional entry it computes without storing anything (ask.c, at
 * most MID_ASK_DEADLINE_MS). Every other process — root's useradd or chown,
 * a setuid program, a user's ls — sees only the accounts in users.db and
 * never waits on the daemon. A daemon that is down costs nothing but new
 * host users: existing ones still resolve and unknown names are NOTFOUND at
 * once.
 *
 * The module is meant to be the last source on the passwd: and group:
 * lines, so it is asked only for what no other source knows.
 *
 * Every entry point has one shape: keep errno, look up, pack into the
 * caller's buffer (its size computed first: ERANGE -> NSS_STATUS_TRYAGAIN),
 * and set *errnop for every status but SUCCESS. No allocation outlives a
 * call but the shared map and initgroups' array, which the caller owns. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ask.h"
#include "machineid/userdb_format.h"

#define MID_EXPORT __attribute__((visibility("default")))

#define MID_DEFAULT_DB "/var/lib/machineid/users.db"
#define MID_DEFAULT_SOCKET "/run/machineid/verifierd.sock"
/* secure_getenv: a setuid program never takes them from its caller. */
#define MID_ENV_DB "MACHINEID_NSS_DB"
#define MID_ENV_SOCKET "MACHINEID_NSS_SOCKET"
/* Set in the daemon itself: the module answers nothing in that process, so
 * the daemon's lookups see exactly the other sources and never ask itself
 * (the recursion guard; ask.c also refuses to ask its own process). */
#define MID_ENV_BYPASS "MACHINEID_NSS_BYPASS_DAEMON"
/* The executables that are sshd: the only processes that get provisional
 * entries. A colon-separated list of absolute paths in MID_ENV_SSHD (read
 * with secure_getenv, so a setuid program never takes it from its caller)
 * replaces the defaults; tests point it at the program they run. */
#define MID_DEFAULT_SSHD "/usr/sbin/sshd:/usr/lib/openssh/sshd-session"
#define MID_ENV_SSHD "MACHINEID_NSS_SSHD"

/* ---- the mapped database ---------------------------------------------- */

/* A mapped and checked users.db. References: the `current` slot's and one
 * per lookup or enumeration using it; the last one unmaps it. */
struct map {
  void* addr;
  size_t size;
  dev_t dev;
  ino_t ino;
  struct timespec mtime;
  unsigned refs;
  struct mid_userdb db;
};

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static struct map* current; /* the file at the path, as last mapped */
/* The last file found unusable, so it is not re-checked on every lookup. */
static struct stat refused;
static int refused_errno; /* 0: none */

enum acquired { MAP_OK, MAP_ABSENT, MAP_ERROR };

static const char* db_path(void) {
  const char* p = secure_getenv(MID_ENV_DB);
  return p != NULL && *p != '\0' ? p : MID_DEFAULT_DB;
}

static int same_file(const struct stat* a, dev_t dev, ino_t ino, off_t size,
                     struct timespec mtime) {
  return a->st_dev == dev && a->st_ino == ino && a->st_size == size &&
         a->st_mtim.tv_sec == mtime.tv_sec && a->st_mtim.tv_nsec == mtime.tv_nsec;
}

/* map_lock held. */
static void unref(struct map* m) {
  if (m != NULL && --m->refs == 0) {
    free(m->addr);
    free(m);
  }
}

/* The checked map of the file open on `fd`, or NULL with *err set. */
static struct map* map_file(int fd, const struct stat* st, int* err) {
  if (st->st_size < (off_t)sizeof(struct mid_userdb_header) ||
      (uint64_t)st->st_size > MID_USERDB_MAX_BYTES) {
    *err = EIO;
    return NULL;
  }
  size_t size = (size_t)st->st_size;
  char* addr = malloc(size);
  if (addr == NULL) {
    *err = ENOMEM;
    return NULL;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(fd, addr + got, size - got, (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { /* shrunk while read: refused now, read again next time */
      *err = n < 0 ? errno : EIO;
      free(addr);
      return NULL;
    }
    got += (size_t)n;
  }
  struct map* m = malloc(sizeof *m);
  if (m == NULL || mid_userdb_open(&m->db, addr, size) != MID_USERDB_OK) {
    *err = m == NULL ? ENOMEM : EIO;
    free(addr);
    free(m);
    return NULL;
  }
  m->addr = addr;
  m->size = size;
  m->dev = st->st_dev;
  m->ino = st->st_ino;
  m->mtime = st->st_mtim;
  m->refs = 1;
  return m;
}

/* A reference to the map of the database as it is now (MAP_OK), or no
 * database (MAP_ABSENT: no host users), or MAP_ERROR with *err: a file that
 * cannot be read or fails its checks is never served, not even from an
 * older map. */
static enum acquired acquire(struct map** out, int* err) {
  const char* path = db_path();
  struct stat st;
  int absent = stat(path, &st) != 0;
  if (absent && errno != ENOENT) {
    *err = errno;
    return MAP_ERROR;
  }
  enum acquired result = MAP_OK;
  pthread_mutex_lock(&map_lock);
  if (absent) {
    unref(current);
    current = NULL;
    result = MAP_ABSENT;
  } else if (current == NULL ||
             !same_file(&st, current->dev, current->ino, current->size, current->mtime)) {
    unref(current);
    current = NULL;
    if (refused_errno != 0 &&
        same_file(&st, refused.st_dev, refused.st_ino, refused.st_size, refused.st_mtim)) {
      *err = refused_errno;
      result = MAP_ERROR;
    } else {
      int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
      struct stat opened;
      if (fd < 0 || fstat(fd, &opened) != 0) {
        result = errno == ENOENT ? MAP_ABSENT : MAP_ERROR;
        *err = errno;
      } else if ((current = map_file(fd, &opened, err)) == NULL) {
        refused = opened;
        refused_errno = *err;
        result = MAP_ERROR;
      }
      if (fd >= 0) close(fd);
    }
  }
  if (result == MAP_OK) {
    current->refs++;
    *out = current;
  }
  pthread_mutex_unlock(&map_lock);
  return result;
}

static void release(struct map* m) {
  pthread_mutex_lock(&map_lock);
  unref(m);
  pthread_mutex_unlock(&map_lock);
}

static const struct mid_userdb_user* active(const struct mid_userdb_user* u) {
  return u != NULL && (u->flags & MID_USERDB_PENDING) == 0 ? u : NULL;
}

/* Whether this process is the daemon (or another that asked to see only
 * the other sources). */
static int bypassed(void) { return secure_getenv(MID_ENV_BYPASS) != NULL; }

/* ---- packing into the caller's buffer --------------------------------- */

struct str {
  const char* s;
  size_t n;
};

static struct str cstr(const char* s) { return (struct str){s, strlen(s)}; }

static char* put(char** at, struct str v) {
  char* out = *at;
  memcpy(out, v.s, v.n);
  out[v.n] = '\0';
  *at += v.n + 1;
  return out;
}

static enum nss_status too_small(int* e) {
  *e = ERANGE;
  return NSS_STATUS_TRYAGAIN;
}

static enum nss_status not_found(int* e) {
  *e = ENOENT;
  return NSS_STATUS_NOTFOUND;
}

static enum nss_status fill_passwd(struct passwd* pwd, char* buf, size_t buflen, int* e,
                                   struct str name, uint32_t uid, struct str gecos, struct str home,
                                   struct str shell) {
  struct str password = cstr("*"); /* no password: host users log in with certificates */
  if (name.n + gecos.n + home.n + shell.n + password.n + 5 > buflen) return too_small(e);
  char* at = buf;
  pwd->pw_name = put(&at, name);
  pwd->pw_passwd = put(&at, password);
  pwd->pw_gecos = put(&at, gecos);
  pwd->pw_dir = put(&at, home);
  pwd->pw_shell = put(&at, shell);
  pwd->pw_uid = uid;
  pwd->pw_gid = uid; /* the primary group has the user's id */
  return NSS_STATUS_SUCCESS;
}

static enum nss_status fill_user(const struct mid_userdb* db, const struct mid_userdb_user* u,
                                 struct passwd* pwd, char* buf, size_t buflen, int* e) {
  return fill_passwd(pwd, buf, buflen, e, cstr(mid_userdb_string(db, u->name)), u->uid,
                     cstr(mid_userdb_string(db, u->gecos)), cstr(mid_userdb_string(db, u->home)),
                     cstr(mid_userdb_string(db, u->shell)));
}

/* A group named `name` with `gid` whose members are the active users among
 * users[members[0..n)]. */
static enum nss_status fill_group(const struct mid_userdb* db, const char* name, uint32_t gid,
                                  const uint32_t* members, uint32_t n, struct group* grp, char* buf,
                                  size_t buflen, int* e) {
  size_t pad = (sizeof(char*) - (uintptr_t)buf % sizeof(char*)) % sizeof(char*);
  size_t count = 0, need = pad + strlen(name) + 1 + 2;
  for (uint32_t i = 0; i < n; ++i) {
    const struct mid_userdb_user* u = active(&db->users[members[i]]);
    if (u != NULL) {
      ++count;
      need += strlen(mid_userdb_string(db, u->name)) + 1;
    }
  }
  need += (count + 1) * sizeof(char*);
  if (need > buflen) return too_small(e);
  char** mem = (char**)(void*)(buf + pad);
  char* at = (char*)(mem + count + 1);
  size_t k = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const struct mid_userdb_user* u = active(&db->users[members[i]]);
    if (u != NULL) mem[k++] = put(&at, cstr(mid_userdb_string(db, u->name)));
  }
  mem[k] = NULL;
  grp->gr_name = put(&at, cstr(name));
  grp->gr_passwd = put(&at, cstr("*"));
  grp->gr_gid = gid;
  grp->gr_mem = mem;
  return NSS_STATUS_SUCCESS;
}

static enum nss_status fill_primary_group(const struct mid_userdb* db,
                                          const struct mid_userdb_user* u, struct group* grp,
                                          char* buf, size_t buflen, int* e) {
  return fill_group(db, mid_userdb_string(db, u->name), u->uid, NULL, 0, grp, buf, buflen, e);
}

static enum nss_status fill_extra_group(const struct mid_userdb* db,
                                        const struct mid_userdb_group* g, struct group* grp,
                                        char* buf, size_t buflen, int* e) {
  return fill_group(db, mid_userdb_string(db, g->name), g->gid, db->ids + g->members, g->nmembers,
                    grp, buf, buflen, e);
}

/* Maps the database for an entry point: 1, or 0 with *status saying why not
 * (UNAVAIL for an unreadable or corrupt file, NOTFOUND when there is none). */
static int open_db(struct map** m, int* e, enum nss_status* status) {
  if (bypassed()) {
    *status = not_found(e);
    return 0;
  }
  switch (acquire(m, e)) {
    case MAP_OK:
      return 1;
    case MAP_ABSENT:
      *status = not_found(e);
      return 0;
    case MAP_ERROR:
      break;
  }
  *status = NSS_STATUS_UNAVAIL;
  return 0;
}

/* errno as the caller left it; *errnop for every status but success. */
static enum nss_status finish(enum nss_status status, int saved_errno, int e, int* errnop) {
  errno = saved_errno;
  if (status != NSS_STATUS_SUCCESS) *errnop = e;
  return status;
}

/* ---- passwd ------------------------------------------------------------ */

/* Whether the calling process is sshd itself, as root: real and effective
 * uid 0 (a setuid program keeps its caller's real uid) and an executable
 * that is one of the sshd paths. Both are the kernel's facts about this
 * process, which no caller of a setuid program can change: its
 * /proc/self/exe names the setuid program, never sshd. */
static int called_by_sshd(void) {
  if (getuid() != 0 || geteuid() != 0) return 0;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0 || (size_t)n >= sizeof exe - 1) return 0;
  exe[n] = '\0';
  const char* list = secure_getenv(MID_ENV_SSHD);
  if (list == NULL || *list == '\0') list = MID_DEFAULT_SSHD;
  for (const char* at = list; *at != '\0';) {
    const char* end = strchr(at, ':');
    size_t len = end != NULL ? (size_t)(end - at) : strlen(at);
    if (len == (size_t)n && at[0] == '/' && memcmp(at, exe, len) == 0) return 1;
    at += len;
    if (*at == ':') ++at;
  }
  return 0;
}

/* sshd's lookup before authentication: the daemon answers a provisional
 * entry and stores nothing. Nobody else ever asks. */
static enum nss_status ask_daemon(const char* name, struct passwd* pwd, char* buf, size_t buflen,
                                  int* e) {
  if (!mid_userdb_valid_login(name) || !called_by_sshd()) return not_found(e);
  const char* socket = secure_getenv(MID_ENV_SOCKET);
  unsigned char reply[MID_MAX_REPLY_BYTES];
  struct mid_host_user_reply r;
  if (mid_ask_provisional(socket != NULL && *socket != '\0' ? socket : MID_DEFAULT_SOCKET, name,
                          reply, &r) != 0)
    return not_found(e);
  return fill_passwd(pwd, buf, buflen, e, (struct str){r.name.data, r.name.size}, r.uid,
                     (struct str){r.gecos.data, r.gecos.size},
                     (struct str){r.home.data, r.home.size},
                     (struct str){r.shell.data, r.shell.size});
}

static enum nss_status passwd_by_name(const char* name, struct passwd* pwd, char* buf,
                                      size_t buflen, int* e) {
  struct map* m;
  if (bypassed()) return not_found(e);
  switch (acquire(&m, e)) {
    case MAP_ERROR:
      return NSS_STATUS_UNAVAIL;
    case MAP_ABSENT:
      return ask_daemon(name, pwd, buf, buflen, e);
    case MAP_OK:
      break;
  }
  const struct mid_userdb_user* u = active(mid_userdb_user_by_name(&m->db, name));
  enum nss_status status =
      u != NULL ? fill_user(&m->db, u, pwd, buf, buflen, e) : NSS_STATUS_NOTFOUND;
  release(m);
  return u != NULL ? status : ask_daemon(name, pwd, buf, buflen, e);
}

MID_EXPORT enum nss_status _nss_machineid_getpwnam_r(const char* name, struct passwd* pwd,
                                                     char* buf, size_t buflen, int* errnop) {
  int saved = errno, e = 0;
  enum nss_status status = passwd_by_name(name, pwd, buf, buflen, &e);
  return finish(status, saved, e, errnop);
}

MID_EXPORT enum nss_status _nss_machineid_getpwuid_r(uid_t uid, struct passwd* pwd, char* buf,
                                                     size_t buflen, int* errnop) {
  int saved = errno, e = 0;
  struct map* m;
  enum nss_status status;
  if (!open_db(&m, &e, &status)) return finish(status, saved, e, errnop);
  const struct mid_userdb_user* u = active(mid_userdb_user_by_uid(&m->db, uid));
  status = u != NULL ? fill_user(&m->db, u, pwd, buf, buflen, &e) : not_found(&e);
  release(m);
  return finish(status, saved, e, errnop);
}

/* ---- group ------------------------------------------------------------- */

MID_EXPORT enum nss_status _nss_machineid_getgrnam_r(const char* name, struct group* grp, char* buf,
                                                     size_t buflen, int* errnop) {
  int saved = errno, e = 0;
  struct map* m;
  enum nss_status status;
  if (!open_db(&m, &e, &status)) return finish(status, saved, e, errnop);
  const struct mid_userdb_user* u = active(mid_userdb_user_by_name(&m->db, name));
  const struct mid_userdb_group* g = u == NULL ? mid_userdb_group_by_name(&m->db, name) : NULL;
  status = u != NULL   ? fill_primary_group(&m->db, u, grp, buf, buflen, &e)
           : g != NULL ? fill_extra_group(&m->db, g, grp, buf, buflen, &e)
                       : not_found(&e);
  release(m);
  return finish(status, saved, e, errnop);
}

MID_EXPORT enum nss_status _nss_machineid_getgrgid_r(gid_t gid, struct group* grp, char* buf,
                                                     size_t buflen, int* errnop) {
  int saved = errno, e = 0;
  struct map* m;
  enum nss_status status;
  if (!open_db(&m, &e, &status)) return finish(status, saved, e, errnop);
  const struct mid_userdb_user* u = active(mid_userdb_user_by_uid(&m->db, gid));
  const struct mid_userdb_group* g = u == NULL ? mid_userdb_group_by_gid(&m->db, gid) : NULL;
  status = u != NULL   ? fill_primary_group(&m->db, u, grp, buf, buflen, &e)
           : g != NULL ? fill_extra_group(&m->db, g, grp, buf, buflen, &e)
                       : not_found(&e);
  release(m);
  return finish(status, saved, e, errnop);
}

/* ---- enumeration ------------------------------------------------------- */

/* One enumeration: the map it started on (kept while it runs, so lookups
 * and re-maps in between do not disturb it) and the next record. */
struct cursor {
  int open;
  struct map* map; /* NULL: the database was absent */
  uint32_t next;
};

static pthread_mutex_t ent_lock =
    PTHREAD_MUTEX_INITIALIZER; /* taken before map_lock, never after */
static struct cursor pwent, grent;

/* A fork while another thread holds a lock would leave the child's copy
 * locked for good: take both across fork, as glibc does with its own. */
static void fork_prepare(void) {
  pthread_mutex_lock(&ent_lock);
  pthread_mutex_lock(&map_lock);
}

static void fork_done(void) {
  pthread_mutex_unlock(&map_lock);
  pthread_mutex_unlock(&ent_lock);
}

__attribute__((constructor)) static void register_fork_handlers(void) {
  pthread_atfork(fork_prepare, fork_done, fork_done);
}

static void cursor_close(struct cursor* c) {
  if (c->map != NULL) release(c->map);
  c->open = 0;
  c->map = NULL;
  c->next = 0;
}

/* ent_lock held. SUCCESS once the cursor is open. */
static enum nss_status cursor_open(struct cursor* c, int* e) {
  if (c->open) return NSS_STATUS_SUCCESS;
  if (bypassed()) {
    c->map = NULL;
    c->open = 1;
    c->next = 0;
    return NSS_STATUS_SUCCESS;
  }
  switch (acquire(&c->map, e)) {
    case MAP_ERROR:
      c->map = NULL;
      return NSS_STATUS_UNAVAIL;
    case MAP_ABSENT:
      c->map = NULL;
      break;
    case MAP_OK:
      break;
  }
  c->open = 1;
  c->next = 0;
  return NSS_STATUS_SUCCESS;
}

static enum nss_status set_ent(struct cursor* c) {
  int saved = errno;
  pthread_mutex_lock(&ent_lock);
  cursor_close(c);
  pthread_mutex_unlock(&ent_lock);
  errno = saved;
  return NSS_STATUS_SUCCESS;
}

MID_EXPORT enum nss_status _nss_machineid_setpwent(int stayopen) {
  (void)stayopen;
  return set_ent(&pwent);
}

MID_EXPORT enum nss_status _nss_machineid_endpwent(void) { return set_ent(&pwent); }

MID_EXPORT enum nss_status _nss_machineid_getpwent_r(struct passwd* pwd, char* buf, size_t buflen,
                                                     int* errnop) {
  int saved = errno, e = 0;
  pthread_mutex_lock(&ent_lock);
  enum nss_status status = cursor_open(&pwent, &e);
  if (status == NSS_STATUS_SUCCESS) {
    const struct mid_userdb* db = pwent.map != NULL ? &pwent.map->db : NULL;
    while (db != NULL && pwent.next < db->nusers && active(&db->users[pwent.next]) == NULL)
      ++pwent.next;
    if (db == NULL || pwent.next >= db->nusers) {
      status = not_found(&e);
    } else if ((status = fill_user(db, &db->users[pwent.next], pwd, buf, buflen, &e)) ==
               NSS_STATUS_SUCCESS) {
      ++pwent.next; /* not after ERANGE: the caller retries this entry */
    }
  }
  pthread_mutex_unlock(&ent_lock);
  return finish(status, saved, e, errnop);
}

MID_EXPORT enum nss_status _nss_machineid_setgrent(int stayopen) {
  (void)stayopen;
  return set_ent(&grent);
}

MID_EXPORT enum nss_status _nss_machineid_endgrent(void) { return set_ent(&grent); }

/* Every active user's primary group, then the groups made for host_groups. */
MID_EXPORT enum nss_status _nss_machineid_getgrent_r(struct group* grp, char* buf, size_t buflen,
                                                     int* errnop) {
  int saved = errno, e = 0;
  pthread_mutex_lock(&ent_lock);
  enum nss_status status = cursor_open(&grent, &e);
  if (status == NSS_STATUS_SUCCESS) {
    const struct mid_userdb* db = grent.map != NULL ? &grent.map->db : NULL;
    while (db != NULL && grent.next < db->nusers && active(&db->users[grent.next]) == NULL)
      ++grent.next;
    if (db == NULL || grent.next >= (uint64_t)db->nusers + db->ngroups) {
      status = not_found(&e);
    } else {
      status =
          grent.next < db->nusers
              ? fill_primary_group(db, &db->users[grent.next], grp, buf, buflen, &e)
              : fill_extra_group(db, &db->groups[grent.next - db->nusers], grp, buf, buflen, &e);
      if (status == NSS_STATUS_SUCCESS) ++grent.next;
    }
  }
  pthread_mutex_unlock(&ent_lock);
  return finish(status, saved, e, errnop);
}

/* ---- initgroups -------------------------------------------------------- */

/* Appends the host user's supplementary gids to the caller's array, growing
 * it (never past `limit` when positive), skipping `group` and gids already
 * there. */
MID_EXPORT enum nss_status _nss_machineid_initgroups_dyn(const char* user, gid_t group,
                                                         long int* start, long int* size,
                                                         gid_t** groupsp, long int limit,
                                                         int* errnop) {
  int saved = errno, e = 0;
  struct map* m;
  enum nss_status status = NSS_STATUS_SUCCESS;
  if (!open_db(&m, &e, &status)) return finish(status, saved, e, errnop);
  const struct mid_userdb_user* u = active(mid_userdb_user_by_name(&m->db, user));
  if (u == NULL) status = not_found(&e);
  for (uint32_t i = 0; u != NULL && i < u->ngids && status == NSS_STATUS_SUCCESS; ++i) {
    gid_t gid = m->db.ids[u->gids + i];
    long int j = 0;
    while (j < *start && (*groupsp)[j] != gid) ++j;
    if (gid == group || j < *start) continue;
    if (*start == *size) {
      if (limit > 0 && *size >= limit) break; /* full: the caller asked for no more */
      long int grown = *size > 0 ? *size * 2 : 8;
      if (limit > 0 && grown > limit) grown = limit;
      gid_t* larger = realloc(*groupsp, (size_t)grown * sizeof(gid_t));
      if (larger == NULL) {
        e = ENOMEM;
        status = NSS_STATUS_TRYAGAIN;
        break;
      }
      *groupsp = larger;
      *size = grown;
    }
    (*groupsp)[(*start)++] = gid;
  }
  release(m);
  return finish(status, saved, e, errnop);
}
