/* A host user's sudoers file, installed by the session as Teleport's node
 * agent installs it: checked with visudo before it is moved into place. */
#ifndef MACHINEID_PAM_SUDOERS_H
#define MACHINEID_PAM_SUDOERS_H

#include <stddef.h>

/* Makes `dir`/`name` hold `content` (mode 0440, root's): unchanged when it
 * already does; otherwise written to a temporary file in `dir` whose name
 * sudo skips (it holds a '.'), checked with `visudo -cf`, and renamed over
 * `name`. Empty `content` removes `name`. `name` must be "machineid-..."
 * with no '/' or '.'. Returns 0, or -1 with a message in `err`; a file
 * that could not be replaced is removed rather than left granting what the
 * roles granted before. */
int mid_install_sudoers(const char* dir, const char* name, const char* content, size_t size,
                        const char* visudo, char* err, size_t errlen);

#endif /* MACHINEID_PAM_SUDOERS_H */
