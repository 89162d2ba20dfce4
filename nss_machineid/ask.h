/* libnss_machineid's one question to machineid-verifierd: provisional_user,
 * for sshd's lookup of a login before authentication (SPEC §6). The daemon
 * stores nothing for it. The frames and the reader are the client
 * library's (include/machineid/mid_client.h). */
#ifndef MACHINEID_NSS_ASK_H
#define MACHINEID_NSS_ASK_H

#include "machineid/mid_client.h"

/* Connecting, asking and reading the answer together never take longer:
 * sshd, the only process that asks, waits this long at most for a daemon
 * that is slow, frozen or gone. */
#define MID_ASK_DEADLINE_MS 100

/* A reply holds five short strings; anything longer is not one. */
#define MID_MAX_REPLY_BYTES 4096u

/* Asks the daemon listening on `socket_path` (which must be root's socket,
 * and not this process) for the provisional entry of `login`, a valid login.
 * Returns 0 and a usable entry in `r`, whose strings point into `buf`
 * (MID_MAX_REPLY_BYTES); -1 for anything else, the deadline included. */
int mid_ask_provisional(const char* socket_path, const char* login, unsigned char* buf,
                        struct mid_host_user_reply* r);

#endif /* MACHINEID_NSS_ASK_H */
