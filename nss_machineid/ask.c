#include "ask.h"

#include <string.h>

#include "machineid/userdb_format.h"

int mid_ask_provisional(const char* socket_path, const char* login, unsigned char* buf,
                        struct mid_host_user_reply* r) {
  int64_t deadline = mid_now_ms() + MID_ASK_DEADLINE_MS;
  size_t n = strlen(login);
  if (n == 0 || n > MID_USERDB_MAX_LOGIN) return -1;
  /* frame: uint32 length, version, kind, string login; no allocation */
  unsigned char request[4 + 2 + 4 + MID_USERDB_MAX_LOGIN];
  struct mid_writer w;
  mid_writer_fixed(&w, request, sizeof request);
  size_t size = 0;
  /* Our own lookups must not wait on ourselves: the peer is root's daemon,
   * and not this very process. */
  return mid_encode_user_request(&w, MID_KIND_PROVISIONAL_USER, mid_str(login)) == 0 &&
                 mid_call(socket_path, &w, deadline, MID_PEER_ROOT | MID_PEER_NOT_SELF, buf,
                          MID_MAX_REPLY_BYTES, &size, NULL, 0) == 0 &&
                 mid_decode_host_user_reply(buf, size, r) == 0 && mid_host_user_usable(r, login)
             ? 0
             : -1;
}
