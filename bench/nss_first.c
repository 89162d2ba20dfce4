/* One getpwnam(argv[1]) and nothing else: scripts/bench runs it under
 * nss_wrapper with nss_files' passwd or libnss_machineid's users.db of N
 * users, as a fresh process each time (hyperfine). Exit 0 when found. */
#include <pwd.h>
#include <stddef.h>

int main(int argc, char** argv) { return argc == 2 && getpwnam(argv[1]) != NULL ? 0 : 1; }
