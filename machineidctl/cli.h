// machineidctl's command table and its one option parser (getopt_long).
//
// A command is a row of a table: its name, its handler, a summary, its
// synopsis and its options. The parser gives every command --help, --version,
// "--opt value" and "--opt=value", and one way of refusing what it does not
// know; a handler sees only the parsed Args.
#pragma once

#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace machineidctl {

// Exit codes. verify's are SPEC §5's; every other command's are 0 done,
// 1 findings (problems found, files that do not load, a refused request),
// 2 usage or configuration error, 3 daemon unreachable.
inline constexpr int kExitOk = 0;
inline constexpr int kExitAllowed = 0;
inline constexpr int kExitDenied = 1;
inline constexpr int kExitFindings = 1;
inline constexpr int kExitUsage = 2;  // usage, config or I/O error
inline constexpr int kExitUnreachable = 3;

// One long option of a command: --name, or --name VALUE when `value` names
// the value (its name in --help, "FILE").
struct Option {
  const char* name;
  const char* value;  // nullptr: a flag
  const char* help;   // one line
};

// Options several commands share.
inline constexpr Option kConfigOption = {
    "config", "FILE", "the configuration (default /etc/machineid/verifierd.toml)"};
inline constexpr Option kSocketOption = {
    "socket", "PATH", "the daemon's socket (default: [daemon] socket of the configuration)"};
inline constexpr Option kJsonOption = {"json", nullptr, "print one JSON object instead of text"};

struct Command;

// A command's parsed command line.
class Args {
 public:
  // The command as typed after "machineidctl": "verify", "policy import".
  const std::string& command() const { return command_; }
  // Whether --name was given.
  bool has(std::string_view name) const { return values_.find(name) != values_.end(); }
  // The value of the last --name given, or nullopt.
  std::optional<std::string> value(std::string_view name) const;
  std::string value_or(std::string_view name, std::string fallback) const;
  // Arguments that are not options, in order.
  const std::vector<std::string>& operands() const { return operands_; }

  // "machineidctl COMMAND: MESSAGE; try 'machineidctl COMMAND --help'" on
  // stderr, one line; returns kExitUsage.
  int usage_error(std::string_view message) const;
  // "machineidctl COMMAND: MESSAGE" on stderr, escaped.
  void say(std::string_view message) const;
  // say(message); returns `code`.
  int fail(int code, std::string_view message) const;

 private:
  friend int run_command(const Command&, const std::string&, int, char**);
  std::string command_;
  std::map<std::string, std::string, std::less<>> values_;  // flags map to ""
  std::vector<std::string> operands_;
};

// A row of the command table. A command with subcommands ("policy") has no
// handler: its first operand names the subcommand.
struct Command {
  const char* name;
  int (*handler)(const Args&);
  const char* summary;   // one line, for the list of commands and --help
  const char* synopsis;  // what follows the name in "usage:"; '\n' between alternative forms
  std::span<const Option> options = {};
  const char* exit_status =
      "0 done, 1 findings, 2 usage or configuration error, 3 daemon unreachable";
  std::size_t max_operands = 0;
  std::span<const Command> subcommands = {};
};

// Parses argv (argv[0] is the command's own name) against `command` and
// runs its handler, or its subcommand; `path` is the command as typed
// ("machineidctl policy"). Returns the exit code.
int run_command(const Command& command, const std::string& path, int argc, char** argv);

// Unix seconds, or an RFC 3339 time ("2026-12-02T10:00:00Z", "…+01:00").
std::optional<std::int64_t> parse_time(std::string_view text);

// A line of text that carries certificate, policy or daemon text, escaped
// (machineid::escape_untrusted) on its way to standard output.
void print_escaped(std::string_view line);

// One JSON object on one line of standard output; bytes that are not UTF-8
// become U+FFFD rather than failing the dump.
template <class Json>
void print_json(const Json& j) {
  std::cout << j.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
}

}  // namespace machineidctl
