// The command table's parser: getopt_long for every command, and the help
// and errors it prints.
#include "cli.h"

#include <getopt.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "machineid/encoding.h"
#include "machineid/rfc3339.h"

#ifndef MACHINEID_VERSION
#error "MACHINEID_VERSION must be defined (machineidctl/CMakeLists.txt)"
#endif

namespace machineidctl {
namespace {

// getopt_long values: 'h' for --help/-h, these for the rest.
constexpr int kVersion = 1;
constexpr int kFirstOption = 256;

std::string spelled(const Option& o) {
  return std::string("--") + o.name + (o.value ? std::string(" ") + o.value : "");
}

// The synopsis lines of `command` and, for a group, of every command under
// it, each prefixed with its path.
void synopses(const Command& command, const std::string& path,
              std::vector<std::pair<std::string, const Command*>>& out) {
  if (command.subcommands.empty()) {
    std::string_view forms = command.synopsis;
    while (true) {
      auto nl = forms.find('\n');
      std::string form(forms.substr(0, nl));
      out.emplace_back(path + (form.empty() ? "" : " " + form), &command);
      if (nl == std::string_view::npos) break;
      forms.remove_prefix(nl + 1);
    }
    return;
  }
  for (const auto& sub : command.subcommands) synopses(sub, path + " " + sub.name, out);
}

void print_help(const Command& command, const std::string& path, std::FILE* to) {
  std::string text;
  if (command.subcommands.empty()) {
    std::vector<std::pair<std::string, const Command*>> forms;
    synopses(command, path, forms);
    for (std::size_t i = 0; i < forms.size(); ++i)
      text += (i == 0 ? "usage: " : "       ") + forms[i].first + "\n";
    text += std::string("\n") + command.summary + "\n\noptions:\n";
    std::size_t width = 12;  // "-h, --help"
    for (const auto& o : command.options) width = std::max(width, spelled(o).size());
    auto row = [&](const std::string& left, const char* help) {
      text += "  " + left + std::string(width + 2 - left.size(), ' ') + help + "\n";
    };
    for (const auto& o : command.options) row(spelled(o), o.help);
    row("-h, --help", "print this help and exit");
    row("--version", "print the version and exit");
    text += std::string("\nexit status: ") + command.exit_status + "\n";
  } else {
    text +=
        "usage: " + path + " " + command.synopsis + "\n\n" + command.summary + "\n\ncommands:\n";
    for (const auto& sub : command.subcommands) {
      std::vector<std::pair<std::string, const Command*>> forms;
      synopses(sub, sub.name, forms);
      for (std::size_t i = 0; i < forms.size(); ++i) {
        text += "  " + forms[i].first + "\n";
        if (i + 1 == forms.size() || forms[i + 1].second != forms[i].second)
          text += std::string("         ") + forms[i].second->summary + "\n";
      }
    }
    text +=
        "\noptions:\n  -h, --help     print this help and exit\n  --version      print the version "
        "and exit\n";
    text += "\n'" + path + " COMMAND --help' describes a command's options and exit status.\n";
  }
  std::fputs(text.c_str(), to);
}

int usage(const std::string& path, const std::string& message) {
  std::fprintf(stderr, "%s: %s; try '%s --help'\n", path.c_str(),
               machineid::escape_untrusted(message).c_str(), path.c_str());
  return kExitUsage;
}

// What getopt_long refused, in words: the option as typed.
std::string refused(const Command& command, const std::vector<option>& longopts, int c,
                    const char* arg) {
  auto name_of = [&](int val) -> std::string {
    if (val == 'h') return "--help";
    if (val == kVersion) return "--version";
    if (val >= kFirstOption) return std::string("--") + command.options[val - kFirstOption].name;
    return std::string("-") + static_cast<char>(val);
  };
  if (c == ':') {
    const Option& o = command.options[optopt - kFirstOption];
    return "option '--" + std::string(o.name) + "' needs a value (" + spelled(o) + ")";
  }
  if (optopt >= kFirstOption || optopt == 'h' || optopt == kVersion)
    return "option '" + name_of(optopt) + "' takes no value";
  if (optopt != 0) return "unknown option '" + name_of(optopt) + "'";
  std::string typed = arg != nullptr ? arg : "?";
  typed = typed.substr(0, typed.find('='));
  std::string candidates;
  if (typed.starts_with("--") && typed.size() > 2) {
    for (const auto& o : longopts)
      if (o.name != nullptr && std::string_view(o.name).starts_with(typed.substr(2)))
        candidates += (candidates.empty() ? "" : ", ") + std::string("--") + o.name;
  }
  if (candidates.find(',') != std::string::npos)
    return "ambiguous option '" + typed + "' (" + candidates + ")";
  return "unknown option '" + typed + "'";
}

}  // namespace

std::optional<std::string> Args::value(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::value_or(std::string_view name, std::string fallback) const {
  auto v = value(name);
  return v ? *v : fallback;
}

int Args::usage_error(std::string_view message) const {
  return usage(command_, std::string(message));
}

void Args::say(std::string_view message) const {
  std::cerr << command_ << ": " << machineid::escape_untrusted(message) << "\n";
}

int Args::fail(int code, std::string_view message) const {
  say(message);
  return code;
}

int run_command(const Command& command, const std::string& path, int argc, char** argv) {
  const bool group = !command.subcommands.empty();
  std::vector<option> longopts;
  for (std::size_t i = 0; i < command.options.size(); ++i) {
    const Option& o = command.options[i];
    longopts.push_back(option{o.name, o.value != nullptr ? required_argument : no_argument, nullptr,
                              kFirstOption + static_cast<int>(i)});
  }
  longopts.push_back(option{"help", no_argument, nullptr, 'h'});
  longopts.push_back(option{"version", no_argument, nullptr, kVersion});
  longopts.push_back(option{nullptr, 0, nullptr, 0});

  Args args;
  args.command_ = path;
  // A group stops at its first operand, the subcommand, whose options are
  // its own; a command takes its options and operands in any order.
  optind = 0;  // glibc: start afresh, as this process may parse twice
  opterr = 0;
  for (;;) {
    int c = getopt_long(argc, argv, group ? "+:h" : ":h", longopts.data(), nullptr);
    if (c == -1) break;
    if (c == 'h') {
      print_help(command, path, stdout);
      return kExitOk;
    }
    if (c == kVersion) {
      std::printf("machineidctl (machineid-host) %s\n", MACHINEID_VERSION);
      return kExitOk;
    }
    if (c == ':' || c == '?')
      return usage(path, refused(command, longopts, c, optind > 0 ? argv[optind - 1] : nullptr));
    const Option& o = command.options[c - kFirstOption];
    args.values_[o.name] = optarg != nullptr ? optarg : "";
  }
  const int first_operand = optind;
  for (int i = first_operand; i < argc; ++i) args.operands_.emplace_back(argv[i]);

  if (!group) {
    if (args.operands_.size() > command.max_operands)
      return usage(path, "unexpected argument '" + args.operands_[command.max_operands] + "'");
    return command.handler(args);
  }
  if (args.operands_.empty()) {
    print_help(command, path, stderr);
    return kExitUsage;
  }
  auto find = [&](const Command& in, const std::string& name) -> const Command* {
    for (const auto& sub : in.subcommands)
      if (name == sub.name) return &sub;
    return nullptr;
  };
  // "help [COMMAND...]": that command's help.
  if (args.operands_[0] == "help") {
    const Command* target = &command;
    std::string target_path = path;
    for (std::size_t i = 1; i < args.operands_.size(); ++i) {
      const Command* sub = target->subcommands.empty() ? nullptr : find(*target, args.operands_[i]);
      if (sub == nullptr) return usage(path, "unknown command '" + args.operands_[i] + "'");
      target = sub;
      target_path += " " + args.operands_[i];
    }
    print_help(*target, target_path, stdout);
    return kExitOk;
  }
  const Command* sub = find(command, args.operands_[0]);
  if (sub == nullptr) return usage(path, "unknown command '" + args.operands_[0] + "'");
  return run_command(*sub, path + " " + sub->name, argc - first_operand, argv + first_operand);
}

std::optional<std::int64_t> parse_time(std::string_view text) {
  if (!text.empty() && text.size() <= 18 &&
      text.find_first_not_of("0123456789") == std::string_view::npos)
    return std::stoll(std::string(text));
  auto t = machineid::parse_rfc3339(text);
  if (!t.ok()) return std::nullopt;
  return *t;
}

void print_escaped(std::string_view line) {
  std::cout << machineid::escape_untrusted(line) << "\n";
}

}  // namespace machineidctl
