/* libnss_machineid.so.2: passwd, group and initgroups for the host users
 * machineid-verifierd keeps in users.db (SPEC §6).
 *
 * Every lookup opens the file and reads, with pread, only what it needs:
 * the header, the slots of its probe and the record one points at, each
 * checked on its own (userdb_format.h), so the first lookup in a fresh
 * process costs the same with ten host users or a million. No map: a file
 * changed in place (a restore with `cat backup > users.db`, a truncation)
 * can never fault a lookup (SIGBUS), and a slot or record caught
 * half-written fails its check and is read again, then refused (UNAVAIL),
 * never shown. Listing a made group's members and enumerating read every
 * record (O(n)). The only question ever
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
 * call but initgroups' array, which the caller owns. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
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

/* ---- the database, through pread ---------------------------------------- */

/* How often a lookup that caught a torn slot or record (or a file being
 * replaced) starts again before it gives up with UNAVAIL. */
#define MID_READ_TRIES 4

/* An open users.db and its checked header, shared by lookups while the
 * file at the path is the same (device, inode, size and mtime: the daemon's
 * in-place changes and replacements both move one), so a lookup costs a
 * stat and two preads. References: the cache's and one per lookup or
 * enumeration using it; the last one closes it. */
struct open_file {
  int fd;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  unsigned refs;
  struct mid_userdb_header3 h;
};

struct db {
  int fd; /* -1: none */
  struct mid_userdb_header3 h;
  struct open_file* file;
};

static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_file* cached;

/* A record's bytes: MID_USERDB_MAX_RECORD, 8-byte aligned. */
struct record_buf {
  uint64_t words[MID_USERDB_MAX_RECORD / 8];
};

static const char* db_path(void) {
  const char* p = secure_getenv(MID_ENV_DB);
  return p != NULL && *p != '\0' ? p : MID_DEFAULT_DB;
}

/* errno for a mid_userdb_error: the I/O error, or EIO for a bad file. */
static int error_errno(int rc) { return rc == MID_USERDB_E_SIZE && errno != 0 ? errno : EIO; }

/* file_lock held. */
static void unref(struct open_file* f) {
  if (f != NULL && --f->refs == 0) {
    close(f->fd);
    free(f);
  }
}

static int same(const struct open_file* f, const struct stat* st) {
  return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
         f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Opens the database and checks its header: 1, 0 when there is none, -1
 * with *e. */
static int db_open(struct db* d, int* e) {
  struct stat st;
  d->fd = -1;
  d->file = NULL;
  if (stat(db_path(), &st) != 0) {
    if (errno == ENOENT) return 0;
    *e = errno;
    return -1;
  }
  pthread_mutex_lock(&file_lock);
  struct open_file* f = cached;
  if (f == NULL || !same(f, &st)) {
    f = NULL;
    int fd = open(db_path(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat opened;
    if (fd < 0 || fstat(fd, &opened) != 0) {
      int err = errno;
      if (fd >= 0) close(fd);
      pthread_mutex_unlock(&file_lock);
      if (err == ENOENT) return 0;
      *e = err;
      return -1;
    }
    struct mid_userdb_header3 h;
    errno = 0;
    int rc = mid_userdb_read_header(fd, &h);
    if (rc != MID_USERDB_OK || (f = malloc(sizeof *f)) == NULL) {
      *e = rc != MID_USERDB_OK ? error_errno(rc) : ENOMEM;
      close(fd);
      pthread_mutex_unlock(&file_lock);
      return -1;
    }
    f->fd = fd;
    f->dev = opened.st_dev;
    f->ino = opened.st_ino;
    f->size = opened.st_size;
    f->mtime = opened.st_mtim;
    f->refs = 1;
    f->h = h;
    unref(cached);
    cached = f;
  }
  f->refs++;
  pthread_mutex_unlock(&file_lock);
  d->file = f;
  d->fd = f->fd;
  d->h = f->h;
  return 1;
}

static void db_close(struct db* d) {
  if (d->file != NULL) {
    pthread_mutex_lock(&file_lock);
    unref(d->file);
    pthread_mutex_unlock(&file_lock);
  }
  d->file = NULL;
  d->fd = -1;
}

/* Looks `name` (by_name) or `id` up, trying again after a torn read: 1
 * found (d open: the caller closes it), 0 not found or no database, -1
 * with *e. */
static int find(int by_name, const char* name, uint32_t id, struct db* d, struct record_buf* buf,
                struct mid_userdb_entry* out, int* e) {
  for (int attempt = 1;; ++attempt) {
    int rc = db_open(d, e);
    if (rc == 1) {
      errno = 0;
      rc = mid_userdb_find(d->fd, &d->h, by_name, name, id, buf, out);
      if (rc == 1) return 1;
      db_close(d);
      if (rc == 0) return 0;
      *e = error_errno(rc);
      rc = -1;
    }
    if (rc == 0) return 0;
    if (attempt >= MID_READ_TRIES || *e != EIO) return -1;
    sched_yield();
  }
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

static enum nss_status fill_user(const struct mid_userdb_entry* u, struct passwd* pwd, char* buf,
                                 size_t buflen, int* e) {
  return fill_passwd(pwd, buf, buflen, e, cstr(u->name), u->id, cstr(u->gecos), cstr(u->home),
                     cstr(u->shell));
}

static int by_string(const void* a, const void* b) {
  return strcmp(*(char* const*)a, *(char* const*)b);
}

/* A group named `name` with `gid` whose members are the `n` names packed
 * one after another in `names` (`names_bytes` with their NULs), sorted. */
static enum nss_status fill_group(const char* name, uint32_t gid, const char* names, size_t n,
                                  size_t names_bytes, struct group* grp, char* buf, size_t buflen,
                                  int* e) {
  size_t pad = (sizeof(char*) - (uintptr_t)buf % sizeof(char*)) % sizeof(char*);
  size_t need = pad + strlen(name) + 1 + 2 + names_bytes + (n + 1) * sizeof(char*);
  if (need > buflen) return too_small(e);
  char** mem = (char**)(void*)(buf + pad);
  char* at = (char*)(mem + n + 1);
  const char* from = names;
  for (size_t i = 0; i < n; ++i) {
    struct str m = cstr(from);
    mem[i] = put(&at, m);
    from += m.n + 1;
  }
  mem[n] = NULL;
  qsort(mem, n, sizeof *mem, by_string);
  grp->gr_name = put(&at, cstr(name));
  grp->gr_passwd = put(&at, cstr("*"));
  grp->gr_gid = gid;
  grp->gr_mem = mem;
  return NSS_STATUS_SUCCESS;
}

/* The names of the host users whose supplementary gids hold `gid`, packed
 * into a malloc'd buffer: every record is read (O(n)). 0, or -1 with *e. */
static int members_of(const struct db* d, uint32_t gid, char** names, size_t* n, size_t* bytes,
                      int* e) {
  struct record_buf buf;
  size_t cap = 0;
  *names = NULL;
  *n = *bytes = 0;
  for (uint32_t i = 0; i < d->h.nslots; ++i) {
    struct mid_userdb_slot s;
    struct mid_userdb_entry u;
    errno = 0;
    int rc = mid_userdb_read_slot(d->fd, &d->h, MID_USERDB_TABLE_IDS, i, &s);
    if (rc == 1) rc = mid_userdb_read_record(d->fd, s.offset, &buf, &u);
    else if (rc >= 0) continue;
    if (rc != MID_USERDB_OK) {
      *e = error_errno(rc);
      free(*names);
      *names = NULL;
      return -1;
    }
    if (u.kind != MID_USERDB_REC_USER) continue;
    uint32_t k = 0;
    while (k < u.count && mid_userdb_gid(&u, k) != gid) ++k;
    if (k == u.count) continue;
    size_t len = strlen(u.name) + 1;
    if (*bytes + len > cap) {
      size_t grown = cap > 0 ? cap * 2 : 256;
      while (grown < *bytes + len) grown *= 2;
      char* larger = realloc(*names, grown);
      if (larger == NULL) {
        *e = ENOMEM;
        free(*names);
        *names = NULL;
        return -1;
      }
      *names = larger;
      cap = grown;
    }
    memcpy(*names + *bytes, u.name, len);
    *bytes += len;
    ++*n;
  }
  return 0;
}

/* The group of entry `g`: a user's primary group, or a made group with its
 * members. */
static enum nss_status fill_entry_group(const struct db* d, const struct mid_userdb_entry* g,
                                        struct group* grp, char* buf, size_t buflen, int* e) {
  if (g->kind == MID_USERDB_REC_USER) return fill_group(g->name, g->id, "", 0, 0, grp, buf, buflen, e);
  char* names;
  size_t n, bytes;
  if (members_of(d, g->id, &names, &n, &bytes, e) != 0)
    return *e == ENOMEM ? NSS_STATUS_TRYAGAIN : NSS_STATUS_UNAVAIL;
  enum nss_status status =
      fill_group(g->name, g->id, names != NULL ? names : "", n, bytes, grp, buf, buflen, e);
  free(names);
  return status;
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
  if (bypassed()) return not_found(e);
  struct db d;
  struct record_buf rec;
  struct mid_userdb_entry u;
  switch (find(1, name, 0, &d, &rec, &u, e)) {
    case -1:
      return NSS_STATUS_UNAVAIL;
    case 0:
      return ask_daemon(name, pwd, buf, buflen, e);
  }
  db_close(&d);
  if (u.kind != MID_USERDB_REC_USER) return ask_daemon(name, pwd, buf, buflen, e);
  return fill_user(&u, pwd, buf, buflen, e);
}

MID_EXPORT enum nss_status _nss_machineid_getpwnam_r(const char* name, struct passwd* pwd,
                                                     char* buf, size_t buflen, int* errnop) {
  int saved = errno, e = 0;
  enum nss_status status = passwd_by_name(name, pwd, buf, buflen, &e);
  return finish(status, saved, e, errnop);
}

/* A lookup's entry: SUCCESS with d open (the caller closes it), or the
 * status to return. */
static enum nss_status lookup(int by_name, const char* name, uint32_t id, struct db* d,
                              struct record_buf* rec, struct mid_userdb_entry* out, int* e) {
  if (bypassed()) return not_found(e);
  switch (find(by_name, name, id, d, rec, out, e)) {
    case -1:
      return NSS_STATUS_UNAVAIL;
    case 0:
      return not_found(e);
  }
  return NSS_STATUS_SUCCESS;
}

MID_EXPORT enum nss_status _nss_machineid_getpwuid_r(uid_t uid, struct passwd* pwd, char* buf,
                                                     size_t buflen, int* errnop) {
  int saved = errno, e = 0;
  struct db d;
  struct record_buf rec;
  struct mid_userdb_entry u;
  enum nss_status status = lookup(0, NULL, uid, &d, &rec, &u, &e);
  if (status == NSS_STATUS_SUCCESS) {
    db_close(&d);
    status = u.kind == MID_USERDB_REC_USER ? fill_user(&u, pwd, buf, buflen, &e) : not_found(&e);
  }
  return finish(status, saved, e, errnop);
}

/* ---- group ------------------------------------------------------------- */

static enum nss_status group_lookup(int by_name, const char* name, uint32_t gid, struct group* grp,
                                    char* buf, size_t buflen, int* e) {
  for (int attempt = 1;; ++attempt) {
    struct db d;
    struct record_buf rec;
    struct mid_userdb_entry g;
    enum nss_status status = lookup(by_name, name, gid, &d, &rec, &g, e);
    if (status != NSS_STATUS_SUCCESS) return status;
    status = g.kind == MID_USERDB_REC_USER || g.kind == MID_USERDB_REC_GROUP
                 ? fill_entry_group(&d, &g, grp, buf, buflen, e)
                 : not_found(e);
    db_close(&d);
    if (status != NSS_STATUS_UNAVAIL || attempt >= MID_READ_TRIES) return status;
    sched_yield();
  }
}

MID_EXPORT enum nss_status _nss_machineid_getgrnam_r(const char* name, struct group* grp, char* buf,
                                                     size_t buflen, int* errnop) {
  int saved = errno, e = 0;
  enum nss_status status = group_lookup(1, name, 0, grp, buf, buflen, &e);
  return finish(status, saved, e, errnop);
}

MID_EXPORT enum nss_status _nss_machineid_getgrgid_r(gid_t gid, struct group* grp, char* buf,
                                                     size_t buflen, int* errnop) {
  int saved = errno, e = 0;
  enum nss_status status = group_lookup(0, NULL, gid, grp, buf, buflen, &e);
  return finish(status, saved, e, errnop);
}

/* ---- enumeration ------------------------------------------------------- */

/* One enumeration: the file it started on (kept open while it runs, so a
 * replacement in between does not disturb it) and the next slot of its id
 * table. */
struct cursor {
  int open;
  struct db db; /* fd -1: no database */
  uint32_t next;
};

static pthread_mutex_t ent_lock = PTHREAD_MUTEX_INITIALIZER; /* taken before file_lock */
static struct cursor pwent = {.db = {.fd = -1}}, grent = {.db = {.fd = -1}};

/* A fork while another thread holds a lock would leave the child's copy
 * locked for good: take both across fork, as glibc does with its own. */
static void fork_prepare(void) {
  pthread_mutex_lock(&ent_lock);
  pthread_mutex_lock(&file_lock);
}

static void fork_done(void) {
  pthread_mutex_unlock(&file_lock);
  pthread_mutex_unlock(&ent_lock);
}

__attribute__((constructor)) static void register_fork_handlers(void) {
  pthread_atfork(fork_prepare, fork_done, fork_done);
}

static void cursor_close(struct cursor* c) {
  db_close(&c->db);
  c->open = 0;
  c->next = 0;
}

/* ent_lock held. SUCCESS once the cursor is open. */
static enum nss_status cursor_open(struct cursor* c, int* e) {
  if (c->open) return NSS_STATUS_SUCCESS;
  c->db.fd = -1;
  c->db.file = NULL;
  if (!bypassed()) {
    int rc;
    for (int attempt = 1; (rc = db_open(&c->db, e)) < 0 && *e == EIO && attempt < MID_READ_TRIES;
         ++attempt)
      sched_yield();
    if (rc < 0) return NSS_STATUS_UNAVAIL;
  }
  c->open = 1;
  c->next = 0;
  return NSS_STATUS_SUCCESS;
}

/* ent_lock held. The next user (or, unless users_only, user or made group)
 * at or after c->next: 1 (c->next at it), 0 at the end, -1 with *e. */
static int cursor_entry(struct cursor* c, int users_only, struct record_buf* rec,
                        struct mid_userdb_entry* out, int* e) {
  for (; c->db.fd >= 0 && c->next < c->db.h.nslots; ++c->next) {
    struct mid_userdb_slot s;
    int rc;
    for (int attempt = 1;; ++attempt) {
      errno = 0;
      rc = mid_userdb_read_slot(c->db.fd, &c->db.h, MID_USERDB_TABLE_IDS, c->next, &s);
      if (rc == 1) rc = mid_userdb_read_record(c->db.fd, s.offset, rec, out) == MID_USERDB_OK ? 1 : -1;
      if (rc >= 0 || attempt >= MID_READ_TRIES) break;
      sched_yield();
    }
    if (rc < 0) {
      *e = error_errno(rc);
      return -1;
    }
    if (rc == 1 && (out->kind == MID_USERDB_REC_USER ||
                    (!users_only && out->kind == MID_USERDB_REC_GROUP)))
      return 1;
  }
  return 0;
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
  struct record_buf rec;
  struct mid_userdb_entry u;
  pthread_mutex_lock(&ent_lock);
  enum nss_status status = cursor_open(&pwent, &e);
  if (status == NSS_STATUS_SUCCESS) {
    switch (cursor_entry(&pwent, 1, &rec, &u, &e)) {
      case -1:
        status = NSS_STATUS_UNAVAIL;
        break;
      case 0:
        status = not_found(&e);
        break;
      default:
        status = fill_user(&u, pwd, buf, buflen, &e);
        if (status == NSS_STATUS_SUCCESS) ++pwent.next; /* not after ERANGE: retried */
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

/* Every user's primary group and every made group. */
MID_EXPORT enum nss_status _nss_machineid_getgrent_r(struct group* grp, char* buf, size_t buflen,
                                                     int* errnop) {
  int saved = errno, e = 0;
  struct record_buf rec;
  struct mid_userdb_entry g;
  pthread_mutex_lock(&ent_lock);
  enum nss_status status = cursor_open(&grent, &e);
  if (status == NSS_STATUS_SUCCESS) {
    switch (cursor_entry(&grent, 0, &rec, &g, &e)) {
      case -1:
        status = NSS_STATUS_UNAVAIL;
        break;
      case 0:
        status = not_found(&e);
        break;
      default:
        status = fill_entry_group(&grent.db, &g, grp, buf, buflen, &e);
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
  struct db d;
  struct record_buf rec;
  struct mid_userdb_entry u;
  enum nss_status status = lookup(1, user, 0, &d, &rec, &u, &e);
  if (status != NSS_STATUS_SUCCESS) return finish(status, saved, e, errnop);
  db_close(&d);
  if (u.kind != MID_USERDB_REC_USER) status = not_found(&e);
  for (uint32_t i = 0; status == NSS_STATUS_SUCCESS && i < u.count; ++i) {
    gid_t gid = mid_userdb_gid(&u, i);
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
  return finish(status, saved, e, errnop);
}
