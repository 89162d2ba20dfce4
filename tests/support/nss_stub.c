/* libnss_midstub.so.2: a stand-in for a directory source (sss, ldap) in
 * tests that put it on the passwd: and group: lines *after* machineid.
 * It answers getpwnam/getpwuid/getgrnam/getgrgid from MID_STUB_FILE, read
 * on every call, one entry a line:
 *
 *   passwd NAME UID
 *   group NAME GID
 *
 * A missing file is a source that knows nobody. Test code only. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#define MID_STUB_FILE "/run/machineid-nss-stub"

/* Finds the entry of `kind` matching `name` (or, when NULL, `id`). */
static int find(const char* kind, const char* name, unsigned id, char* found_name, size_t size,
                unsigned* found_id) {
  FILE* f = fopen(MID_STUB_FILE, "re");
  if (f == NULL) return 0;
  char k[16], n[64];
  unsigned v;
  int hit = 0;
  while (!hit && fscanf(f, "%15s %63s %u", k, n, &v) == 3)
    hit = strcmp(k, kind) == 0 && (name != NULL ? strcmp(n, name) == 0 : v == id);
  fclose(f);
  if (hit) {
    snprintf(found_name, size, "%s", n);
    *found_id = v;
  }
  return hit;
}

static enum nss_status passwd_of(const char* name, unsigned id, struct passwd* pw, char* buf,
                                 size_t buflen, int* errnop) {
  char n[64];
  unsigned v;
  if (!find("passwd", name, id, n, sizeof n, &v)) {
    *errnop = ENOENT;
    return NSS_STATUS_NOTFOUND;
  }
  int len = snprintf(buf, buflen, "%s%c*%c%c/home/directory/%s%c/bin/sh", n, 0, 0, 0, n, 0);
  if (len < 0 || (size_t)len + 1 > buflen) {
    *errnop = ERANGE;
    return NSS_STATUS_TRYAGAIN;
  }
  pw->pw_name = buf;
  pw->pw_passwd = buf + strlen(n) + 1;
  pw->pw_gecos = pw->pw_passwd + 2;
  pw->pw_dir = pw->pw_gecos + 1;
  pw->pw_shell = pw->pw_dir + strlen(pw->pw_dir) + 1;
  pw->pw_uid = v;
  pw->pw_gid = v;
  return NSS_STATUS_SUCCESS;
}

static enum nss_status group_of(const char* name, unsigned id, struct group* gr, char* buf,
                                size_t buflen, int* errnop) {
  char n[64];
  unsigned v;
  if (!find("group", name, id, n, sizeof n, &v)) {
    *errnop = ENOENT;
    return NSS_STATUS_NOTFOUND;
  }
  size_t need = sizeof(char*) * 2 + strlen(n) + 3;
  if (need > buflen) {
    *errnop = ERANGE;
    return NSS_STATUS_TRYAGAIN;
  }
  char** members = (char**)(void*)buf;
  members[0] = NULL;
  char* at = buf + sizeof(char*) * 2;
  strcpy(at, n);
  gr->gr_name = at;
  gr->gr_passwd = at + strlen(n) + 1;
  strcpy(gr->gr_passwd, "*");
  gr->gr_gid = v;
  gr->gr_mem = members;
  return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_midstub_getpwnam_r(const char* name, struct passwd* pw, char* buf,
                                        size_t buflen, int* errnop) {
  return passwd_of(name, 0, pw, buf, buflen, errnop);
}

enum nss_status _nss_midstub_getpwuid_r(uid_t uid, struct passwd* pw, char* buf, size_t buflen,
                                        int* errnop) {
  return passwd_of(NULL, uid, pw, buf, buflen, errnop);
}

enum nss_status _nss_midstub_getgrnam_r(const char* name, struct group* gr, char* buf,
                                        size_t buflen, int* errnop) {
  return group_of(name, 0, gr, buf, buflen, errnop);
}

enum nss_status _nss_midstub_getgrgid_r(gid_t gid, struct group* gr, char* buf, size_t buflen,
                                        int* errnop) {
  return group_of(NULL, gid, gr, buf, buflen, errnop);
}
