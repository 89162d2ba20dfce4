#define _GNU_SOURCE
#include "sudoers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SUDOERS_BYTES (64u * 1024u)

static int fail(char* err, size_t errlen, const char* what, const char* path) {
  snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
  return -1;
}

/* Whether `fd` (a regular file) holds exactly `content`. */
static int holds(int fd, const char* content, size_t size) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != size) return 0;
  char* buf = malloc(size + 1);
  if (buf == NULL) return 0;
  ssize_t n = pread(fd, buf, size + 1, 0);
  int same = n == (ssize_t)size && memcmp(buf, content, size) == 0;
  free(buf);
  return same;
}

static int write_all(int fd, const char* p, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    size -= (size_t)n;
  }
  return 0;
}

/* visudo -cf PATH, with nothing of ours but the file: 0 when it accepts. */
static int visudo_accepts(const char* visudo, const char* path, char* err, size_t errlen) {
  pid_t pid = fork();
  if (pid < 0) return fail(err, errlen, "cannot fork for", visudo);
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
    }
    /* Nothing of sshd's (its connection, its monitor's socket) for visudo. */
    closefrom(3);
    char* const argv[] = {(char*)visudo, (char*)"-cf", (char*)path, NULL};
    char* const envp[] = {(char*)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(visudo, argv, envp);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return fail(err, errlen, "cannot wait for", visudo);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    snprintf(err, errlen, "%s could not run (is sudo installed?)", visudo);
  else
    snprintf(err, errlen, "%s -cf refused the host_sudoers entries", visudo);
  return -1;
}

int mid_install_sudoers(const char* dir, const char* name, const char* content, size_t size,
                        const char* visudo, char* err, size_t errlen) {
  if (strncmp(name, "machineid-", 10) != 0 || strpbrk(name, "/.~") != NULL || strlen(name) > 255) {
    snprintf(err, errlen, "refusing sudoers file name '%s'", name);
    return -1;
  }
  if (size > MAX_SUDOERS_BYTES) {
    snprintf(err, errlen, "sudoers content of %zu bytes is over the limit", size);
    return -1;
  }
  int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0) return fail(err, errlen, "cannot open", dir);
  int rc = -1;
  if (size == 0) {
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) rc = 0;
    else fail(err, errlen, "cannot remove the sudoers file in", dir);
    close(dirfd);
    return rc;
  }
  int current = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (current >= 0) {
    int same = holds(current, content, size);
    close(current);
    if (same) {
      close(dirfd);
      return 0;
    }
  }
  char temp[4096];
  snprintf(temp, sizeof temp, "%s/.%s.XXXXXX", dir, name);
  int fd = mkostemp(temp, O_CLOEXEC);
  if (fd < 0) {
    fail(err, errlen, "cannot create a file in", dir);
    close(dirfd);
    return -1;
  }
  if (fchown(fd, 0, 0) != 0 || fchmod(fd, 0440) != 0 || write_all(fd, content, size) != 0 ||
      fsync(fd) != 0) {
    fail(err, errlen, "cannot write", temp);
  } else if (visudo_accepts(visudo, temp, err, errlen) == 0) {
    const char* base = strrchr(temp, '/') + 1;
    if (renameat(dirfd, base, dirfd, name) == 0) {
      fsync(dirfd);
      rc = 0;
    } else {
      fail(err, errlen, "cannot move into place", temp);
    }
  }
  close(fd);
  if (rc != 0) {
    /* Fail closed: what the roles granted before is not what they grant now. */
    unlink(temp);
    unlinkat(dirfd, name, 0);
  }
  close(dirfd);
  return rc;
}
