#define _GNU_SOURCE
#include "home.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A skeleton is a few dotfiles; deeper than this is a loop or a mistake. */
#define MAX_SKEL_DEPTH 16
/* getpwnam_r's buffer grows on ERANGE up to this. */
#define MAX_PASSWD_BUFFER (1u << 20)

/* Every directory and file below is reached through a descriptor opened
 * with O_NOFOLLOW relative to its parent's, so a symbolic link is never
 * followed and nothing outside the new home is ever changed. */
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct owner {
  uid_t uid;
  gid_t gid;
};

struct out {
  char* err;
  size_t errlen;
};

static int fail(struct out* o, const char* path, const char* step) {
  snprintf(o->err, o->errlen, "%s: %s: %s", path, step, strerror(errno));
  return -1;
}

static void close_fd(int fd) {
  if (fd >= 0) close(fd);
}

/* The uid, gid and home of `login` (home malloc'd), or -1. */
static int lookup(const char* login, struct owner* owner, char** home, struct out* o) {
  size_t size = 4096;
  for (;;) {
    char* buffer = malloc(size);
    struct passwd entry, *found = NULL;
    if (buffer == NULL) {
      snprintf(o->err, o->errlen, "%s: out of memory", login);
      return -1;
    }
    int rc = getpwnam_r(login, &entry, buffer, size, &found);
    if (rc == ERANGE && size < MAX_PASSWD_BUFFER) {
      free(buffer);
      size *= 2;
      continue;
    }
    if (rc != 0 || found == NULL) {
      free(buffer);
      if (rc != 0)
        snprintf(o->err, o->errlen, "%s: getpwnam_r: %s", login, strerror(rc));
      else
        snprintf(o->err, o->errlen, "%s: no passwd entry", login);
      return -1;
    }
    owner->uid = entry.pw_uid;
    owner->gid = entry.pw_gid;
    *home = strdup(entry.pw_dir);
    free(buffer);
    if (*home == NULL) {
      snprintf(o->err, o->errlen, "%s: out of memory", login);
      return -1;
    }
    return 0;
  }
}

static int copy_file(int src_dir, int dst_dir, const char* name, const struct owner* owner,
                     const char* path, struct out* o) {
  /* O_NONBLOCK: should the entry have become a FIFO, opening it must not hang. */
  int in = openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  int rc = -1, out = -1;
  char buffer[16384];
  if (in < 0 || fstat(in, &st) != 0) {
    rc = fail(o, path, "open skeleton file");
    goto done;
  }
  if (!S_ISREG(st.st_mode)) { /* replaced since it was listed */
    rc = 0;
    goto done;
  }
  out = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) {
    rc = fail(o, path, "create");
    goto done;
  }
  for (;;) {
    ssize_t n = read(in, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = fail(o, path, "read skeleton file");
      goto done;
    }
    if (n == 0) break;
    for (ssize_t written = 0; written < n;) {
      ssize_t w = write(out, buffer + written, (size_t)(n - written));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        rc = fail(o, path, "write");
        goto done;
      }
      written += w;
    }
  }
  /* Permission bits only: a skeleton file must not become set-id the user's. */
  if (fchown(out, owner->uid, owner->gid) != 0 || fchmod(out, st.st_mode & 0777) != 0)
    rc = fail(o, path, "set owner and mode");
  else
    rc = 0;
done:
  close_fd(in);
  close_fd(out);
  return rc;
}

static int copy_link(int src_dir, int dst_dir, const char* name, const struct owner* owner,
                     const char* path, struct out* o) {
  char target[PATH_MAX + 1];
  ssize_t n = readlinkat(src_dir, name, target, sizeof target);
  if (n < 0 || (size_t)n >= sizeof target) return fail(o, path, "read skeleton link");
  target[n] = '\0';
  if (symlinkat(target, dst_dir, name) != 0) return fail(o, path, "create link");
  if (fchownat(dst_dir, name, owner->uid, owner->gid, AT_SYMLINK_NOFOLLOW) != 0)
    return fail(o, path, "set link owner");
  return 0;
}

static int copy_tree(int src_dir, int dst_dir, const struct owner* owner, const char* path,
                     int depth, struct out* o) {
  if (depth > MAX_SKEL_DEPTH) {
    snprintf(o->err, o->errlen, "%s: skeleton deeper than %d", path, MAX_SKEL_DEPTH);
    return -1;
  }
  /* fdopendir takes its descriptor; ours stays with the caller. */
  int listing_fd = openat(src_dir, ".", DIR_FLAGS);
  DIR* listing = listing_fd >= 0 ? fdopendir(listing_fd) : NULL;
  if (listing == NULL) {
    int saved = errno;
    close_fd(listing_fd);
    errno = saved;
    return fail(o, path, "list skeleton directory");
  }
  int rc = 0;
  struct dirent* entry;
  while (rc == 0 && (entry = readdir(listing)) != NULL) {
    const char* name = entry->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
    char* child = NULL;
    if (asprintf(&child, "%s/%s", path, name) < 0) {
      snprintf(o->err, o->errlen, "%s: out of memory", path);
      rc = -1;
      break;
    }
    struct stat st;
    if (fstatat(src_dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      rc = fail(o, child, "stat skeleton entry");
    } else if (S_ISREG(st.st_mode)) {
      rc = copy_file(src_dir, dst_dir, name, owner, child, o);
    } else if (S_ISLNK(st.st_mode)) {
      rc = copy_link(src_dir, dst_dir, name, owner, child, o);
    } else if (S_ISDIR(st.st_mode)) {
      if (mkdirat(dst_dir, name, 0700) != 0) {
        rc = fail(o, child, "create directory");
      } else {
        int src = openat(src_dir, name, DIR_FLAGS);
        int dst = openat(dst_dir, name, DIR_FLAGS);
        if (src < 0 || dst < 0)
          rc = fail(o, child, "open directory");
        else if ((rc = copy_tree(src, dst, owner, child, depth + 1, o)) == 0 &&
                 (fchown(dst, owner->uid, owner->gid) != 0 || fchmod(dst, st.st_mode & 0777) != 0))
          rc = fail(o, child, "set owner and mode");
        close_fd(src);
        close_fd(dst);
      }
    }
    /* Devices, FIFOs and sockets have no place in a home directory. */
    free(child);
  }
  closedir(listing);
  return rc;
}

int mid_create_home(const char* login, const char* skel, char* err, size_t errlen) {
  struct out o = {err, errlen};
  struct owner owner;
  char* home = NULL;
  int rc = -1, parent = -1, dir = -1, skeleton = -1;
  err[0] = '\0';
  if (lookup(login, &owner, &home, &o) != 0) return -1;
  size_t n = strlen(home);
  while (n > 1 && home[n - 1] == '/') home[--n] = '\0';
  if (home[0] != '/' || n == 1) {
    snprintf(err, errlen, "%s: home directory %s is not an absolute path below /", login, home);
    goto done;
  }
  char* slash = strrchr(home, '/');
  char* name = slash + 1;
  *slash = '\0'; /* home is now the parent's path ("" for /) */
  parent = open(slash == home ? "/" : home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parent < 0) {
    fail(&o, slash == home ? "/" : home, "open parent of home directory");
    goto done;
  }
  *slash = '/'; /* the whole home again */
  /* mkdir is the test for existence: whatever is there already stays as it is. */
  if (mkdirat(parent, name, 0700) != 0) {
    rc = errno == EEXIST ? 0 : fail(&o, home, "create home directory");
    goto done;
  }
  /* The home stays root's (0700) while the skeleton is copied, so nobody
   * can swap anything inside it until it is handed over at the end. */
  struct stat st;
  dir = openat(parent, name, DIR_FLAGS);
  if (dir < 0 || fstat(dir, &st) != 0) {
    fail(&o, home, "open home directory");
    goto done;
  }
  /* Only we could have made it ours: under a parent others may write to, a
   * directory of theirs may have taken its place, and must not be handed on. */
  if (st.st_uid != geteuid()) {
    snprintf(err, errlen, "%s: replaced while it was being made", home);
    goto done;
  }
  int copied = 0;
  skeleton = open(skel, DIR_FLAGS);
  if (skeleton >= 0)
    copied = copy_tree(skeleton, dir, &owner, home, 0, &o);
  else if (errno != ENOENT)
    copied = fail(&o, skel, "open skeleton directory");
  if (fchown(dir, owner.uid, owner.gid) != 0 || fchmod(dir, 0700) != 0)
    fail(&o, home, "hand the home directory to its user");
  else
    rc = copied;
done:
  close_fd(skeleton);
  close_fd(dir);
  close_fd(parent);
  free(home);
  return rc;
}
