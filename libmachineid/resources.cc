// Teleport role and lock resources from YAML, one document at a time.
#include "machineid/resources.h"

#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "machineid/config.h"
#include "machineid/io.h"
#include "machineid/rfc3339.h"

namespace machineid {
namespace {

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

// `line_offset`: the lines of the stream before the text the mark is in.
std::string at_line(std::string_view source, const YAML::Mark& mark, int line_offset = 0) {
  return std::string(source) + (mark.is_null() ? "" : ":" + std::to_string(line_offset + mark.line + 1));
}

// Walks a file's YAML events before any node is built, bounding what
// building would cost: documents, nesting, and nodes once aliases are
// expanded (each alias counts the nodes of what it names). Refuses a
// mapping that repeats a key, which yaml-cpp would silently resolve.
class YamlBounds final : public YAML::EventHandler {
 public:
  explicit YamlBounds(std::string_view source) : source_(source) {}

  const std::string& error() const { return error_; }
  // Where each document begins, so they can be built one at a time.
  const std::vector<YAML::Mark>& document_starts() const { return starts_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > kMaxResources) fail({}, "more than " + std::to_string(kMaxResources) + " documents");
    starts_.push_back(mark);
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor, std::nullopt); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    leaf(mark, anchor, value);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    std::size_t size = anchor < sizes_.size() ? sizes_[anchor] : 1;
    alias_nodes_ += size;
    if (alias_nodes_ > kMaxYamlAliasNodes)
      fail(mark, "aliases expand to more than " + std::to_string(kMaxYamlAliasNodes) + " nodes");
    add_nodes(mark, size);
    value_done(mark, std::nullopt);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, false);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, true);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    bool mapping;
    bool expecting_key = true;
    YAML::anchor_t anchor;
    std::size_t nodes_at_start;
    YAML::Mark mark;
    std::set<std::string, std::less<>> keys;
  };

  void fail(const YAML::Mark& mark, const std::string& what) {
    if (error_.empty()) error_ = at_line(source_, mark) + ": " + what;
  }
  void add_nodes(const YAML::Mark& mark, std::size_t n) {
    nodes_ += n;
    if (nodes_ > kMaxYamlNodes) fail(mark, "more than " + std::to_string(kMaxYamlNodes) + " YAML nodes");
  }
  void remember(YAML::anchor_t anchor, std::size_t size) {
    if (anchor == YAML::NullAnchor) return;
    if (sizes_.size() <= anchor) sizes_.resize(anchor + 1, 1);
    sizes_[anchor] = size;
  }
  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor, const std::optional<std::string>& value) {
    add_nodes(mark, 1);
    remember(anchor, 1);
    value_done(mark, value);
  }
  // A complete node took its place in the enclosing mapping or sequence.
  void value_done(const YAML::Mark& mark, const std::optional<std::string>& scalar) {
    if (stack_.empty() || !stack_.back().mapping) return;
    Frame& f = stack_.back();
    if (f.expecting_key && scalar && !f.keys.insert(*scalar).second)
      fail(mark, "duplicate key " + in_quotes(*scalar));
    f.expecting_key = !f.expecting_key;
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor, bool mapping) {
    add_nodes(mark, 1);
    if (stack_.size() >= kMaxYamlDepth) fail(mark, "nested deeper than " + std::to_string(kMaxYamlDepth) + " levels");
    stack_.push_back(Frame{mapping, true, anchor, nodes_, mark, {}});
  }
  void close() {
    if (stack_.empty()) return;
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    remember(f.anchor, nodes_ - f.nodes_at_start + 1);
    value_done(f.mark, std::nullopt);
  }

  std::string_view source_;
  std::string error_;
  std::size_t documents_ = 0, nodes_ = 0, alias_nodes_ = 0;
  std::vector<std::size_t> sizes_;  // by anchor: nodes of the anchored node
  std::vector<Frame> stack_;
  std::vector<YAML::Mark> starts_;
};

bool present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

// parent[key], or an absent node when parent is not a mapping. Only const
// access: yaml-cpp's non-const operator[] would insert the key.
YAML::Node child(const YAML::Node& parent, const char* key) {
  return present(parent) && parent.IsMap() ? parent[key] : YAML::Node(YAML::NodeType::Undefined);
}

// The fields a lock's target may name (Teleport's LockTarget).
constexpr std::string_view kLockTargetFields[] = {
    "user", "role", "login", "node", "server_id", "mfa_device", "device", "access_request", "join_token",
    "bot_instance_id", "windows_desktop",
};

std::string& target_field(LockTarget& t, std::string_view key) {
  if (key == "user") return t.user;
  if (key == "role") return t.role;
  if (key == "login") return t.login;
  if (key == "node") return t.node;
  if (key == "server_id") return t.server_id;
  if (key == "mfa_device") return t.mfa_device;
  if (key == "device") return t.device;
  if (key == "access_request") return t.access_request;
  if (key == "join_token") return t.join_token;
  if (key == "bot_instance_id") return t.bot_instance_id;
  return t.windows_desktop;
}

// Reads one document into `staged`; every error names the file, the line
// and the field.
class ResourceReader {
 public:
  ResourceReader(std::string_view source, Policy& staged) : source_(source), staged_(staged) {}
  // The document read next begins this many lines into the file.
  void set_line_offset(int lines) { line_offset_ = lines; }

  // The document's kind and name, as far as they can be read.
  static std::pair<std::string, std::string> identify(const YAML::Node& doc) {
    auto text = [](const YAML::Node& n) { return present(n) && n.IsScalar() ? n.Scalar() : std::string(); };
    return {text(child(doc, "kind")), text(child(child(doc, "metadata"), "name"))};
  }

  Status document(const YAML::Node& doc) {
    if (!present(doc)) return {};  // an empty document, as after a trailing "---"
    if (!doc.IsMap()) return error(doc, "document", "must be a mapping of kind, version, metadata and spec");
    MID_TRY(kind, scalar(child(doc, "kind"), "kind"));
    if (kind.empty()) return error(doc, "kind", "missing");
    if (kind != "role" && kind != "lock") {
      staged_.notices.push_back(where(doc) + ": skipping kind " + in_quotes(kind));
      return {};
    }
    YAML::Node metadata = child(doc, "metadata");
    if (present(metadata) && !metadata.IsMap()) return error(metadata, "metadata", "must be a mapping");
    MID_TRY(name, scalar(child(metadata, "name"), "metadata.name"));
    if (name.empty()) return error(present(metadata) ? metadata : doc, "metadata.name", "missing");
    return kind == "role" ? role(doc, std::move(name)) : lock(doc, std::move(name));
  }

  std::string where(const YAML::Node& at) const { return at_line(source_, at.Mark(), line_offset_); }

 private:
  Error error(const YAML::Node& at, std::string_view field, std::string_view what) const {
    return make_error(Errc::config, where(at) + ": " + std::string(field) + ": " + std::string(what));
  }

  // A string: "" when absent or null, an error when not a scalar.
  Result<std::string> scalar(const YAML::Node& node, std::string_view field) const {
    if (!present(node)) return std::string();
    if (!node.IsScalar()) return error(node, field, "must be a string");
    return node.Scalar();
  }

  // A mapping: absent when absent or null, an error when not a mapping.
  Result<YAML::Node> mapping(const YAML::Node& parent, const char* key, std::string_view field) const {
    YAML::Node node = child(parent, key);
    if (present(node) && !node.IsMap()) return error(node, field, "must be a mapping");
    return node;
  }

  // A list of strings. Templates that cannot expand are kept (they expand
  // to nothing, as Teleport skips them) with a notice.
  Result<std::vector<std::string>> strings(const YAML::Node& node, const std::string& field) {
    std::vector<std::string> out;
    if (!present(node)) return out;
    if (!node.IsSequence()) return error(node, field, "must be a list of strings");
    out.reserve(node.size());  // exact: a node keeps thousands of roles
    for (const auto& item : node) {
      if (!item.IsScalar()) return error(item, field, "must be a list of strings");
      note_template(item, field);
      out.push_back(item.Scalar());
    }
    return out;
  }

  void note_template(const YAML::Node& item, const std::string& field) {
    if (!is_template(item.Scalar())) return;
    if (auto valid = validate_template(item.Scalar()); !valid.ok())
      staged_.notices.push_back(where(item) + ": " + field + ": " + valid.error().message +
                                " (it expands to nothing)");
  }

  // node_labels: label name -> a value or a list of values.
  Status labels(const YAML::Node& node, const std::string& field, LabelSelector& out) {
    if (!present(node)) return {};
    if (!node.IsMap()) return error(node, field, "must be a mapping of label names to strings or lists of strings");
    out.reserve(node.size());
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) return error(entry.first, field, "label names must be strings");
      const std::string& key = entry.first.Scalar();
      const std::string key_field = field + "." + key;
      note_template(entry.first, key_field);
      std::vector<LabelPattern> patterns;
      auto add = [&](const YAML::Node& item) -> Status {
        if (!item.IsScalar()) return error(item, key_field, "must be a string or a list of strings");
        const std::string& text = item.Scalar();
        if (is_template(text)) {
          note_template(item, key_field);
          patterns.push_back(LabelPattern{text, {}});  // compiled once expanded, at match time
          return {};
        }
        auto pattern = make_pattern(text);
        if (!pattern.ok()) return error(item, key_field, pattern.error().message);
        patterns.push_back(std::move(*pattern));
        return {};
      };
      if (entry.second.IsSequence()) {
        patterns.reserve(entry.second.size());
        for (const auto& item : entry.second) MID_CHECK(add(item));
      } else {
        MID_CHECK(add(entry.second));
      }
      out.emplace_back(key, std::move(patterns));
    }
    return {};
  }

  Status conditions(const YAML::Node& node, const std::string& field, RoleConditions& out) {
    MID_TRY(logins, strings(child(node, "logins"), field + ".logins"));
    MID_TRY(groups, strings(child(node, "host_groups"), field + ".host_groups"));
    MID_TRY(sudoers, strings(child(node, "host_sudoers"), field + ".host_sudoers"));
    MID_TRY(namespaces, strings(child(node, "namespaces"), field + ".namespaces"));
    out.logins = std::move(logins);
    out.host_groups = std::move(groups);
    auto rare = std::make_shared<RoleConditions::Rare>();
    rare->host_sudoers = std::move(sudoers);
    rare->namespaces = std::move(namespaces);
    YAML::Node expression = child(node, "node_labels_expression");
    MID_TRY(text, scalar(expression, field + ".node_labels_expression"));
    if (!text.empty()) {
      LabelsExpression* e = &rare->node_labels_expression.emplace();
      e->text = text;
      auto parsed = Expression::parse(text, ExpressionLanguage::label_expression);
      if (parsed.ok()) {
        e->parsed = std::move(*parsed);
      } else {
        // Teleport loads the role and only warns; a check that reaches the
        // expression then fails, and the request is denied.
        e->error = parsed.error().message;
        staged_.notices.push_back(where(expression) + ": " + field + ".node_labels_expression: " +
                                  e->error + " (requests that reach it are denied)");
      }
    }
    if (rare->node_labels_expression || !rare->namespaces.empty() || !rare->host_sudoers.empty())
      out.rare = std::move(rare);
    return labels(child(node, "node_labels"), field + ".node_labels", out.node_labels);
  }

  Status options(const YAML::Node& node, Role& role) const {
    YAML::Node mode_node = child(node, "create_host_user_mode");
    MID_TRY(mode, scalar(mode_node, "spec.options.create_host_user_mode"));
    if (mode == "keep") {
      role.host_user_mode = HostUserMode::keep;
    } else if (mode == "insecure-drop") {
      role.host_user_mode = HostUserMode::insecure_drop;
    } else if (mode == "drop") {
      role.host_user_mode = HostUserMode::insecure_drop;  // Teleport reads its deprecated "drop" so
    } else if (!mode.empty() && mode != "off" && mode != "false") {  // Teleport: false means off
      return error(mode_node, "spec.options.create_host_user_mode",
                   "must be keep, insecure-drop or off, not " + in_quotes(mode));
    }
    MID_CHECK(flag(child(node, "port_forwarding"), "spec.options.port_forwarding", role.options.port_forwarding));
    MID_CHECK(flag(child(node, "forward_agent"), "spec.options.forward_agent", role.options.forward_agent));
    MID_CHECK(flag(child(node, "permit_x11_forwarding"), "spec.options.permit_x11_forwarding",
                   role.options.permit_x11_forwarding));
    MID_CHECK(flag(child(node, "disconnect_expired_cert"), "spec.options.disconnect_expired_cert",
                   role.options.disconnect_expired_cert));
    YAML::Node forwarding = child(node, "ssh_port_forwarding");
    MID_CHECK(flag(child(child(forwarding, "local"), "enabled"), "spec.options.ssh_port_forwarding.local.enabled",
                   role.options.local_port_forwarding));
    MID_CHECK(flag(child(child(forwarding, "remote"), "enabled"), "spec.options.ssh_port_forwarding.remote.enabled",
                   role.options.remote_port_forwarding));
    YAML::Node ttl_node = child(node, "max_session_ttl");
    MID_TRY(ttl, scalar(ttl_node, "spec.options.max_session_ttl"));
    if (ttl.empty()) return {};
    auto seconds = parse_duration(ttl);
    if (!seconds.ok()) return error(ttl_node, "spec.options.max_session_ttl", seconds.error().message);
    // Zero is Teleport's "unset", which it replaces by its default.
    if (seconds->count() > 0) role.max_session_ttl = *seconds;
    return {};
  }

  // A boolean option: unset when absent or null.
  Status flag(const YAML::Node& node, std::string_view field, std::optional<bool>& out) const {
    if (!present(node)) return {};
    MID_TRY(text, scalar(node, field));
    if (text == "true" || text == "yes" || text == "on") {
      out = true;
    } else if (text == "false" || text == "no" || text == "off") {
      out = false;
    } else {
      return error(node, field, "must be true or false, not " + in_quotes(text));
    }
    return {};
  }

  Status role(const YAML::Node& doc, std::string name) {
    YAML::Node version_node = child(doc, "version");
    MID_TRY(version, scalar(version_node, "version"));
    static constexpr std::string_view kVersions[] = {"v3", "v4", "v5", "v6", "v7", "v8", "v9"};
    if (std::find(std::begin(kVersions), std::end(kVersions), version) == std::end(kVersions))
      return error(present(version_node) ? version_node : doc, "version",
                   "unsupported role version " + in_quotes(version) + " (v3 to v9)");
    if (staged_.roles.count(name) != 0)
      return error(child(child(doc, "metadata"), "name"), "metadata.name",
                   "role " + in_quotes(name) + " is defined twice in this file");
    Role role;
    role.name = name;
    role.source = where(doc);
    MID_TRY(spec, mapping(doc, "spec", "spec"));
    MID_TRY(options_node, mapping(spec, "options", "spec.options"));
    MID_TRY(allow, mapping(spec, "allow", "spec.allow"));
    MID_TRY(deny, mapping(spec, "deny", "spec.deny"));
    MID_CHECK(options(options_node, role));
    MID_CHECK(conditions(allow, "spec.allow", role.allow));
    MID_CHECK(conditions(deny, "spec.deny", role.deny));
    // Teleport refuses such a role: a login is never a wildcard.
    if (std::find(role.allow.logins.begin(), role.allow.logins.end(), "*") != role.allow.logins.end())
      return error(child(allow, "logins"), "spec.allow.logins", "the wildcard '*' is not allowed in logins");
    // Teleport gives a v3 role with logins and no node_labels every node.
    if (version == "v3" && !present(child(allow, "node_labels")) && !role.allow.logins.empty())
      role.allow.node_labels.emplace_back("*", std::vector<LabelPattern>{LabelPattern{"*", {}}});
    staged_.roles.emplace(std::move(name), std::move(role));
    return {};
  }

  Status lock(const YAML::Node& doc, std::string name) {
    Lock lock;
    lock.name = std::move(name);
    lock.source = where(doc);
    MID_TRY(spec, mapping(doc, "spec", "spec"));
    MID_TRY(target, mapping(spec, "target", "spec.target"));
    if (!present(target)) return error(present(spec) ? spec : doc, "spec.target", "missing");
    bool named = false;
    for (const auto& entry : target) {
      if (!entry.first.IsScalar()) return error(entry.first, "spec.target", "field names must be strings");
      const std::string& key = entry.first.Scalar();
      if (std::find(std::begin(kLockTargetFields), std::end(kLockTargetFields), key) == std::end(kLockTargetFields))
        return error(entry.first, "spec.target." + key,
                     "unknown lock target field (user, role, login, node, server_id, mfa_device, device, "
                     "access_request, join_token, bot_instance_id, windows_desktop)");
      if (!present(entry.second)) continue;
      if (!entry.second.IsScalar()) return error(entry.second, "spec.target." + key, "must be a string");
      target_field(lock.target, key) = entry.second.Scalar();
      named = named || !entry.second.Scalar().empty();
    }
    if (!named) return error(target, "spec.target", "names no target");
    YAML::Node expires_node = child(spec, "expires");
    MID_TRY(expires, scalar(expires_node, "spec.expires"));
    if (!expires.empty()) {
      auto when = parse_rfc3339(expires);
      if (!when.ok()) return error(expires_node, "spec.expires", when.error().message);
      lock.expires = *when;
    }
    MID_TRY(message, scalar(child(spec, "message"), "spec.message"));
    lock.message = std::move(message);
    staged_.locks.push_back(std::move(lock));
    return {};
  }

  std::string_view source_;
  Policy& staged_;
  int line_offset_ = 0;
};

// Records an error that takes a whole file down.
Error file_failed(Policy& into, ResourceFile kind, Error e) {
  (kind == ResourceFile::locks ? into.lock_errors : into.role_errors).push_back(e.message);
  return e;
}

// Adds the staged roles to `into`; a name defined twice is broken in both
// places, since no one can tell which definition the cluster holds.
void merge_roles(Policy& into, Policy& staged) {
  for (auto& [name, role] : staged.roles) {
    if (auto it = into.roles.find(name); it != into.roles.end()) {
      std::string why = "defined twice, at " + it->second.source + " and at " + role.source;
      into.role_errors.push_back(role.source + ": metadata.name: role " + in_quotes(name) + " " + why);
      into.broken_roles[name] = why;
      into.roles.erase(it);
      continue;
    }
    if (auto broken = into.broken_roles.find(name); broken != into.broken_roles.end()) continue;
    into.roles.emplace(name, std::move(role));
  }
}

bool transient(const std::error_code& ec) {
  return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
         ec == std::errc::not_enough_memory || ec == std::errc::interrupted;
}

// One policy file, owned by root or `owner` as check_trusted_path wants.
void load_file(const std::string& path, ResourceFile kind, Policy& into, uid_t owner) {
  auto text = [&]() -> Result<std::string> {
    MID_CHECK(check_trusted_path(path, owner));
    return read_file(path, kMaxResourceFileBytes);
  }();
  if (!text.ok() && text.error().code == Errc::transient) return void(into.transient_error = text.error().message);
  if (!text.ok()) return void(file_failed(into, kind, text.error()));
  (void)parse_resources(*text, path, into, kind);
}

// Loads the directory's *.yaml and *.yml files in name order. Hidden files
// are skipped as the shell's glob skips them. As sshd's StrictModes, the
// directory and each file (and every directory above) must be owned by root
// or this process's user and writable by no one else: an untrusted file
// defines nothing, so its roles' holders are denied and, for locks, strict
// mode denies everything.
void load_directory(const std::string& dir, ResourceFile kind, Policy& into) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status status = fs::status(dir, ec);
  if (status.type() == fs::file_type::not_found) return;
  if (transient(ec)) return void(into.transient_error = dir + ": " + ec.message());
  if (ec) return void(file_failed(into, kind, make_error(Errc::io, dir + ": " + ec.message())));
  if (auto trusted = check_trusted_path(dir); !trusted.ok()) return void(file_failed(into, kind, trusted.error()));
  if (!fs::is_directory(status)) return void(file_failed(into, kind, make_error(Errc::io, dir + ": not a directory")));
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::string extension = it->path().extension().string();
    if (!name.starts_with('.') && (extension == ".yaml" || extension == ".yml")) names.push_back(std::move(name));
  }
  if (transient(ec)) return void(into.transient_error = dir + ": cannot list: " + ec.message());
  if (ec) return void(file_failed(into, kind, make_error(Errc::io, dir + ": cannot list: " + ec.message())));
  std::sort(names.begin(), names.end());
  for (const auto& name : names) load_file((fs::path(dir) / name).string(), kind, into, geteuid());
}

// Reads one built document into `staged`. One that does not load is
// recorded in `into`: a lock's error, or a role's by name, so that its
// holders are denied.
Status read_document(ResourceReader& reader, const YAML::Node& doc, std::string_view source, int line_offset,
                     Policy& into, Policy& staged, ResourceFile kind) {
  Status loaded;
  try {
    loaded = reader.document(doc);
  } catch (const YAML::Exception& e) {
    loaded = make_error(Errc::malformed, at_line(source, e.mark, line_offset) + ": malformed YAML: " + e.msg);
  }
  if (loaded.ok()) return loaded;
  auto [doc_kind, name] = ResourceReader::identify(doc);
  if (doc_kind == "lock" || (doc_kind.empty() && kind == ResourceFile::locks)) {
    into.lock_errors.push_back(loaded.error().message);
    return loaded;
  }
  into.role_errors.push_back(loaded.error().message);
  if (!name.empty()) {
    into.broken_roles[name] = loaded.error().message;
    staged.roles.erase(name);
    into.roles.erase(name);
  }
  return loaded;
}

}  // namespace

Status parse_resources(std::string_view yaml, std::string_view source, Policy& into, ResourceFile kind) {
  if (yaml.size() > kMaxResourceFileBytes)
    return file_failed(into, kind,
                       make_error(Errc::limit, std::string(source) + ": larger than " +
                                                   std::to_string(kMaxResourceFileBytes) + " bytes"));
  const std::string text(yaml);
  std::vector<YAML::Mark> starts;
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    YamlBounds bounds(source);
    while (bounds.error().empty() && parser.HandleNextDocument(bounds)) {
    }
    if (!bounds.error().empty())
      return file_failed(into, kind, make_error(Errc::limit, bounds.error()));
    starts = bounds.document_starts();
  } catch (const YAML::Exception& e) {
    return file_failed(into, kind,
                       make_error(Errc::malformed, at_line(source, e.mark) + ": malformed YAML: " + e.msg));
  }
  // The whole stream parsed within bounds. Its documents are built one at
  // a time from their own text, so a stream of 100 000 locks never holds
  // 100 000 node trees at once. A stream with directives (%YAML, %TAG,
  // which apply to the document after them) is built whole instead.
  const bool directives = text.starts_with('%') || text.find("\n%") != std::string::npos;
  std::size_t count = directives ? 1 : starts.size();
  Policy staged;
  ResourceReader reader(source, staged);
  Status first;
  for (std::size_t i = 0; i < count; ++i) {
    std::vector<YAML::Node> documents;
    int line_offset = 0;
    Status loaded;
    try {
      if (directives) {
        documents = YAML::LoadAll(text);
      } else {
        auto begin = static_cast<std::size_t>(starts[i].pos);
        auto end = i + 1 < starts.size() ? static_cast<std::size_t>(starts[i + 1].pos) : text.size();
        line_offset = starts[i].line;
        documents.push_back(YAML::Load(text.substr(begin, end - begin)));
      }
    } catch (const YAML::Exception& e) {
      loaded = make_error(Errc::malformed, at_line(source, e.mark, line_offset) + ": malformed YAML: " + e.msg);
    }
    if (!loaded.ok()) {
      if (first.ok()) first = loaded;
      (kind == ResourceFile::locks ? into.lock_errors : into.role_errors).push_back(loaded.error().message);
      continue;
    }
    reader.set_line_offset(line_offset);
    for (const YAML::Node& doc : documents) {
      if (Status read = read_document(reader, doc, source, line_offset, into, staged, kind); !read.ok() && first.ok())
        first = read;
    }
  }
  merge_roles(into, staged);
  for (auto& lock : staged.locks) add_lock(into, std::move(lock));
  std::move(staged.notices.begin(), staged.notices.end(), std::back_inserter(into.notices));
  return first;
}

Policy load_policy(const std::string& roles_dir, const std::string& locks_dir, const SyncedFiles& synced) {
  Policy policy;
  load_directory(roles_dir, ResourceFile::roles, policy);
  // One directory given for both is read once, not found to duplicate itself.
  std::error_code ec;
  if (!std::filesystem::equivalent(roles_dir, locks_dir, ec)) load_directory(locks_dir, ResourceFile::locks, policy);
  // Until machineid-sync has fetched a stream there is no file: nothing to
  // load (a strict node denies on the lock source's age, not on this).
  for (auto [path, kind] : {std::pair{&synced.roles, ResourceFile::roles}, {&synced.locks, ResourceFile::locks}}) {
    struct stat st {};
    if (!path->empty() && !(stat(path->c_str(), &st) != 0 && errno == ENOENT))
      load_file(*path, kind, policy, synced.owner);
  }
  return policy;
}

}  // namespace machineid
