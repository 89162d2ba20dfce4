/* The home directory of a host user, made on its first login. */
#ifndef MACHINEID_PAM_HOME_H
#define MACHINEID_PAM_HOME_H

#include <stddef.h>

/* Creates the home directory named by `login`'s passwd entry when nothing
 * is there yet: mode 0700, owned by the user and their primary group,
 * filled with a copy of `skel` (regular files, directories and symbolic
 * links, none of them followed; a missing `skel` copies nothing). Whatever
 * already exists at that path is left alone. Returns 0, or -1 with a
 * message naming the path and the failing step in `err`; the home itself is
 * still handed to the user when only part of the skeleton could be
 * copied. */
int mid_create_home(const char* login, const char* skel, char* err, size_t errlen);

#endif /* MACHINEID_PAM_HOME_H */
