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
#include <nlohmann/json.hpp>
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
  bool json = false;
};

// What the import does, line by line, or as one JSON object at the end.
// Names, paths and the parser's messages come from the stream: escaped.
class Output {
 public:
  explicit Output(const Options& o) : o_(o) {}
  // "write", "replace", "same", "remove", or "skip" (a document that is
  // neither a role nor a lock, at `path`:line).
  void action(const std::string& verb, const std::string& path, const Document* d = nullptr) {
    if (o_.json) {
      nlohmann::ordered_json a;
      a["action"] = verb;
      a["path"] = path;
      if (d != nullptr) {
        a["kind"] = kind_name(d->kind);
        a["name"] = d->name;
      }
      actions_.push_back(std::move(a));
      return;
    }
    bool changes = verb != "same" && verb != "skip";
    std::string verb_column = verb + std::string(verb.size() < 6 ? 6 - verb.size() : 0, ' ') + " ";
    std::string line = (changes && o_.dry_run ? "would " : "") + verb_column + path;
    if (d != nullptr) line += " (" + std::string(kind_name(d->kind)) + " " + d->name + ")";
    if (verb == "skip") line += ": neither a role nor a lock";
    print_escaped(line);
  }
  void reload(const std::string& outcome, const std::string& line) {
    reload_ = outcome;
    if (!o_.json) print_escaped(line);
  }
  // The closing line, or the JSON object; `problems` refused the import.
  void finish(const std::string& source, std::size_t resources, std::size_t changed,
              const std::vector<std::string>& problems) {
    if (!o_.json) {
      if (problems.empty())
        print_escaped(std::to_string(resources) + " resources in " + source + ", " + std::to_string(changed) +
                      (o_.dry_run ? " would change" : " changed"));
      return;
    }
    nlohmann::ordered_json j;
    j["source"] = source;
    j["dry_run"] = o_.dry_run;
    j["written"] = problems.empty() && !o_.dry_run;
    j["resources"] = resources;
    j["changed"] = changed;
    j["actions"] = std::move(actions_);
    j["problems"] = problems;
    j["reload"] = reload_.empty() ? nullptr : nlohmann::ordered_json(reload_);
    print_json(j);
  }

 private:
  const Options& o_;
  nlohmann::ordered_json actions_ = nlohmann::ordered_json::array();
  std::string reload_;
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
void ask_reload(const Args& args, const std::string& socket, Output& out) {
  auto reply = machineid::call_daemon(
      socket, machineid::encode_simple(machineid::MessageKind::reload), kReloadDeadlineMs);
  if (!reply.ok()) {
    out.reload("no daemon", "no daemon answered on " + socket + "; it loads the files when it starts");
    return;
  }
  if (machineid::decode_status_reply(*reply).ok()) {
    out.reload("reloaded", "daemon reloaded (machineidctl status shows what is in force)");
    return;
  }
  auto error = machineid::decode_error(*reply);
  out.reload("refused", "");
  args.say("the daemon did not reload: " + (error.ok() ? *error : std::string("unreadable answer")) +
                   " (it reloads on its own when the files change)");
}

// Says why the stream is refused; nothing has been written.
int refuse(const Args& args, Output& out, const std::string& source, const std::vector<std::string>& problems) {
  for (const auto& p : problems) args.say(p);
  args.say("nothing written");
  out.finish(source, 0, 0, problems);
  return kExitFindings;
}

int import(const Args& args, const Options& o) {
  auto config = machineid::load_config(o.config);
  if (!config.ok()) return args.fail(kExitUsage, config.error().message);
  std::string error;
  std::string stream = read_input(o.input, error);
  if (!error.empty()) return args.fail(kExitUsage, error);
  Output out(o);
  const std::string source = o.input == "-" ? "<stdin>" : o.input;

  // 1. The whole stream, as the daemon would load it: any role or lock
  //    document that does not load refuses the import.
  machineid::Policy whole;
  (void)machineid::parse_resources(stream, source, whole);
  if (!whole.role_errors.empty() || !whole.lock_errors.empty()) {
    std::vector<std::string> problems = whole.role_errors;
    problems.insert(problems.end(), whole.lock_errors.begin(), whole.lock_errors.end());
    return refuse(args, out, source, problems);
  }

  // 2. Each document on its own: what it defines and where it goes.
  std::vector<Document> docs;
  std::set<std::pair<Kind, std::string>> imported;
  std::vector<std::string> problems;
  for (auto& [line, text] : split_documents(stream)) {
    std::string where = source + ":" + std::to_string(line);
    auto names = names_in(text, where, Kind::role);
    if (names.empty()) {
      out.action("skip", where);
      continue;
    }
    if (names.size() != 1) {
      problems.push_back(where + ": a document must define one resource");
      continue;
    }
    auto [kind, name] = *names.begin();
    if (std::string why = name_problem(name); !why.empty()) {
      problems.push_back(where + ": " + kind_name(kind) + " name '" + name + "' " + why);
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
    if (!error.empty()) return args.fail(kExitUsage, error);
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
  if (!problems.empty()) return refuse(args, out, source, problems);

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
  std::size_t changed = 0;
  for (const auto& d : docs) {
    std::string content = std::string(kMarker) + "\n" + d.text;
    auto old = existing.find(d.path);
    if (old != existing.end() && old->second == content) {
      out.action("same", d.path, &d);
      continue;
    }
    out.action(old == existing.end() ? "write" : "replace", d.path, &d);
    ++changed;
    if (o.dry_run) continue;
    if (auto st = machineid::write_file_atomic(d.path, content, 0644); !st.ok()) {
      return args.fail(kExitUsage, st.error().message);
    }
  }
  for (const auto& path : prunes) {
    out.action("remove", path);
    ++changed;
    if (o.dry_run) continue;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return args.fail(kExitUsage, path + ": cannot remove: " + std::strerror(errno));
    }
  }
  if (!o.dry_run && changed > 0) ask_reload(args, config->daemon.socket, out);
  out.finish(source, docs.size(), changed, {});
  return kExitOk;
}

}  // namespace

int policy_import(const Args& args) {
  Options o;
  o.config = args.value_or("config", o.config);
  o.dry_run = args.has("dry-run");
  o.prune = args.has("prune");
  o.json = args.has("json");
  if (args.operands().empty()) return args.usage_error("no input: give a FILE, or - for standard input");
  o.input = args.operands()[0];
  return import(args, o);
}

}  // namespace machineidctl
