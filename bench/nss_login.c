/* What sshd asks NSS for a login, in a fresh process: getpwnam(user), then
 * the user's groups. The group list walks every source on the group: line,
 * so a module listed last is loaded and asked even for a user that files
 * answers (root): that is the NSS cost a login pays. bench/login-bench runs
 * it with and without libnss_machineid in nsswitch.conf. Exit 0 when found.
 * usage: nss_login USER */
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <sys/types.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  struct passwd* pw = getpwnam(argv[1]);
  if (pw == NULL) return 1;
  gid_t groups[256];
  int count = 256;
  return getgrouplist(argv[1], pw->pw_gid, groups, &count) < 0 ? 1 : 0;
}
