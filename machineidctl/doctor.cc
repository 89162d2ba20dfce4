// machineidctl doctor: is this node wired as SPEC §6 says, and healthy?
// Each check prints ok, warn or FAIL, and every finding says how to fix it.
#include <sys/stat.h>
#include <sys/timex.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "machineid/ca.h"
#include "machineid/client.h"
#include "machineid/config.h"
#include "machineid/encoding.h"
#include "machineid/io.h"
#include "machineid/node_policy.h"
#include "machineid/sync_state.h"

namespace machineidctl {
namespace {

struct DoctorOptions {
  std::string config = std::string(machineid::kDefaultConfigPath);
  std::string sshd = "/usr/sbin/sshd";
  std::string sshd_config;  // empty: sshd's own default
  std::string pam_dir = "/etc/pam.d";
  std::string pam_service = "sshd";
  std::string nsswitch = "/etc/nsswitch.conf";
  std::string authselect_dir = "/etc/authselect";
};

// Findings are printed as they are made, or collected for --json.
class Report {
 public:
  explicit Report(bool json) : json_(json) {}
  void ok(const std::string& area, const std::string& what) { line("ok", area, what, ""); }
  void warn(const std::string& area, const std::string& what, const std::string& fix) {
    line("warn", area, what, fix);
  }
  void fail(const std::string& area, const std::string& what, const std::string& fix) {
    ++failures_;
    line("FAIL", area, what, fix);
  }
  int failures() const { return failures_; }

  // The closing line, or the whole report as one JSON object.
  void finish() {
    if (json_) {
      nlohmann::ordered_json j;
      j["problems"] = failures_;
      j["findings"] = std::move(findings_);
      print_json(j);
    } else {
      std::printf("%s\n", failures_ == 0 ? "no problems found" : (std::to_string(failures_) + " problem(s) found").c_str());
    }
  }

 private:
  // Findings quote file names, the daemon's errors and YAML text: escaped
  // for the terminal like every other line that carries such text.
  void line(const char* level, const std::string& area, const std::string& what, const std::string& fix) {
    if (json_) {
      nlohmann::ordered_json f;
      f["level"] = level[0] == 'F' ? "fail" : level;
      f["area"] = area;
      f["what"] = what;
      if (!fix.empty()) f["fix"] = fix;
      findings_.push_back(std::move(f));
      return;
    }
    std::printf("%-4s  %-10s  %s\n", level, area.c_str(), machineid::escape_untrusted(what).c_str());
    if (!fix.empty()) std::printf("                  fix: %s\n", machineid::escape_untrusted(fix).c_str());
  }
  bool json_;
  int failures_ = 0;
  nlohmann::ordered_json findings_ = nlohmann::ordered_json::array();
};

// Runs a command and returns its stdout, or nullopt when it fails.
std::optional<std::string> capture(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  return pclose(p) == 0 ? std::optional<std::string>(out) : std::nullopt;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `sshd -T` prints "keyword value" lines in lower case, the effective config.
void check_sshd(const DoctorOptions& o, const machineid::Config& c, Report& r) {
  std::string cmd = shell_quote(o.sshd) + " -T" + (o.sshd_config.empty() ? "" : " -f " + shell_quote(o.sshd_config)) +
                    " 2>&1";
  auto out = capture(cmd);
  if (!out) {
    r.fail("sshd", "'sshd -T' fails: sshd's configuration does not load", "run '" + o.sshd + " -t' and fix what it says");
    return;
  }
  std::map<std::string, std::string> effective;
  std::istringstream in(*out);
  std::string line;
  while (std::getline(in, line)) {
    auto space = line.find(' ');
    if (space != std::string::npos) effective.emplace(line.substr(0, space), line.substr(space + 1));
  }
  const std::string dropin = "/etc/ssh/sshd_config.d/50-machineid.conf";
  const std::string ca = c.cluster.user_ca_file + ".sshd";
  if (effective["trustedusercakeys"] == ca) {
    r.ok("sshd", "TrustedUserCAKeys is " + ca);
  } else {
    r.fail("sshd", "TrustedUserCAKeys is '" + effective["trustedusercakeys"] + "', not " + ca,
           "install " + dropin + " and make sure sshd_config includes sshd_config.d/*.conf before other settings");
  }
  const std::string& apc = effective["authorizedprincipalscommand"];
  if (apc.find("machineid-principals") != std::string::npos && apc.find("%u") != std::string::npos) {
    r.ok("sshd", "AuthorizedPrincipalsCommand runs " + apc);
  } else {
    r.fail("sshd", "AuthorizedPrincipalsCommand is '" + apc + "'", "set it as " + dropin + " does: machineid-principals %u %t %k");
  }
  if (effective["authorizedprincipalscommanduser"] == c.daemon.client_user) {
    r.ok("sshd", "AuthorizedPrincipalsCommandUser is " + c.daemon.client_user);
  } else {
    r.fail("sshd", "AuthorizedPrincipalsCommandUser is '" + effective["authorizedprincipalscommanduser"] + "'",
           "set it to the daemon's client_user, " + c.daemon.client_user + ", which the daemon lets in");
  }
  const std::string& akc = effective["authorizedkeyscommand"];
  if (!akc.empty() && akc != "none") {
    r.warn("sshd", "AuthorizedKeysCommand '" + akc + "' is set too",
           "a key it accepts logs in without our decision (OpenSSH 8.7+ consults it first); remove it unless intended");
  }
  if (effective["usepam"] == "yes") {
    r.ok("sshd", "UsePAM yes");
  } else {
    r.warn("sshd", "UsePAM is off: pam_machineid's re-check and session audit do not run", "set UsePAM yes");
  }
}

// Lines of a PAM service file and the files it @includes (one level, as
// Debian's common-* files are included).
std::string pam_stack(const std::string& dir, const std::string& service) {
  auto text = machineid::read_file(dir + "/" + service, 1 << 20);
  if (!text.ok()) return "";
  std::string all, line;
  std::istringstream in(*text);
  while (std::getline(in, line)) {
    if (line.rfind("@include ", 0) == 0) {
      auto included = machineid::read_file(dir + "/" + line.substr(9), 1 << 20);
      if (included.ok()) all += *included + "\n";
    } else {
      all += line + "\n";
    }
  }
  return all;
}

bool has_module_line(const std::string& stack, const std::string& type) {
  std::istringstream in(stack);
  std::string line;
  while (std::getline(in, line)) {
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string t, control, module;
    words >> t >> control;
    if (control.front() == '[') {  // [success=ok default=bad] may contain spaces
      while (control.back() != ']' && words >> module) control += " " + module;
    }
    words >> module;
    if ((t == type || t == "-" + type) && module.find("pam_machineid.so") != std::string::npos) return true;
  }
  return false;
}

void check_pam(const DoctorOptions& o, Report& r) {
  std::string stack = pam_stack(o.pam_dir, o.pam_service);
  if (stack.empty()) {
    r.fail("pam", "cannot read " + o.pam_dir + "/" + o.pam_service, "is sshd's PAM service installed?");
    return;
  }
  for (const char* type : {"account", "session"}) {
    if (has_module_line(stack, type)) {
      r.ok("pam", std::string(type) + " stack of " + o.pam_service + " has pam_machineid.so");
    } else {
      r.fail("pam", std::string(type) + " stack of " + o.pam_service + " lacks pam_machineid.so",
             "run 'pam-auth-update --enable machineid' (Debian) or add '" + std::string(type) +
                 (std::string(type) == "account" ? " required" : " optional") + " pam_machineid.so'");
    }
  }
}

// Where authselect manages nsswitch.conf (Fedora, RHEL and their kin), the
// file is generated from the selected profile and rewritten by the next
// `authselect select` or `apply-changes`: a hand edit is lost, so the fix
// goes through a custom profile instead.
struct Authselect {
  bool managed = false;
  std::string profile;                // "sssd", "custom/machineid"; empty: unknown
  std::vector<std::string> features;  // as selected, e.g. with-mkhomedir
};

Authselect authselect_state(const DoctorOptions& o, const std::string& nsswitch_text) {
  namespace fs = std::filesystem;
  Authselect a;
  auto conf = machineid::read_file(o.authselect_dir + "/authselect.conf", 1 << 16);
  // authselect.conf: the profile id on the first line, one feature a line
  // after it.
  if (conf.ok()) {
    std::istringstream in(*conf);
    std::string line;
    while (std::getline(in, line)) {
      auto begin = line.find_first_not_of(" \t");
      if (begin == std::string::npos || line[begin] == '#') continue;
      line = line.substr(begin, line.find_last_not_of(" \t\r") - begin + 1);
      if (a.profile.empty()) {
        a.profile = line;
      } else {
        a.features.push_back(line);
      }
    }
  }
  // The generated file is authselect's own, and nsswitch.conf a link to it.
  std::error_code ec;
  bool linked = conf.ok() && fs::is_symlink(fs::symlink_status(o.nsswitch, ec)) &&
                fs::equivalent(o.nsswitch, o.authselect_dir + "/nsswitch.conf", ec);
  // A copy keeps the header authselect writes at the top of it.
  bool header = false;
  std::istringstream in(nsswitch_text);
  std::string line;
  while (!header && std::getline(in, line) && (line.empty() || line[0] == '#'))
    header = line.find("Generated by authselect") != std::string::npos;
  a.managed = linked || header;
  return a;
}

// The fix where authselect owns the file: never an edit of nsswitch.conf.
std::string authselect_fix(const DoctorOptions& o, const Authselect& a) {
  const std::string custom = "custom/";
  std::string features;
  for (const auto& f : a.features) features += " " + f;
  if (a.profile.starts_with(custom)) {
    return "authselect manages " + o.nsswitch + " from the custom profile " + a.profile +
           ": put machineid at the end of the passwd: and group: lines of " + o.authselect_dir + "/" + a.profile +
           "/nsswitch.conf, then run 'authselect apply-changes' (editing " + o.nsswitch +
           " itself is undone by authselect)";
  }
  std::string base = a.profile.empty() ? "<the profile 'authselect current' names>" : a.profile;
  return "authselect manages " + o.nsswitch + " (profile " + (a.profile.empty() ? "unknown" : a.profile) +
         "); do not edit it, make a custom profile from the current one: 'authselect create-profile machineid -b " +
         base + " --symlink-meta --symlink-pam', put machineid at the end of the passwd: and group: lines of " +
         o.authselect_dir + "/custom/machineid/nsswitch.conf, then 'authselect select custom/machineid" +
         (a.profile.empty() ? std::string(" <its features>") : features) +
         "' (README.authselect in the package's documentation)";
}

void check_nsswitch(const DoctorOptions& o, Report& r) {
  auto text = machineid::read_file(o.nsswitch, 1 << 20);
  if (!text.ok()) {
    r.fail("nsswitch", text.error().message, "");
    return;
  }
  Authselect authselect = authselect_state(o, *text);
  if (authselect.managed)
    r.ok("nsswitch", o.nsswitch + " is managed by authselect (profile " +
                         (authselect.profile.empty() ? std::string("unknown") : authselect.profile) + ")");
  std::map<std::string, std::vector<std::string>> db;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::istringstream words(line.substr(colon + 1));
    std::string w;
    auto& sources = db[line.substr(0, line.find_first_of(" \t:"))];
    while (words >> w) sources.push_back(w);
  }
  // machineid must come last: every other source (files, systemd, sss,
  // ldap...) answers first, so no name or id they know is ever shadowed.
  for (const char* name : {"passwd", "group"}) {
    std::vector<std::string> sources;
    for (const auto& w : db[name])
      if (w.front() != '[') sources.push_back(w);  // action brackets are not sources
    std::string line;
    for (const auto& x : db[name]) line += (line.empty() ? "" : " ") + x;
    auto ours = std::find(sources.begin(), sources.end(), "machineid");
    std::string fix = authselect.managed
                          ? authselect_fix(o, authselect)
                          : std::string("put machineid at the end of the ") + name + ": line of " + o.nsswitch +
                                " (e.g. '" + name + ": files systemd machineid'), so every other source answers first";
    if (ours == sources.end()) {
      r.fail("nsswitch", std::string(name) + ": '" + line + "' lacks machineid", fix);
    } else if (ours + 1 != sources.end()) {
      r.fail("nsswitch", std::string(name) + ": '" + line + "' lists " + *(ours + 1) +
                             " after machineid, whose names and ids machineid would shadow",
             fix);
    } else if (ours == sources.begin()) {
      r.fail("nsswitch", std::string(name) + ": '" + line + "' has no source before machineid", fix);
    } else {
      r.ok("nsswitch", std::string(name) + ": machineid is the last source");
    }
  }
}

void check_daemon(const machineid::Config& c, Report& r) {
  auto reply = machineid::call_daemon(c.daemon.socket, machineid::encode_simple(machineid::MessageKind::status), 2000);
  auto status = reply.ok() ? machineid::decode_status_reply(*reply) : machineid::Result<machineid::StatusReply>(reply.error());
  if (!status.ok()) {
    r.fail("daemon", status.error().message,
           "start it: systemctl start machineid-verifierd (logins are denied while it is down)");
    return;
  }
  auto json = nlohmann::json::parse(status->json, nullptr, false);
  if (json.is_discarded()) {
    r.fail("daemon", "answers with an unreadable status", "restart machineid-verifierd");
    return;
  }
  r.ok("daemon", "answers on " + c.daemon.socket);
  for (const auto& [what, message] : json["errors"].items())
    r.fail("daemon", what + ": " + message.get<std::string>(), "fix the file; the daemon reloads it by itself");
  if (json["krl"].contains("error"))
    r.fail("daemon", "KRL unusable, every login is denied: " + json["krl"]["error"].get<std::string>(),
           "replace " + c.policy.revoked_keys + " with a KRL from ssh-keygen -k, or remove it");
}

void check_ca(const machineid::Config& c, Report& r) {
  auto cas = machineid::CaSet::load(c.cluster.user_ca_file, c.cluster.name);
  if (!cas.ok()) {
    r.fail("ca", cas.error().message, "export it again: tctl auth export --type=user > " + c.cluster.user_ca_file);
    return;
  }
  r.ok("ca", std::to_string(cas->keys().size()) + " trusted key(s) in " + c.cluster.user_ca_file);
  auto sshd_copy = machineid::read_file(c.cluster.user_ca_file + ".sshd", machineid::kMaxCaFileBytes);
  if (!sshd_copy.ok() || *sshd_copy != cas->sshd_form()) {
    r.fail("ca", c.cluster.user_ca_file + ".sshd does not hold the CA file's keys",
           "machineidctl reload (the daemon rewrites it whenever the CA file loads)");
  }
  struct stat st {};
  if (c.cluster.user_ca_url && stat(c.cluster.user_ca_file.c_str(), &st) == 0) {
    auto age = std::time(nullptr) - st.st_mtime;
    if (age > 3 * c.cluster.refresh_interval.count())
      r.warn("ca", "not refreshed for " + std::to_string(age) + "s (refresh_interval " +
                       std::to_string(c.cluster.refresh_interval.count()) + "s)",
             "check that the daemon reaches " + *c.cluster.user_ca_url);
  }
}

// StrictModes, as the daemon applies it: the config, the CA file, the KRL,
// the role and lock directories and every resource file in them.
void check_files(const std::string& config_path, const machineid::Config& c, Report& r) {
  namespace fs = std::filesystem;
  std::vector<std::string> paths = {config_path, c.cluster.user_ca_file};
  auto exists = [](const std::string& p) {
    std::error_code ec;
    return fs::exists(fs::symlink_status(p, ec)) || fs::exists(p, ec);
  };
  if (!c.policy.revoked_keys.empty() && exists(c.policy.revoked_keys)) paths.push_back(c.policy.revoked_keys);
  for (const std::string& dir : {c.policy.roles_dir, c.policy.locks_dir}) {
    if (!exists(dir) || std::find(paths.begin(), paths.end(), dir) != paths.end()) continue;
    paths.push_back(dir);
    std::vector<std::string> files;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (!name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml")))
        files.push_back(it->path().string());
    }
    std::sort(files.begin(), files.end());
    paths.insert(paths.end(), files.begin(), files.end());
  }
  int bad = 0;
  for (const auto& path : paths) {
    auto trusted = path == c.cluster.user_ca_file ? check_ca_file_trusted(c) : machineid::check_trusted_path(path);
    if (trusted.ok()) continue;
    ++bad;
    const std::string& message = trusted.error().message;
    auto fix = message.rfind("; fix: ");
    if (fix == std::string::npos) {
      r.fail("files", message, "");
    } else {
      r.fail("files", message.substr(0, fix) + " (the daemon refuses it)", message.substr(fix + 7));
    }
  }
  if (bad == 0)
    r.ok("files", std::to_string(paths.size()) + " policy files and directories owned by root, not writable by others");
}

void check_clock(Report& r) {
  timex tx{};
  int state = ntp_adjtime(&tx);
  if (state == TIME_ERROR || (tx.status & STA_UNSYNC)) {
    r.warn("clock", "not synchronised (certificate validity is checked against it)",
           "enable NTP: timedatectl set-ntp true, or run chrony/ntpd");
  } else {
    r.ok("clock", "synchronised, estimated error " + std::to_string(tx.esterror) + "us");
  }
}

void check_state_dir(const machineid::Config& c, Report& r) {
  struct stat st {};
  const std::string& dir = c.daemon.state_dir;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    r.warn("state", dir + " does not exist", "the service creates it (StateDirectory=machineid)");
  } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    r.fail("state", dir + " is writable by group or others", "chmod go-w " + dir);
  } else {
    r.ok("state", dir + " is private to its owner");
  }
}

// machineid-sync, when a URL is set: its directory is trusted, each source
// has synced within a few of its intervals, and the lock source is not
// stale (which, under lock_mode strict, is denying every login right now).
void check_sync(const machineid::Config& c, Report& r) {
  if (!machineid::sync_enabled(c)) return;
  const std::string fix_service = "systemctl enable --now machineid-sync.service machineid-sync.timer; "
                                  "journalctl -u machineid-sync";
  struct stat st {};
  if (stat(c.sync.dir.c_str(), &st) != 0) {
    r.fail("sync", c.sync.dir + " does not exist: machineid-sync has never run", fix_service);
    return;
  }
  if (auto trusted = machineid::check_policy_file(c, c.sync.dir); !trusted.ok()) {
    r.fail("sync", trusted.error().message, "chown " + c.sync.user + ": " + c.sync.dir + "; chmod 755 " + c.sync.dir);
    return;
  }
  auto state = machineid::load_sync_state(c);
  if (!state.ok()) {
    r.fail("sync", state.error().message, "let machineid-sync rewrite it: rm it and systemctl restart machineid-sync");
    return;
  }
  std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  struct Source {
    const char* name;
    const std::optional<std::string>& url;
    std::chrono::seconds interval;
  };
  for (const Source& s : {Source{"ca", c.cluster.user_ca_url, c.cluster.refresh_interval},
                          Source{"roles", c.sync.roles_url, c.sync.roles_interval},
                          Source{"locks", c.sync.locks_url, c.sync.locks_interval}}) {
    if (!s.url) continue;
    auto it = state->sources.find(s.name);
    const machineid::SyncSource* known = it == state->sources.end() ? nullptr : &it->second;
    std::string what = std::string(s.name) + " from " + *s.url;
    std::string error = known && known->last_error ? ": " + *known->last_error : "";
    if (!known || !known->last_success) {
      r.fail("sync", what + " has never synced" + error, fix_service);
    } else if (now - *known->last_success > 3 * s.interval.count()) {
      r.warn("sync", what + " last synced " + std::to_string(now - *known->last_success) + "s ago" + error,
             fix_service);
    } else {
      r.ok("sync", what + " synced " + std::to_string(now - *known->last_success) + "s ago");
    }
  }
  if (auto stale = machineid::stale_lock_view(c, *state, now))
    r.fail("sync", "denying every login (lock_mode strict): " + *stale, fix_service);
}

}  // namespace

int doctor(const Args& args) {
  DoctorOptions o;
  o.config = args.value_or("config", o.config);
  o.sshd = args.value_or("sshd", o.sshd);
  o.sshd_config = args.value_or("sshd-config", o.sshd_config);
  o.pam_dir = args.value_or("pam-dir", o.pam_dir);
  o.pam_service = args.value_or("pam-service", o.pam_service);
  o.nsswitch = args.value_or("nsswitch", o.nsswitch);
  o.authselect_dir = args.value_or("authselect-dir", o.authselect_dir);
  auto config = machineid::load_config(o.config);
  if (!config.ok()) return args.fail(kExitUsage, config.error().message);
  Report report(args.has("json"));
  report.ok("config", o.config + " loads");
  check_sshd(o, *config, report);
  check_pam(o, report);
  check_nsswitch(o, report);
  check_daemon(*config, report);
  check_ca(*config, report);
  check_files(o.config, *config, report);
  check_clock(report);
  check_state_dir(*config, report);
  check_sync(*config, report);
  report.finish();
  return report.failures() == 0 ? kExitOk : kExitFindings;
}

}  // namespace machineidctl
