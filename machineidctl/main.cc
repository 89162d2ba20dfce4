// machineidctl: the administrator's command line.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"

namespace {

constexpr const char* kUsage =
    "usage: machineidctl COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  verify --config FILE --cert FILE --login NAME [--from IP] [--at UNIX_SECONDS] [--json]\n"
    "         decide offline whether the certificate may log in as NAME on this node\n"
    "         (exit 0 allowed, 1 denied, 2 usage, config or I/O error)\n"
    "  status [--config FILE | --socket PATH] [--json]\n"
    "         what the running daemon has in force, its load errors and counters\n"
    "  reload [--config FILE | --socket PATH]\n"
    "         make the daemon re-read its configuration and policy files (root only)\n"
    "  audit [--config FILE | --file PATH] [--since SECONDS|DURATION] [--bot NAME] [--json]\n"
    "         the audit trail: decisions and sessions, from journald or the JSON-lines file\n"
    "  doctor [--config FILE] [--sshd-config FILE] [--pam-dir DIR] [--nsswitch FILE]\n"
    "         check sshd, PAM and NSS wiring, the daemon, the CA file, the clock and the state dir\n"
    "  users [--config FILE | --socket PATH] [--json]\n"
    "         the host users made for bots and roles: login, uid, groups, first and last login, bot\n"
    "  users --forget LOGIN [--config FILE | --socket PATH]\n"
    "         retire a host user (root only); its uid is never given again\n"
    "  policy import [--config FILE] [--dry-run] [--prune] FILE|-\n"
    "         split a `tctl get roles,locks` stream into roles_dir and locks_dir (validated first)\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return machineidctl::kExitUsage;
  }
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "verify") return machineidctl::verify(args);
  if (command == "status") return machineidctl::status(args);
  if (command == "reload") return machineidctl::reload(args);
  if (command == "audit") return machineidctl::audit(args);
  if (command == "doctor") return machineidctl::doctor(args);
  if (command == "users") return machineidctl::users(args);
  if (command == "policy") return machineidctl::policy(args);
  std::fprintf(stderr, "machineidctl: unknown command '%s'\n\n%s", command.c_str(), kUsage);
  return machineidctl::kExitUsage;
}
