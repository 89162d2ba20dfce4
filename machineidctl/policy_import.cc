// machineidctl policy import: split a `tctl get roles,locks` YAML stream into
// one file per role in roles_dir and one per lock in locks_dir, after
// validating the whole stream with the same parser the daemon uses.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "machineid/client.h"
#include "machineid/config.h"
#include "machineid/io.h"
#include "machineid/protocol.h"
#include "machineid/resources.h"

namespace machineidctl {
namespace {

// The first line of every file the import writes; --prune removes only
// files that start with it, and an import replaces only such files (or a
// hand-placed file holding exactly the resource it replaces).
constexpr std::string_view kMarker = "# machineidctl policy import";
// Longest resource name that still makes a file name ("<name>.yaml").
constexpr std::size_t kMaxNameBytes = 250;
constexpr int kReloadDeadlineMs = 10000;

constexpr const char* kUsage =
    "usage: machineidctl policy import [--config FILE] [--dry-run] [--prune] FILE|-\n";

enum class Kind { role, lock };

const char* kind_name(Kind k) { return k == Kind::role ? "role" : "lock"; }

// One role or lock document of the stream, and where it goes.
struct Document {
  Kind kind;
  std::string name;
  std::string text;  // the document as it appeared, without its "---" line
  int line = 0;      // its first line in the stream
  std::string path;  // the file it is written to
};

struct Options {
  std::string config = std::string(machineid::kDefaultConfigPath);
  std::string input;
  bool dry_run = false;
  bool prune = false;
};

bool is_separator(std::string_view line) {
  return line.substr(0, 3) == "---" &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
}

bool is_blank_or_comment(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    std::size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#') return false;
    pos = end + 1;
  }
  return true;
}

// Splits a YAML stream at its "---" and "..." lines. Text after "---" on
// the same line begins the next document. Returns (first line, text) pairs
// of the documents that hold more than blanks and comments.
std::vector<std::pair<int, std::string>> split_documents(std::string_view stream) {
  std::vector<std::pair<int, std::string>> docs;
  std::string current;
  int current_line = 1, line_no = 0;
  auto flush = [&](int next_line) {
    if (!is_blank_or_comment(current)) docs.emplace_back(current_line, current);
    current.clear();
    current_line = next_line;
  };
  std::size_t pos = 0;
  while (pos < stream.size()) {
    std::size_t end = stream.find('\n', pos);
    if (end == std::string_view::npos) end = stream.size();
    std::string_view line = stream.substr(pos, end - pos);
    ++line_no;
    if (is_separator(line)) {
      flush(line_no);
      std::string_view rest = line.substr(3);
      std::size_t first = rest.find_first_not_of(" \t\r");
      if (first != std::string_view::npos) current.append(rest.substr(first)).push_back('\n');
    } else if (line == "..." || line == "...\r") {
      flush(line_no + 1);
    } else {
      if (current.empty()) current_line = line_no;
      current.append(line).push_back('\n');
    }
    pos = end + 1;
  }
  flush(line_no + 1);
  return docs;
}

// Why `name` cannot be a file name in roles_dir/locks_dir, or "".
std::string name_problem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > kMaxNameBytes)
    return "is longer than " + std::to_string(kMaxNameBytes) + " bytes";
  if (name.front() == '.') return "starts with '.'";
  for (unsigned char c : name) {
    if (c == '/') return "holds '/'";
    if (c < 0x20 || c == 0x7f) return "holds a control character";
  }
  return "";
}

// `name` for a message: control characters shown as '?'.
std::string printable(std::string name) {
  for (char& c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return name;
}

// The role and lock names a file defines, as the daemon would load it.
std::set<std::pair<Kind, std::string>> names_in(const std::string& content,
                                                const std::string& source, Kind kind) {
  machineid::Policy p;
  (void)machineid::parse_resources(
      content, source, p,
      kind == Kind::role ? machineid::ResourceFile::roles : machineid::ResourceFile::locks);
  std::set<std::pair<Kind, std::string>> names;
  for (const auto& [name, role] : p.roles) names.emplace(Kind::role, name);
  for (const auto& [name, why] : p.broken_roles) names.emplace(Kind::role, name);
  for (const auto& lock : p.locks) names.emplace(Kind::lock, lock.name);
  return names;
}

bool has_marker(const std::string& content) {
  return content.compare(0, kMarker.size(), kMarker) == 0 &&
         (content.size() == kMarker.size() || content[kMarker.size()] == '\n');
}

// The *.yaml / *.yml files of `dir` the daemon loads (not hidden ones), by
// path; a missing directory has none.
std::map<std::string, std::string> yaml_files(const std::string& dir, std::string& error) {
  std::map<std::string, std::string> files;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    if (errno != ENOENT) error = dir + ": cannot list: " + std::strerror(errno);
    return files;
  }
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    bool yaml = (name.size() > 5 && name.compare(name.size() - 5, 5, ".yaml") == 0) ||
                (name.size() > 4 && name.compare(name.size() - 4, 4, ".yml") == 0);
    if (!yaml) continue;
    std::string path = dir + "/" + name;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto content = machineid::read_file(path, machineid::kMaxResourceFileBytes);
    if (!content.ok()) {
      error = content.error().message;
      break;
    }
    files.emplace(path, std::move(*content));
  }
  closedir(d);
  return files;
}

int usage(const std::string& message) {
  std::cerr << "machineidctl policy import: " << message << "\n" << kUsage;
  return kExitUsage;
}

std::string read_input(const std::string& input, std::string& error) {
  if (input != "-") {
    auto content = machineid::read_file(input, machineid::kMaxResourceFileBytes);
    if (!content.ok()) error = content.error().message;
    return content.ok() ? std::move(*content) : std::string();
  }
  std::string content;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
    content.append(buf, n);
    if (content.size() > machineid::kMaxResourceFileBytes) {
      error = "standard input: larger than " + std::to_string(machineid::kMaxResourceFileBytes) +
              " bytes";
      return "";
    }
  }
  if (std::ferror(stdin)) error = "standard input: read error";
  return content;
}

// Asks a running daemon to reload; says so either way, never fails.
void ask_reload(const std::string& socket) {
  auto reply = machineid::call_daemon(
      socket, machineid::encode_simple(machineid::MessageKind::reload), kReloadDeadlineMs);
  if (!reply.ok()) {
    std::cout << "no daemon answered on " << socket << "; it loads the files when it starts\n";
    return;
  }
  if (machineid::decode_status_reply(*reply).ok()) {
    std::cout << "daemon reloaded (machineidctl status shows what is in force)\n";
    return;
  }
  auto error = machineid::decode_error(*reply);
  std::cerr << "machineidctl policy import: the daemon did not reload: "
            << (error.ok() ? *error : std::string("unreadable answer"))
            << " (it reloads on its own when the files change)\n";
}

int import(const Options& o) {
  auto config = machineid::load_config(o.config);
  if (!config.ok()) {
    std::cerr << "machineidctl policy import: " << config.error().message << "\n";
    return kExitUsage;
  }
  std::string error;
  std::string stream = read_input(o.input, error);
  if (!error.empty()) {
    std::cerr << "machineidctl policy import: " << error << "\n";
    return kExitUsage;
  }
  const std::string source = o.input == "-" ? "<stdin>" : o.input;

  // 1. The whole stream, as the daemon would load it: any role or lock
  //    document that does not load refuses the import.
  machineid::Policy whole;
  (void)machineid::parse_resources(stream, source, whole);
  if (!whole.role_errors.empty() || !whole.lock_errors.empty()) {
    for (const auto& e : whole.role_errors)
      std::cerr << "machineidctl policy import: " << e << "\n";
    for (const auto& e : whole.lock_errors)
      std::cerr << "machineidctl policy import: " << e << "\n";
    std::cerr << "machineidctl policy import: nothing written\n";
    return kExitDenied;
  }

  // 2. Each document on its own: what it defines and where it goes.
  std::vector<Document> docs;
  std::set<std::pair<Kind, std::string>> imported;
  std::vector<std::string> problems;
  for (auto& [line, text] : split_documents(stream)) {
    std::string where = source + ":" + std::to_string(line);
    auto names = names_in(text, where, Kind::role);
    if (names.empty()) {
      std::cout << "skip   " << where << ": neither a role nor a lock\n";
      continue;
    }
    if (names.size() != 1) {
      problems.push_back(where + ": a document must define one resource");
      continue;
    }
    auto [kind, name] = *names.begin();
    if (std::string why = name_problem(name); !why.empty()) {
      problems.push_back(where + ": " + kind_name(kind) + " name '" + printable(name) + "' " + why);
      continue;
    }
    if (!imported.emplace(kind, name).second) {
      problems.push_back(where + ": " + kind_name(kind) + " '" + name + "' appears twice");
      continue;
    }
    const std::string& dir =
        kind == Kind::role ? config->policy.roles_dir : config->policy.locks_dir;
    docs.push_back(Document{kind, name, std::move(text), line, dir + "/" + name + ".yaml"});
  }

  // An empty answer from a failed `tctl get` must not empty the node.
  if (o.prune && docs.empty())
    problems.push_back(source +
                       ": holds no role or lock; --prune would remove every imported file");

  // 3. What is already there: files this tool wrote may be replaced or
  //    pruned; any other file keeps its resources, which the import must not
  //    define a second time (a name defined twice is broken in both places).
  std::map<std::string, std::string> existing;
  for (const auto* dir : {&config->policy.roles_dir, &config->policy.locks_dir}) {
    auto files = yaml_files(*dir, error);
    if (!error.empty()) {
      std::cerr << "machineidctl policy import: " << error << "\n";
      return kExitUsage;
    }
    existing.merge(files);
  }
  std::set<std::string> targets;
  for (const auto& d : docs) targets.insert(d.path);
  std::vector<std::string> prunes;
  for (const auto& [path, content] : existing) {
    bool in_roles =
        path.compare(0, config->policy.roles_dir.size() + 1, config->policy.roles_dir + "/") == 0;
    Kind kind = in_roles ? Kind::role : Kind::lock;
    auto names = names_in(content, path, kind);
    bool ours = has_marker(content);
    if (targets.count(path) != 0) {
      const Document& d = *std::find_if(docs.begin(), docs.end(),
                                        [&](const Document& x) { return x.path == path; });
      bool same_resource = names.size() == 1 && *names.begin() == std::make_pair(d.kind, d.name);
      if (!ours && !same_resource)
        problems.push_back(
            path +
            ": exists, was not written by machineidctl policy import and defines other "
            "resources than " +
            std::string(kind_name(d.kind)) + " '" + d.name + "'; move it away");
      continue;
    }
    if (ours && o.prune) {
      prunes.push_back(path);
      continue;
    }
    for (const auto& n : names)
      if (imported.count(n) != 0)
        problems.push_back(path + ": also defines " + kind_name(n.first) + " '" + n.second +
                           "'; remove it there or import without it");
  }
  if (!problems.empty()) {
    for (const auto& p : problems) std::cerr << "machineidctl policy import: " << p << "\n";
    std::cerr << "machineidctl policy import: nothing written\n";
    return kExitDenied;
  }

  // 4. Write: locks first and pruned locks last, so that the node is never
  //    looser in between than before or after.
  std::stable_sort(docs.begin(), docs.end(), [](const Document& a, const Document& b) {
    return a.kind == Kind::lock && b.kind == Kind::role;
  });
  std::stable_sort(prunes.begin(), prunes.end(), [&](const std::string& a, const std::string& b) {
    auto in_roles = [&](const std::string& p) {
      return p.compare(0, config->policy.roles_dir.size() + 1, config->policy.roles_dir + "/") == 0;
    };
    return in_roles(a) && !in_roles(b);
  });
  const char* verb_prefix = o.dry_run ? "would " : "";
  std::size_t changed = 0;
  for (const auto& d : docs) {
    std::string content = std::string(kMarker) + "\n" + d.text;
    auto old = existing.find(d.path);
    if (old != existing.end() && old->second == content) {
      std::cout << "same   " << d.path << " (" << kind_name(d.kind) << " " << d.name << ")\n";
      continue;
    }
    std::cout << verb_prefix << (old == existing.end() ? "write  " : "replace ") << d.path << " ("
              << kind_name(d.kind) << " " << d.name << ")\n";
    ++changed;
    if (o.dry_run) continue;
    if (auto st = machineid::write_file_atomic(d.path, content, 0644); !st.ok()) {
      std::cerr << "machineidctl policy import: " << st.error().message << "\n";
      return kExitUsage;
    }
  }
  for (const auto& path : prunes) {
    std::cout << verb_prefix << "remove " << path << "\n";
    ++changed;
    if (o.dry_run) continue;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      std::cerr << "machineidctl policy import: " << path
                << ": cannot remove: " << std::strerror(errno) << "\n";
      return kExitUsage;
    }
  }
  std::cout << docs.size() << " resources in " << source << ", " << changed
            << (o.dry_run ? " would change" : " changed") << "\n";
  if (!o.dry_run && changed > 0) ask_reload(config->daemon.socket);
  return 0;
}

}  // namespace

int policy(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "import")
    return usage(args.empty() ? "missing subcommand" : "unknown subcommand '" + args[0] + "'");
  Options o;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--dry-run") {
      o.dry_run = true;
    } else if (a == "--prune") {
      o.prune = true;
    } else if (a == "--config" && i + 1 < args.size()) {
      o.config = args[++i];
    } else if ((a == "-" || a.rfind("-", 0) != 0) && o.input.empty()) {
      o.input = a;
    } else {
      return usage("unknown or incomplete option '" + a + "'");
    }
  }
  if (o.input.empty()) return usage("no input: give a FILE, or - for standard input");
  return import(o);
}

}  // namespace machineidctl
