// pam_machineid.so (SPEC §6): the PAM half of a certificate login.
//
//   account  asks machineid-verifierd again about the certificates in
//            SSH_AUTH_INFO_0, now knowing the client's address; a login
//            without a certificate follows nocert=ignore|deny.
//   session  open: decides as account does when account did not see the
//            whole login (see check_login); then TELEPORT_USERNAME,
//            TELEPORT_LOGIN, TELEPORT_ROLES and (bots) MACHINEID_BOT in the
//            environment, the home directory of a host user on its first
//            login, and a session.open event carrying the login decision's
//            correlation id.
//            close: a session.close event with the session's duration.
//   auth, setcred, chauthtok: PAM_IGNORE, so a stray stack line is harmless
//            (Linux-PAM denies for a function a listed module lacks).
//
// Options: socket=PATH, nocert=ignore|deny, skel=DIR (default /etc/skel).
// An unknown or malformed option is logged and refuses with
// PAM_SERVICE_ERR: a typo must not quietly weaken the check.
//
// What a login carries from account to session close lives in its PAM
// handle (pam_set_data): one process, sshd's monitor or a test, may hold
// many handles, so the module keeps no global state.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <syslog.h>
#include <time.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authinfo.h"
#include "home.h"
#include "machineid/client.h"
#include "machineid/protocol.h"

namespace {

using namespace machineid;

// sshd, and the client behind it, wait for every call; the principals
// helper gets as long.
constexpr int kDeadlineMs = 1000;
constexpr const char* kDataName = "pam_machineid.login";

struct Options {
  std::string socket{kDefaultSocketPath};
  bool deny_without_certificate = false;
  std::string skel = "/etc/skel";
};

// A certificate login the daemon allowed, kept in its PAM handle.
struct Login {
  std::string login, source;
  std::vector<pam::CertificateLogin> certificates;  // all of them allowed
  DecideReply decision;                             // the first one's
  std::optional<std::int64_t> opened_at;            // boot_seconds() while our session is open
};

void log(pam_handle_t* pamh, int priority, const std::string& message) {
  pam_syslog(pamh, priority, "%s", message.c_str());
}

std::optional<Options> parse_options(pam_handle_t* pamh, int argc, const char** argv) {
  Options options;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg(argv[i]);
    auto value = [&](std::string_view name) -> std::optional<std::string> {
      if (!arg.starts_with(name) || arg.size() == name.size()) return std::nullopt;
      return std::string(arg.substr(name.size()));
    };
    if (auto socket = value("socket=")) {
      options.socket = *socket;
    } else if (auto skel = value("skel=")) {
      options.skel = *skel;
    } else if (arg == "nocert=ignore" || arg == "nocert=deny") {
      options.deny_without_certificate = arg == "nocert=deny";
    } else {
      log(pamh, LOG_ERR, "unknown or malformed option '" + std::string(arg) + "'; refusing");
      return std::nullopt;
    }
  }
  return options;
}

std::string item(pam_handle_t* pamh, int type) {
  const void* value = nullptr;
  if (pam_get_item(pamh, type, &value) != PAM_SUCCESS || value == nullptr) return "";
  return static_cast<const char*>(value);
}

// PAM_RHOST when it is an address: a host name (sshd's UseDNS) cannot be
// matched against a certificate's source-address, which sshd has already
// enforced anyway.
std::string source_address(pam_handle_t* pamh) {
  std::string rhost = item(pamh, PAM_RHOST);
  in6_addr address{};
  if (inet_pton(AF_INET, rhost.c_str(), &address) == 1 ||
      inet_pton(AF_INET6, rhost.c_str(), &address) == 1)
    return rhost;
  return "";
}

// Seconds since boot, suspend included: a session's duration.
std::int64_t boot_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return ts.tv_sec;
}

std::string who(const DecideReply& d) {
  return d.bot.empty() ? "key id '" + d.key_id + "'" : "bot '" + d.bot + "'";
}

// The daemon's error message, or what was wrong with its reply.
Error bad_reply(const std::string& socket, Bytes reply, const Error& decoding) {
  auto message = decode_error(reply);
  return make_error(Errc::io,
                    socket + ": " + (message.ok() ? *message : "bad reply: " + decoding.message));
}

Result<DecideReply> ask(const std::string& socket, const DecideRequest& request) {
  MID_TRY(reply, call_daemon(socket, encode(request), kDeadlineMs));
  auto decision = decode_decide_reply(reply);
  if (!decision.ok()) return bad_reply(socket, reply, decision.error());
  return decision;
}

Status report(const std::string& socket, const SessionEvent& event) {
  MID_TRY(reply, call_daemon(socket, encode(event), kDeadlineMs));
  auto status = decode_status_reply(reply);
  if (!status.ok()) return bad_reply(socket, reply, status.error());
  if (!status->ok) return make_error(Errc::io, socket + ": the daemon did not record the event");
  return {};
}

void forget_login(pam_handle_t*, void* data, int) { delete static_cast<Login*>(data); }

Login* kept_login(pam_handle_t* pamh) {
  const void* data = nullptr;
  if (pam_get_data(pamh, kDataName, &data) != PAM_SUCCESS) return nullptr;
  // Ours, and mutable: only pam_get_data's signature makes it const.
  return static_cast<Login*>(const_cast<void*>(data));
}

// The certificates in SSH_AUTH_INFO_0 (none when it is not set), or an
// error naming the malformed line.
Result<std::vector<pam::CertificateLogin>> shown_certificates(pam_handle_t* pamh) {
  const char* info = pam_getenv(pamh, "SSH_AUTH_INFO_0");
  return pam::certificates_in_auth_info(info == nullptr ? "" : info);
}

// The verdict on the login in `pamh`; an allowed certificate login is kept
// in the handle for the session.
//
// sshd's privileged monitor adds the method that completed the login to
// SSH_AUTH_INFO_0 only after the account check: there it holds just the
// earlier methods of an AuthenticationMethods chain, and nothing at all for
// a plain public-key login. So in account, a present SSH_AUTH_INFO_0 without
// a certificate is no verdict yet (PAM_IGNORE, whatever nocert says); the
// session, which sees every method, decides. An absent one is no sshd
// login, and nocert applies at once.
int check_login(pam_handle_t* pamh, const Options& options, bool in_account) {
  std::string user = item(pamh, PAM_USER);
  if (user.empty()) {
    log(pamh, LOG_ERR, "no user in the PAM handle");
    return PAM_USER_UNKNOWN;
  }
  auto certificates = shown_certificates(pamh);
  if (!certificates.ok()) {
    log(pamh, LOG_ERR, "denying '" + user + "': " + certificates.error().message);
    return PAM_PERM_DENIED;
  }
  if (certificates->empty()) {
    bool from_sshd = pam_getenv(pamh, "SSH_AUTH_INFO_0") != nullptr;
    if ((in_account && from_sshd) || !options.deny_without_certificate) return PAM_IGNORE;
    log(pamh, LOG_NOTICE, "denying '" + user + "': the login used no certificate (nocert=deny)");
    return PAM_PERM_DENIED;
  }

  auto kept = std::make_unique<Login>();
  kept->login = user;
  kept->source = source_address(pamh);
  // Every certificate that took part must still be allowed; the first one
  // (the first method that succeeded) names the session.
  for (const auto& certificate : *certificates) {
    auto decision = ask(options.socket, {Asker::pam, user, certificate.key_type,
                                         certificate.certificate, kept->source});
    if (!decision.ok()) {
      log(pamh, LOG_ERR,
          "denying certificate login as '" + user + "': no decision: " + decision.error().message);
      return PAM_PERM_DENIED;
    }
    if (!decision->allowed) {
      log(pamh, LOG_NOTICE,
          "denied " + who(*decision) + " as '" + user + "': " + decision->reason +
              (decision->detail.empty() ? "" : ": " + decision->detail));
      return PAM_PERM_DENIED;
    }
    if (&certificate == &certificates->front()) kept->decision = std::move(*decision);
  }
  kept->certificates = std::move(*certificates);
  int rc = pam_set_data(pamh, kDataName, kept.get(), forget_login);
  if (rc != PAM_SUCCESS) {
    log(pamh, LOG_ERR, std::string("cannot keep the login decision: ") + pam_strerror(pamh, rc));
    return rc;
  }
  kept.release();
  return PAM_SUCCESS;
}

// Sends session.open or session.close for `kept`; false, and logged, when
// the daemon did not record it.
bool record_session(pam_handle_t* pamh, const Options& options, const Login& kept, bool open,
                    std::int64_t duration) {
  const DecideReply& d = kept.decision;
  SessionEvent event;
  event.open = open;
  event.login = kept.login;
  event.correlation_id = d.correlation_id;
  event.key_id = d.key_id;
  event.bot = d.bot;
  event.bot_instance = d.bot_instance;
  event.roles = d.roles;
  event.serial = d.serial;
  event.cert_fp = d.cert_fp;
  event.ca_fp = d.ca_fp;
  event.source = kept.source;
  event.duration = duration;
  auto sent = report(options.socket, event);
  if (!sent.ok())
    log(pamh, LOG_ERR,
        std::string(open ? "session.open" : "session.close") + " of " + who(d) + " as '" +
            kept.login + "' (correlation id " + d.correlation_id +
            ") not recorded: " + sent.error().message);
  return sent.ok();
}

int open_session(pam_handle_t* pamh, const Options& options) {
  Login* kept = kept_login(pamh);
  auto shown = shown_certificates(pamh);
  // Decide now unless this handle's account check decided the same
  // certificates for the same user: it may not have run, or (sshd) not have
  // seen the last method.
  if (kept == nullptr || kept->login != item(pamh, PAM_USER) || !shown.ok() ||
      kept->certificates != *shown) {
    int rc = check_login(pamh, options, false);
    if (rc != PAM_SUCCESS) return rc == PAM_IGNORE ? PAM_IGNORE : PAM_SESSION_ERR;
    kept = kept_login(pamh);
  }
  const DecideReply& d = kept->decision;
  int result = PAM_SUCCESS;
  std::vector<std::string> variables = {"TELEPORT_USERNAME=" + d.key_id,
                                        "TELEPORT_LOGIN=" + kept->login,
                                        "TELEPORT_ROLES=" + d.roles};
  if (!d.bot.empty()) variables.push_back("MACHINEID_BOT=" + d.bot);
  for (const std::string& variable : variables) {
    if (int rc = pam_putenv(pamh, variable.c_str()); rc != PAM_SUCCESS) {
      log(pamh, LOG_ERR, "cannot export " + variable + ": " + pam_strerror(pamh, rc));
      result = PAM_SESSION_ERR;
    }
  }
  if (d.host_user) {
    if (auto made = pam::create_home(kept->login, options.skel); !made.ok()) {
      log(pamh, LOG_ERR, "home directory of '" + kept->login + "': " + made.error().message);
      result = PAM_SESSION_ERR;
    }
  }
  // Reported even when something above failed: under "session optional"
  // the session goes ahead all the same.
  if (!record_session(pamh, options, *kept, true, 0)) result = PAM_SESSION_ERR;
  kept->opened_at = boot_seconds();
  return result;
}

int close_session(pam_handle_t* pamh, const Options& options) {
  Login* kept = kept_login(pamh);
  if (kept == nullptr || !kept->opened_at) return PAM_IGNORE;  // we opened nothing here
  std::int64_t duration = boot_seconds() - *kept->opened_at;
  kept->opened_at.reset();
  return record_session(pamh, options, *kept, false, duration) ? PAM_SUCCESS : PAM_SESSION_ERR;
}

// Runs one entry point with its options. No exception may reach the
// application, which is C.
template <class F>
int entry(pam_handle_t* pamh, int argc, const char** argv, F body) {
  try {
    auto options = parse_options(pamh, argc, argv);
    return options ? body(pamh, *options) : PAM_SERVICE_ERR;
  } catch (const std::bad_alloc&) {
    return PAM_BUF_ERR;
  } catch (const std::exception& e) {
    pam_syslog(pamh, LOG_CRIT, "%s", e.what());
    return PAM_SERVICE_ERR;
  }
}

}  // namespace

extern "C" {

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t* pamh, int, int argc, const char** argv) {
  return entry(pamh, argc, argv,
               [](pam_handle_t* h, const Options& o) { return check_login(h, o, true); });
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t* pamh, int, int argc, const char** argv) {
  return entry(pamh, argc, argv, open_session);
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t* pamh, int, int argc, const char** argv) {
  return entry(pamh, argc, argv, close_session);
}

// sshd and the daemon authenticate the certificate; there is nothing to
// add to authentication, credentials or passwords.
PAM_EXTERN int pam_sm_authenticate(pam_handle_t*, int, int, const char**) { return PAM_IGNORE; }
PAM_EXTERN int pam_sm_setcred(pam_handle_t*, int, int, const char**) { return PAM_IGNORE; }
PAM_EXTERN int pam_sm_chauthtok(pam_handle_t*, int, int, const char**) { return PAM_IGNORE; }

}  // extern "C"
