// machineid-principals [--socket PATH] USER KEYTYPE BASE64CERT
//
// sshd's AuthorizedPrincipalsCommand (%u %t %k). Prints USER, after the
// authorized_keys options the certificate's roles call for, when
// machineid-verifierd allows the certificate to log in as USER; otherwise
// prints nothing and exits non-zero. Anything unexpected denies.
#include <cstdio>
#include <cstring>
#include <string>

#include "machineid/client.h"
#include "machineid/protocol.h"

namespace {

// sshd waits for us; a login must not wait longer than this for the daemon.
constexpr int kDeadlineMs = 1000;

int deny(const std::string& why) {
  std::fprintf(stderr, "machineid-principals: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path(machineid::kDefaultSocketPath);
  int i = 1;
  if (i + 1 < argc && std::strcmp(argv[i], "--socket") == 0) {
    socket_path = argv[i + 1];
    i += 2;
  }
  if (argc - i != 3) return deny("usage: machineid-principals [--socket PATH] USER KEYTYPE BASE64CERT");

  machineid::DecideRequest request;
  request.asker = machineid::Asker::principals;
  request.login = argv[i];
  request.key_type = argv[i + 1];
  request.certificate = argv[i + 2];
  auto reply = machineid::call_daemon(socket_path, machineid::encode(request), kDeadlineMs);
  if (!reply.ok()) return deny("denying: " + reply.error().message);
  auto decision = machineid::decode_decide_reply(*reply);
  if (!decision.ok()) {
    auto error = machineid::decode_error(*reply);
    return deny("denying: " + (error.ok() ? *error : "bad reply: " + decision.error().message));
  }
  if (!decision->allowed) return deny("denied: " + decision->reason + ": " + decision->detail);
  // As an AuthorizedPrincipalsFile line: options the roles call for, then the login.
  if (decision->key_options.empty()) {
    std::printf("%s\n", request.login.c_str());
  } else {
    std::printf("%s %s\n", decision->key_options.c_str(), request.login.c_str());
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}
