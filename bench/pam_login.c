/* One PAM transaction as sshd makes it for a certificate login, in a fresh
 * process: account, then SSH_AUTH_INFO_0 put into the PAM environment (sshd
 * adds the accepted certificate only after the account stage), session open
 * and close. pamtester cannot set a PAM environment variable, so without
 * this program pam_machineid's session stage would see no certificate and
 * skip the work a login makes it do. bench/login-bench times it against a
 * stack of pam_permit only.
 * usage: pam_login SERVICE USER RHOST [CERT.pub]
 * Exit 0 when every step succeeded, 1 when one failed (it says which). */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The modules have nothing to ask here. */
static int no_conversation(int n, const struct pam_message** msg, struct pam_response** resp,
                           void* data) {
  (void)n;
  (void)msg;
  (void)resp;
  (void)data;
  return PAM_CONV_ERR;
}

/* "publickey TYPE BASE64\n", as sshd writes it, from a key-cert.pub file. */
static int auth_info(const char* path, char* out, size_t size) {
  FILE* f = fopen(path, "r");
  if (f == NULL) return -1;
  char type[128], blob[16384];
  int fields = fscanf(f, "%127s %16383s", type, blob);
  fclose(f);
  if (fields != 2) return -1;
  int n = snprintf(out, size, "SSH_AUTH_INFO_0=publickey %s %s\n", type, blob);
  return n > 0 && (size_t)n < size ? 0 : -1;
}

static int failed(pam_handle_t* pamh, const char* step, int code) {
  fprintf(stderr, "pam_login: %s: %s\n", step, pam_strerror(pamh, code));
  pam_end(pamh, code);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: pam_login SERVICE USER RHOST [CERT.pub]\n");
    return 2;
  }
  static char info[16600];
  if (argc == 5 && auth_info(argv[4], info, sizeof info) != 0) {
    fprintf(stderr, "pam_login: cannot read a certificate from %s\n", argv[4]);
    return 2;
  }
  struct pam_conv conv = {no_conversation, NULL};
  pam_handle_t* pamh = NULL;
  int r = pam_start(argv[1], argv[2], &conv, &pamh);
  if (r != PAM_SUCCESS) return 1;
  if ((r = pam_set_item(pamh, PAM_RHOST, argv[3])) != PAM_SUCCESS) return failed(pamh, "rhost", r);
  if ((r = pam_set_item(pamh, PAM_TTY, "ssh")) != PAM_SUCCESS) return failed(pamh, "tty", r);
  if ((r = pam_acct_mgmt(pamh, 0)) != PAM_SUCCESS) return failed(pamh, "account", r);
  if (argc == 5 && (r = pam_putenv(pamh, info)) != PAM_SUCCESS) return failed(pamh, "putenv", r);
  if ((r = pam_open_session(pamh, 0)) != PAM_SUCCESS) return failed(pamh, "open_session", r);
  if ((r = pam_close_session(pamh, 0)) != PAM_SUCCESS) return failed(pamh, "close_session", r);
  pam_end(pamh, PAM_SUCCESS);
  return 0;
}
