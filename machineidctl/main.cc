// machineidctl: the administrator's command line. One table of commands;
// cli.cc parses every command line against it.
#include "cli.h"
#include "commands.h"

namespace machineidctl {
namespace {

constexpr Option kVerifyOptions[] = {
    kConfigOption,
    {"cert", "FILE",
     "the certificate: a key-cert.pub file or an SSH_AUTH_INFO_0-style line (required)"},
    {"login", "NAME", "the login to decide for (required)"},
    {"from", "IP", "the client's address, checked against source-address"},
    {"at", "TIME",
     "decide at this time: unix seconds or RFC 3339 (2026-12-02T10:00:00Z); default now"},
    kJsonOption,
};
constexpr Option kDaemonOptions[] = {kConfigOption, kSocketOption, kJsonOption};
constexpr Option kUsersOptions[] = {
    kConfigOption,
    kSocketOption,
    {"forget", "LOGIN", "retire this host user (root only); its uid is never given again"},
    kJsonOption};
constexpr Option kSessionsOptions[] = {
    kConfigOption,
    kSocketOption,
    {"kill", "ID",
     "end this session (root only): SIGHUP to its sshd process, SIGKILL to what it runs a second later"},
    kJsonOption};
constexpr Option kAuditOptions[] = {
    kConfigOption,
    {"file", "PATH", "read this JSON-lines file instead of where the configuration says"},
    {"since", "TIME", "from this time on: unix seconds, RFC 3339, or a duration ago (10m, 24h)"},
    {"bot", "NAME", "only this bot's events"},
    kJsonOption,
};
constexpr Option kDoctorOptions[] = {
    kConfigOption,
    {"sshd", "PATH",
     "the sshd binary whose effective configuration is checked (default /usr/sbin/sshd)"},
    {"sshd-config", "FILE", "sshd's configuration file (default: sshd's own)"},
    {"pam-dir", "DIR", "the PAM configuration directory (default /etc/pam.d)"},
    {"pam-service", "NAME", "sshd's PAM service (default sshd)"},
    {"nsswitch", "FILE", "the NSS configuration (default /etc/nsswitch.conf)"},
    {"authselect-dir", "DIR",
     "authselect's directory, to tell whether it manages the NSS configuration (default "
     "/etc/authselect)"},
    kJsonOption,
};
constexpr Option kImportOptions[] = {
    kConfigOption,
    {"dry-run", nullptr, "say what would be written, replaced and removed; change nothing"},
    {"prune", nullptr, "also remove files an earlier import wrote whose resource is gone"},
    kJsonOption,
};

constexpr const char* kVerifyExit = "0 allowed, 1 denied, 2 usage, configuration or I/O error";

constexpr Command kPolicyCommands[] = {
    {"import", policy_import,
     "split a `tctl get roles,locks` stream into roles_dir and locks_dir (validated first)",
     "[--config FILE] [--dry-run] [--prune] [--json] FILE|-", kImportOptions,
     "0 imported, 1 refused (nothing written), 2 usage, configuration or I/O error", 1},
};

constexpr Command kCommands[] = {
    {"verify", verify, "decide offline whether the certificate may log in as NAME on this node",
     "--config FILE --cert FILE --login NAME [--from IP] [--at TIME] [--json]", kVerifyOptions,
     kVerifyExit},
    {"status", status, "what the running daemon has in force, its load errors and counters",
     "[--config FILE | --socket PATH] [--json]", kDaemonOptions,
     "0 all loaded, 1 load errors or a refused request, 2 usage or configuration error, 3 daemon "
     "unreachable"},
    {"reload", reload, "make the daemon re-read its configuration and policy files (root only)",
     "[--config FILE | --socket PATH] [--json]", kDaemonOptions,
     "0 reloaded, 1 load errors or a refused request, 2 usage or configuration error, 3 daemon "
     "unreachable"},
    {"audit", audit,
     "the audit trail: decisions and sessions, from journald or the JSON-lines file",
     "[--config FILE | --file PATH] [--since TIME] [--bot NAME] [--json]", kAuditOptions,
     "0 done, 2 usage, configuration or I/O error"},
    {"doctor", doctor,
     "check sshd, PAM and NSS wiring, the daemon, the CA file, the clock and the state dir",
     "[--config FILE] [--sshd PATH] [--sshd-config FILE] [--pam-dir DIR] [--pam-service NAME] "
     "[--nsswitch FILE] [--authselect-dir DIR] "
     "[--json]",
     kDoctorOptions, "0 no problems, 1 problems found, 2 usage or configuration error"},
    {"users", users, "the host users made for bots and roles, or retire one with --forget",
     "[--config FILE | --socket PATH] [--json]\n--forget LOGIN [--config FILE | --socket PATH] "
     "[--json]",
     kUsersOptions,
     "0 done, 1 refused or host-user database unusable, 2 usage or configuration error, 3 daemon "
     "unreachable"},
    {"sessions", sessions, "the certificate sessions open on this node, or end one with --kill",
     "[--config FILE | --socket PATH] [--json]\n--kill ID [--config FILE | --socket PATH] [--json]",
     kSessionsOptions,
     "0 done, 1 refused (an unknown session, not root), 2 usage or configuration error, 3 daemon "
     "unreachable"},
    {"policy",
     nullptr,
     "the node's roles and locks",
     "COMMAND [OPTIONS]",
     {},
     "",
     0,
     kPolicyCommands},
};

constexpr Command kMachineidctl = {
    "machineidctl", nullptr, "Check and operate machineid-host.", "COMMAND [OPTIONS]", {}, "", 0,
    kCommands};

}  // namespace
}  // namespace machineidctl

int main(int argc, char** argv) {
  return machineidctl::run_command(machineidctl::kMachineidctl, "machineidctl", argc, argv);
}
