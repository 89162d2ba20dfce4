/* pam_machineid.so (SPEC §6): the PAM half of a certificate login. C on the
 * client library, linking libpam and libc alone: it is loaded by cron, su,
 * sudo and login too, which must not carry a C++ runtime for it.
 *
 *   account  asks machineid-verifierd again about the certificates in
 *            SSH_AUTH_INFO_0, now knowing the client's address; a login
 *            without a certificate follows nocert=ignore|deny.
 *   session  open: decides as account does when account did not see the
 *            whole login (see check_login); then TELEPORT_USERNAME,
 *            TELEPORT_LOGIN, TELEPORT_ROLES and (bots) MACHINEID_BOT in the
 *            environment, the home directory of a host user on its first
 *            login, its sudoers file (the host_sudoers of the roles that
 *            granted it, checked with visudo; removed when they grant none),
 *            and a session.open event carrying the login decision's
 *            correlation id.
 *            close: a session.close event with the session's duration.
 *   auth, setcred, chauthtok: PAM_IGNORE, so a stray stack line is harmless
 *            (Linux-PAM denies for a function a listed module lacks).
 *
 * Options: socket=PATH, nocert=ignore|deny, skel=DIR (default /etc/skel),
 * sudoers_dir=DIR (default /etc/sudoers.d).
 * An unknown or malformed option is logged and refuses with
 * PAM_SERVICE_ERR: a typo must not quietly weaken the check.
 *
 * What a login carries from account to session close lives in its PAM
 * handle (pam_set_data): one process, sshd's monitor or a test, may hold
 * many handles, so the module keeps no global state. Every log line goes
 * through say(), which escapes it whole: login names, key ids and the
 * daemon's messages are untrusted text. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "machineid/mid_authinfo.h"
#include "home.h"
#include "machineid/mid_client.h"
#include "sudoers.h"

#define EXPORT __attribute__((visibility("default")))

/* sshd, and the client behind it, wait for every call. */
#define DEADLINE_MS 1000
#define DATA_NAME "pam_machineid.login"

struct options {
  const char* socket;
  int deny_without_certificate;
  const char* skel;
  const char* sudoers_dir;
};

/* A certificate login the daemon allowed, kept in its PAM handle. */
struct login {
  char* user;
  char* source;
  char* certificates; /* "type base64\n" for each, to recognise them again */
  char* who[MID_ID_FIELDS]; /* the first certificate's identity (mid_identity) */
  int host_user;
  char* sudoers_file;    /* a host user's sudoers file: its name and content */
  char* sudoers;
  int open;              /* our session is open */
  long long opened_at;   /* boot_seconds() when it opened */
};

/* Logs one line, escaped whole (printable ASCII stays as it is). */
static void say(pam_handle_t* pamh, int priority, const char* format, ...) {
  char line[2048], escaped[4096];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(line, sizeof line, format, args);
  va_end(args);
  if (n < 0) return;
  size_t size = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  pam_syslog(pamh, priority, "%s", mid_escape(line, size, escaped, sizeof escaped));
}

static int parse_options(pam_handle_t* pamh, int argc, const char** argv, struct options* o) {
  o->socket = MID_DEFAULT_SOCKET;
  o->deny_without_certificate = 0;
  o->skel = "/etc/skel";
  o->sudoers_dir = "/etc/sudoers.d";
  for (int i = 0; i < argc; ++i) {
    const char* arg = argv[i];
    if (strncmp(arg, "socket=", 7) == 0 && arg[7] != '\0') {
      o->socket = arg + 7;
    } else if (strncmp(arg, "skel=", 5) == 0 && arg[5] != '\0') {
      o->skel = arg + 5;
    } else if (strncmp(arg, "sudoers_dir=", 12) == 0 && arg[12] == '/') {
      o->sudoers_dir = arg + 12;
    } else if (strcmp(arg, "nocert=ignore") == 0 || strcmp(arg, "nocert=deny") == 0) {
      o->deny_without_certificate = strcmp(arg, "nocert=deny") == 0;
    } else {
      say(pamh, LOG_ERR, "unknown or malformed option '%s'; refusing", arg);
      return -1;
    }
  }
  return 0;
}

static const char* item(pam_handle_t* pamh, int type) {
  const void* value = NULL;
  if (pam_get_item(pamh, type, &value) != PAM_SUCCESS || value == NULL) return "";
  return value;
}

/* PAM_RHOST when it is an address: a host name (sshd's UseDNS) cannot be
 * matched against a certificate's source-address, which sshd has already
 * enforced anyway. */
static const char* source_address(pam_handle_t* pamh) {
  const char* rhost = item(pamh, PAM_RHOST);
  struct in6_addr address;
  if (inet_pton(AF_INET, rhost, &address) == 1 || inet_pton(AF_INET6, rhost, &address) == 1)
    return rhost;
  return "";
}

/* Seconds since boot, suspend included: a session's duration. */
static long long boot_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return ts.tv_sec;
}

static char* copy(struct mid_string s) { return strndup(s.data, s.size); }

static void free_login(struct login* l) {
  if (l == NULL) return;
  free(l->user);
  free(l->source);
  free(l->certificates);
  free(l->sudoers_file);
  free(l->sudoers);
  for (int i = 0; i < MID_ID_FIELDS; ++i) free(l->who[i]);
  free(l);
}

static void forget_login(pam_handle_t* pamh, void* data, int status) {
  (void)pamh;
  (void)status;
  free_login(data);
}

static struct login* kept_login(pam_handle_t* pamh) {
  const void* data = NULL;
  if (pam_get_data(pamh, DATA_NAME, &data) != PAM_SUCCESS) return NULL;
  /* Ours, and mutable: only pam_get_data's signature makes it const. */
  return (struct login*)data;
}

/* "who" of a decision for log lines: the bot, else the key id. */
static void who(char* out, size_t n, const char* bot, const char* key_id) {
  if (bot[0] != '\0')
    snprintf(out, n, "bot '%s'", bot);
  else
    snprintf(out, n, "key id '%s'", key_id);
}

/* Sends one finished frame and reads the reply into a fresh buffer (freed
 * by the caller); NULL with a message in `err`. */
static unsigned char* call(const struct options* o, struct mid_writer* w, size_t* size,
                           char* err, size_t errlen) {
  unsigned char* reply = malloc(MID_MAX_FRAME_BYTES);
  if (reply == NULL) {
    snprintf(err, errlen, "%s: out of memory", o->socket);
    return NULL;
  }
  if (mid_call(o->socket, w, mid_now_ms() + DEADLINE_MS, MID_PEER_ROOT, reply,
               MID_MAX_FRAME_BYTES, size, err, errlen) != 0) {
    free(reply);
    return NULL;
  }
  return reply;
}

/* The daemon's error message, or that its reply was not one we know. */
static void bad_reply(const struct options* o, const unsigned char* reply, size_t size,
                      char* err, size_t errlen) {
  struct mid_string message;
  if (mid_decode_error(reply, size, &message) == 0)
    snprintf(err, errlen, "%s: %.*s", o->socket, (int)message.size, message.data);
  else
    snprintf(err, errlen, "%s: bad reply", o->socket);
}

/* The PAM environment's SSH_AUTH_INFO_0 certificates in `info` (none when
 * unset): 0, or -1 with the parser's message. */
static int shown_certificates(pam_handle_t* pamh, struct mid_auth_info* info, char* err,
                              size_t errlen) {
  const char* text = pam_getenv(pamh, "SSH_AUTH_INFO_0");
  if (text == NULL) text = "";
  return mid_auth_info_parse(text, strlen(text), info, err, errlen) == 0 ? 0 : -1;
}

/* The certificates of `info` as one string, for comparing logins. */
static char* join_certificates(const struct mid_auth_info* info) {
  size_t n = 1;
  for (size_t i = 0; i < info->count; ++i)
    n += info->certificates[i].key_type.size + info->certificates[i].certificate.size + 2;
  char* out = malloc(n);
  if (out == NULL) return NULL;
  char* p = out;
  for (size_t i = 0; i < info->count; ++i) {
    const struct mid_cert_login* c = &info->certificates[i];
    memcpy(p, c->key_type.data, c->key_type.size);
    p += c->key_type.size;
    *p++ = ' ';
    memcpy(p, c->certificate.data, c->certificate.size);
    p += c->certificate.size;
    *p++ = '\n';
  }
  *p = '\0';
  return out;
}

/* Asks the daemon about one certificate. PAM_SUCCESS with the identity
 * copied into `kept` when `keep`; PAM_PERM_DENIED (logged) otherwise. */
static int decide(pam_handle_t* pamh, const struct options* o, const struct mid_cert_login* c,
                  struct login* kept, int keep) {
  struct mid_decide_request request = {MID_ASKER_PAM, mid_str(kept->user), c->key_type,
                                       c->certificate, mid_str(kept->source)};
  struct mid_writer w;
  char err[1024];
  size_t size = 0;
  mid_writer_heap(&w);
  unsigned char* reply = NULL;
  if (mid_encode_decide_request(&w, &request) != 0)
    snprintf(err, sizeof err, "%s: the request does not fit in a frame", o->socket);
  else
    reply = call(o, &w, &size, err, sizeof err);
  mid_writer_free(&w);
  struct mid_decide_reply d;
  if (reply != NULL && mid_decode_decide_reply(reply, size, &d) != 0) {
    bad_reply(o, reply, size, err, sizeof err);
    free(reply);
    reply = NULL;
  }
  if (reply == NULL) {
    say(pamh, LOG_ERR, "denying certificate login as '%s': no decision: %s", kept->user, err);
    return PAM_PERM_DENIED;
  }
  int rc = PAM_SUCCESS;
  if (!d.allowed) {
    char bot[512], key_id[512], name[1100];
    struct mid_string b = d.who.field[MID_ID_BOT], k = d.who.field[MID_ID_KEY_ID];
    snprintf(bot, sizeof bot, "%.*s", (int)b.size, b.data);
    snprintf(key_id, sizeof key_id, "%.*s", (int)k.size, k.data);
    who(name, sizeof name, bot, key_id);
    say(pamh, LOG_NOTICE, "denied %s as '%s': %.*s%s%.*s", name, kept->user, (int)d.reason.size,
        d.reason.data, d.detail.size > 0 ? ": " : "", (int)d.detail.size, d.detail.data);
    rc = PAM_PERM_DENIED;
  } else if (keep) {
    for (int i = 0; i < MID_ID_FIELDS; ++i)
      if ((kept->who[i] = copy(d.who.field[i])) == NULL) rc = PAM_BUF_ERR;
    kept->host_user = d.host_user;
    if ((kept->sudoers_file = copy(d.sudoers_file)) == NULL || (kept->sudoers = copy(d.sudoers)) == NULL)
      rc = PAM_BUF_ERR;
  }
  free(reply);
  return rc;
}

/* The verdict on the login in `pamh`; an allowed certificate login is kept
 * in the handle for the session.
 *
 * sshd's privileged monitor adds the method that completed the login to
 * SSH_AUTH_INFO_0 only after the account check: there it holds just the
 * earlier methods of an AuthenticationMethods chain, and nothing at all for
 * a plain public-key login. So in account, a present SSH_AUTH_INFO_0 without
 * a certificate is no verdict yet (PAM_IGNORE, whatever nocert says); the
 * session, which sees every method, decides. An absent one is no sshd
 * login, and nocert applies at once. */
static int check_login(pam_handle_t* pamh, const struct options* o, int in_account) {
  const char* user = item(pamh, PAM_USER);
  if (user[0] == '\0') {
    say(pamh, LOG_ERR, "no user in the PAM handle");
    return PAM_USER_UNKNOWN;
  }
  struct mid_auth_info* info = malloc(sizeof *info);
  if (info == NULL) return PAM_BUF_ERR;
  char err[512];
  if (shown_certificates(pamh, info, err, sizeof err) != 0) {
    say(pamh, LOG_ERR, "denying '%s': %s", user, err);
    free(info);
    return PAM_PERM_DENIED;
  }
  if (info->count == 0) {
    int from_sshd = pam_getenv(pamh, "SSH_AUTH_INFO_0") != NULL;
    free(info);
    if ((in_account && from_sshd) || !o->deny_without_certificate) return PAM_IGNORE;
    say(pamh, LOG_NOTICE, "denying '%s': the login used no certificate (nocert=deny)", user);
    return PAM_PERM_DENIED;
  }

  struct login* kept = calloc(1, sizeof *kept);
  int rc = PAM_BUF_ERR;
  if (kept == NULL || (kept->user = strdup(user)) == NULL ||
      (kept->source = strdup(source_address(pamh))) == NULL ||
      (kept->certificates = join_certificates(info)) == NULL)
    goto done;
  /* Every certificate that took part must still be allowed; the first one
   * (the first method that succeeded) names the session. */
  for (size_t i = 0; i < info->count; ++i)
    if ((rc = decide(pamh, o, &info->certificates[i], kept, i == 0)) != PAM_SUCCESS) goto done;
  rc = pam_set_data(pamh, DATA_NAME, kept, forget_login);
  if (rc != PAM_SUCCESS) {
    say(pamh, LOG_ERR, "cannot keep the login decision: %s", pam_strerror(pamh, rc));
    goto done;
  }
  kept = NULL; /* the handle's now */
done:
  free_login(kept);
  free(info);
  return rc;
}

/* Sends session.open or session.close for `kept`; 0, or -1 (logged) when
 * the daemon did not record it. */
static int record_session(pam_handle_t* pamh, const struct options* o, const struct login* kept,
                          int open, long long duration) {
  struct mid_session_event event = {open, mid_str(kept->user), {{{0}}}, mid_str(kept->source),
                                    duration < 0 ? 0 : duration};
  for (int i = 0; i < MID_ID_FIELDS; ++i) event.who.field[i] = mid_str(kept->who[i]);
  struct mid_writer w;
  char err[1024];
  size_t size = 0;
  unsigned char* reply = NULL;
  int rc = -1;
  mid_writer_heap(&w);
  if (mid_encode_session_event(&w, &event) != 0)
    snprintf(err, sizeof err, "%s: the event does not fit in a frame", o->socket);
  else
    reply = call(o, &w, &size, err, sizeof err);
  mid_writer_free(&w);
  if (reply != NULL) {
    struct mid_status_reply status;
    if (mid_decode_status_reply(reply, size, &status) != 0)
      bad_reply(o, reply, size, err, sizeof err);
    else if (!status.ok)
      snprintf(err, sizeof err, "%s: the daemon did not record the event", o->socket);
    else
      rc = 0;
    free(reply);
  }
  if (rc != 0) {
    char name[1100];
    who(name, sizeof name, kept->who[MID_ID_BOT], kept->who[MID_ID_KEY_ID]);
    say(pamh, LOG_ERR, "%s of %s as '%s' (correlation id %s) not recorded: %s",
        open ? "session.open" : "session.close", name, kept->user,
        kept->who[MID_ID_CORRELATION_ID], err);
  }
  return rc;
}

/* Whether `kept` decided this very login: the same user, and the same
 * certificates as SSH_AUTH_INFO_0 now shows. */
static int same_login(pam_handle_t* pamh, const struct login* kept) {
  if (kept == NULL || strcmp(kept->user, item(pamh, PAM_USER)) != 0) return 0;
  struct mid_auth_info* info = malloc(sizeof *info);
  char err[512];
  int same = 0;
  if (info != NULL && shown_certificates(pamh, info, err, sizeof err) == 0) {
    char* shown = join_certificates(info);
    same = shown != NULL && strcmp(shown, kept->certificates) == 0;
    free(shown);
  }
  free(info);
  return same;
}

static int put_variable(pam_handle_t* pamh, const char* name, const char* value) {
  char* variable = NULL;
  if (asprintf(&variable, "%s=%s", name, value) < 0) return PAM_BUF_ERR;
  int rc = pam_putenv(pamh, variable);
  if (rc != PAM_SUCCESS)
    say(pamh, LOG_ERR, "cannot export %s: %s", variable, pam_strerror(pamh, rc));
  free(variable);
  return rc;
}

static int open_session(pam_handle_t* pamh, const struct options* o) {
  struct login* kept = kept_login(pamh);
  /* Decide now unless this handle's account check decided the same
   * certificates for the same user: it may not have run, or (sshd) not have
   * seen the last method. */
  if (!same_login(pamh, kept)) {
    int rc = check_login(pamh, o, 0);
    if (rc != PAM_SUCCESS) return rc == PAM_IGNORE ? PAM_IGNORE : PAM_SESSION_ERR;
    kept = kept_login(pamh);
    if (kept == NULL) return PAM_SESSION_ERR;
  }
  int result = PAM_SUCCESS;
  if (put_variable(pamh, "TELEPORT_USERNAME", kept->who[MID_ID_KEY_ID]) != PAM_SUCCESS ||
      put_variable(pamh, "TELEPORT_LOGIN", kept->user) != PAM_SUCCESS ||
      put_variable(pamh, "TELEPORT_ROLES", kept->who[MID_ID_ROLES]) != PAM_SUCCESS ||
      (kept->who[MID_ID_BOT][0] != '\0' &&
       put_variable(pamh, "MACHINEID_BOT", kept->who[MID_ID_BOT]) != PAM_SUCCESS))
    result = PAM_SESSION_ERR;
  if (kept->host_user) {
    char err[1024];
    if (mid_create_home(kept->user, o->skel, err, sizeof err) != 0) {
      say(pamh, LOG_ERR, "home directory of '%s': %s", kept->user, err);
      result = PAM_SESSION_ERR;
    }
    if (kept->sudoers_file[0] != '\0' &&
        mid_install_sudoers(o->sudoers_dir, kept->sudoers_file, kept->sudoers, strlen(kept->sudoers),
                            "/usr/sbin/visudo", err, sizeof err) != 0) {
      say(pamh, LOG_ERR, "sudoers of '%s': %s (no sudo from its roles this session)", kept->user, err);
      result = PAM_SESSION_ERR;
    }
  }
  /* Reported even when something above failed: under "session optional"
   * the session goes ahead all the same. */
  if (record_session(pamh, o, kept, 1, 0) != 0) result = PAM_SESSION_ERR;
  kept->open = 1;
  kept->opened_at = boot_seconds();
  return result;
}

static int close_session(pam_handle_t* pamh, const struct options* o) {
  struct login* kept = kept_login(pamh);
  if (kept == NULL || !kept->open) return PAM_IGNORE; /* we opened nothing here */
  long long duration = boot_seconds() - kept->opened_at;
  kept->open = 0;
  return record_session(pamh, o, kept, 0, duration) == 0 ? PAM_SUCCESS : PAM_SESSION_ERR;
}

EXPORT int pam_sm_acct_mgmt(pam_handle_t* pamh, int flags, int argc, const char** argv) {
  struct options o;
  (void)flags;
  return parse_options(pamh, argc, argv, &o) == 0 ? check_login(pamh, &o, 1) : PAM_SERVICE_ERR;
}

EXPORT int pam_sm_open_session(pam_handle_t* pamh, int flags, int argc, const char** argv) {
  struct options o;
  (void)flags;
  return parse_options(pamh, argc, argv, &o) == 0 ? open_session(pamh, &o) : PAM_SERVICE_ERR;
}

EXPORT int pam_sm_close_session(pam_handle_t* pamh, int flags, int argc, const char** argv) {
  struct options o;
  (void)flags;
  return parse_options(pamh, argc, argv, &o) == 0 ? close_session(pamh, &o) : PAM_SERVICE_ERR;
}

/* sshd and the daemon authenticate the certificate; there is nothing to
 * add to authentication, credentials or passwords. */
EXPORT int pam_sm_authenticate(pam_handle_t* pamh, int flags, int argc, const char** argv) {
  (void)pamh, (void)flags, (void)argc, (void)argv;
  return PAM_IGNORE;
}

EXPORT int pam_sm_setcred(pam_handle_t* pamh, int flags, int argc, const char** argv) {
  (void)pamh, (void)flags, (void)argc, (void)argv;
  return PAM_IGNORE;
}

EXPORT int pam_sm_chauthtok(pam_handle_t* pamh, int flags, int argc, const char** argv) {
  (void)pamh, (void)flags, (void)argc, (void)argv;
  return PAM_IGNORE;
}
