/* machineid-principals [--socket PATH] USER KEYTYPE BASE64CERT
 *
 * sshd's AuthorizedPrincipalsCommand (%u %t %k). Prints USER, after the
 * authorized_keys options the certificate's roles call for, when
 * machineid-verifierd allows the certificate to log in as USER; otherwise
 * prints nothing and exits non-zero. Anything unexpected denies. Plain C on
 * the client library: no OpenSSL, libsodium or C++ runtime (SPEC §6). */
#include <stdio.h>
#include <string.h>

#include "machineid/mid_client.h"

/* sshd runs this command twice per login (to check the key, then to
 * authorize it) and waits for each: a frozen daemon costs a login at most
 * twice this plus the login's own ~0.2 s, so the login is refused within
 * 1.1 s (SPEC §6: "answered within 1 s"). Still hundreds of times what an
 * answer takes, even with the daemon saturated (p99 ~7 ms at 64 clients). */
#define DEADLINE_MS 400

/* The daemon's reply: one frame, at most this long. */
static unsigned char reply[MID_MAX_FRAME_BYTES];

static int deny(const char* what, struct mid_string detail) {
  char escaped[1024];
  fprintf(stderr, "machineid-principals: %s%s\n", what,
          mid_escape(detail.data, detail.size, escaped, sizeof escaped));
  return 1;
}

int main(int argc, char** argv) {
  const char* socket_path = MID_DEFAULT_SOCKET;
  int i = 1;
  if (i + 1 < argc && strcmp(argv[i], "--socket") == 0) {
    socket_path = argv[i + 1];
    i += 2;
  }
  if (argc - i != 3)
    return deny("usage: machineid-principals [--socket PATH] USER KEYTYPE BASE64CERT",
                mid_str(""));

  int64_t deadline = mid_now_ms() + DEADLINE_MS;
  struct mid_decide_request request = {MID_ASKER_PRINCIPALS, mid_str(argv[i]),
                                       mid_str(argv[i + 1]), mid_str(argv[i + 2]), mid_str("")};
  struct mid_writer w;
  mid_writer_heap(&w);
  if (mid_encode_decide_request(&w, &request) != 0) {
    mid_writer_free(&w);
    return deny("denying: the request does not fit in a frame", mid_str(""));
  }
  char err[512];
  size_t size = 0;
  int called = mid_call(socket_path, &w, deadline, MID_PEER_ROOT, reply, sizeof reply, &size, err,
                        sizeof err);
  mid_writer_free(&w);
  if (called != 0) return deny("denying: ", mid_str(err));

  struct mid_decide_reply d;
  if (mid_decode_decide_reply(reply, size, &d) != 0) {
    struct mid_string message;
    if (mid_decode_error(reply, size, &message) == 0) return deny("denying: ", message);
    return deny("denying: bad reply from the daemon", mid_str(""));
  }
  if (!d.allowed) {
    char reason[256];
    fprintf(stderr, "machineid-principals: denied: %s: ",
            mid_escape(d.reason.data, d.reason.size, reason, sizeof reason));
    return deny("", d.detail);
  }
  /* As an AuthorizedPrincipalsFile line: options the roles call for, then
   * the login. The daemon's options are printable text without newlines. */
  for (size_t k = 0; k < d.key_options.size; ++k)
    if ((unsigned char)d.key_options.data[k] < 0x20 || d.key_options.data[k] == 0x7f)
      return deny("denying: control character in the key options", mid_str(""));
  if (d.key_options.size > 0) printf("%.*s ", (int)d.key_options.size, d.key_options.data);
  printf("%s\n", argv[i]);
  return fflush(stdout) == 0 ? 0 : 1;
}
