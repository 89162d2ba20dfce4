#include "machineid/mid_authinfo.h"

#include <stdio.h>
#include <string.h>

static int alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
static int name_char(char c) { return alnum(c) || c == '-' || c == '_' || c == '.' || c == '@'; }
static int method_char(char c) { return name_char(c) || c == '/'; }
static int base64_char(char c) { return alnum(c) || c == '+' || c == '/' || c == '='; }
static int printable(char c) { return c >= 0x20 && c <= 0x7e; }

static int all_of(const char* s, size_t n, int (*allowed)(char)) {
  for (size_t i = 0; i < n; ++i)
    if (!allowed(s[i])) return 0;
  return 1;
}

static int equals(const char* s, size_t n, const char* literal) {
  return strlen(literal) == n && memcmp(s, literal, n) == 0;
}

/* sshd records the primary method name; older releases recorded the
 * host-bound synonym of a public-key login as sent by the client. */
static int is_publickey(const char* s, size_t n) {
  return equals(s, n, "publickey") || equals(s, n, "publickey-hostbound-v00@openssh.com");
}

static int ends_with(const char* s, size_t n, const char* suffix) {
  size_t k = strlen(suffix);
  return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int refuse(int code, char* err, size_t errlen, const char* message, size_t line) {
  if (err != NULL && errlen > 0) {
    if (line > 0)
      snprintf(err, errlen, "SSH_AUTH_INFO_0 line %zu: %s", line, message);
    else
      snprintf(err, errlen, "SSH_AUTH_INFO_0: %s", message);
  }
  return code;
}

int mid_auth_info_parse(const char* info, size_t size, struct mid_auth_info* out, char* err,
                        size_t errlen) {
  out->count = 0;
  if (err != NULL && errlen > 0) err[0] = '\0';
  if (size > MID_AUTHINFO_MAX_BYTES)
    return refuse(MID_AUTHINFO_LIMIT, err, errlen, "longer than 131072 bytes", 0);
  /* Every line ends in a newline; the last one may not. */
  if (size > 0 && info[size - 1] == '\n') --size;
  if (size == 0) return 0;
  size_t line_no = 0;
  for (size_t begin = 0; begin <= size;) {
    const char* nl = memchr(info + begin, '\n', size - begin);
    size_t end = nl != NULL ? (size_t)(nl - info) : size;
    const char* line = info + begin;
    size_t n = end - begin;
    begin = end + 1;
    if (++line_no > MID_AUTHINFO_MAX_LINES) {
      out->count = 0;
      return refuse(MID_AUTHINFO_LIMIT, err, errlen, "more than 16 lines", 0);
    }
    int code = MID_AUTHINFO_MALFORMED;
    const char* why = NULL;
    const char* space = memchr(line, ' ', n);
    size_t method_n = space != NULL ? (size_t)(space - line) : n;
    if (n == 0)
      why = "empty line";
    else if (!all_of(line, n, printable))
      why = "control character";
    else if (method_n == 0 || !all_of(line, method_n, method_char))
      why = "bad method name";
    if (why != NULL) {
      out->count = 0;
      return refuse(code, err, errlen, why, line_no);
    }
    if (!is_publickey(line, method_n)) continue; /* no certificate can be there */
    const char* rest = space != NULL ? space + 1 : line + n;
    size_t rest_n = (size_t)(line + n - rest);
    const char* second = memchr(rest, ' ', rest_n);
    size_t type_n = second != NULL ? (size_t)(second - rest) : rest_n;
    const char* key = second != NULL ? second + 1 : rest + rest_n;
    size_t key_n = (size_t)(line + n - key);
    if (type_n == 0 || key_n == 0 || !all_of(rest, type_n, name_char) ||
        !all_of(key, key_n, base64_char)) {
      out->count = 0;
      return refuse(code, err, errlen, "not \"publickey KEYTYPE BASE64\"", line_no);
    }
    if (ends_with(rest, type_n, MID_CERT_TYPE_SUFFIX)) {
      struct mid_cert_login* c = &out->certificates[out->count++];
      c->key_type.data = rest;
      c->key_type.size = type_n;
      c->certificate.data = key;
      c->certificate.size = key_n;
    }
  }
  return 0;
}
