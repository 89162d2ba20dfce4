/* SSH_AUTH_INFO_0, as sshd exposes it to PAM: one line per authentication
 * method that succeeded, "method[/submethod][ keytype base64]". The module
 * finds in it the certificates that authenticated the login. The key part
 * comes from the client, so this is the module's one parser of untrusted
 * text (fuzz/pam_authinfo_fuzz.cc). It lives in the client library so
 * that the tests and the fuzzer reach it as the module does. */
#ifndef MACHINEID_MID_AUTHINFO_H
#define MACHINEID_MID_AUTHINFO_H

#include <stddef.h>

#include "machineid/mid_client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* sshd writes a handful of lines (one per method in AuthenticationMethods);
 * anything near these bounds is not sshd's doing. */
#define MID_AUTHINFO_MAX_BYTES (128u * 1024u)
#define MID_AUTHINFO_MAX_LINES 16u

/* The key types of OpenSSH user certificates all end so. */
#define MID_CERT_TYPE_SUFFIX "-cert-v01@openssh.com"

/* A certificate that authenticated the login, as sshd's %t and %k: views
 * into the parsed text. */
struct mid_cert_login {
  struct mid_string key_type, certificate;
};

struct mid_auth_info {
  size_t count;
  struct mid_cert_login certificates[MID_AUTHINFO_MAX_LINES];
};

#define MID_AUTHINFO_MALFORMED (-1)
#define MID_AUTHINFO_LIMIT (-2)

/* The certificates of the public-key lines of `info` (`size` bytes), in
 * order (none for a login without one): 0; or MID_AUTHINFO_MALFORMED with a
 * message naming the line ("SSH_AUTH_INFO_0 line N: ...") in `err` when a
 * line is malformed (a public-key line that is not exactly "publickey
 * keytype base64", a bad method name, an empty line, a control character),
 * or MID_AUTHINFO_LIMIT when a limit is exceeded. */
int mid_auth_info_parse(const char* info, size_t size, struct mid_auth_info* out, char* err,
                        size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* MACHINEID_MID_AUTHINFO_H */
