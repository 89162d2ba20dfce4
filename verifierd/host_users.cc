#include "host_users.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "machineid/io.h"

namespace verifierd {
namespace {

using namespace machineid;
namespace fs = std::filesystem;

// /etc/passwd and /etc/group are small; this only guards against a runaway file.
constexpr std::size_t kMaxAccountFileBytes = 64 * 1024 * 1024;

std::optional<std::uint32_t> parse_id(std::string_view s) {
  std::uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Calls f(name, id) for each "name:x:id:..." line; NIS "+"/"-" lines and
// malformed ones are skipped.
template <class F>
void for_each_entry(const std::string& text, F f) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') continue;
    auto c1 = line.find(':');
    auto c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    auto c3 = c2 == std::string::npos ? c2 : line.find(':', c2 + 1);
    if (c3 == std::string::npos || c1 == 0) continue;
    if (auto id = parse_id(std::string_view(line).substr(c2 + 1, c3 - c2 - 1)))
      f(line.substr(0, c1), *id);
  }
}

HostUserReply refusal(std::string message) {
  HostUserReply r;
  r.message = std::move(message);
  return r;
}

HostUserReply entry_of(const HostUser& u) {
  HostUserReply r;
  r.found = true;
  r.name = u.login;
  r.uid = r.gid = u.uid;
  r.gecos = u.gecos;
  r.home = u.home;
  r.shell = u.shell;
  return r;
}

std::string home_of(const Config::HostUsers& config, std::string_view login) {
  std::string home = config.home;
  for (auto at = home.find("{login}"); at != std::string::npos;
       at = home.find("{login}", at + login.size()))
    home.replace(at, 7, login);
  return home;
}

// Every id a new user or group must not take.
std::set<std::uint32_t> taken_ids(const UserDb& db, const LocalAccounts& local) {
  std::set<std::uint32_t> taken(local.uids);
  taken.insert(local.gids.begin(), local.gids.end());
  for (const auto& u : db.users) taken.insert(u.uid);
  for (const auto& r : db.retired) taken.insert(r.uid);
  for (const auto& g : db.groups) taken.insert(g.gid);
  return taken;
}

// The lowest id in [uid_min, uid_max] that is not taken. Never goes outside
// the range: a full range is an error, not a wrap-around.
Result<std::uint32_t> allocate(const std::set<std::uint32_t>& taken,
                               const Config::HostUsers& config) {
  std::uint64_t candidate = config.uid_min;
  for (auto it = taken.lower_bound(config.uid_min); it != taken.end() && *it == candidate; ++it)
    ++candidate;
  if (candidate > config.uid_max)
    return make_error(Errc::limit, "no free uid in [" + std::to_string(config.uid_min) + ", " +
                                       std::to_string(config.uid_max) +
                                       "]: every one is a host user's, retired, " +
                                       "reserved or in /etc/passwd or /etc/group");
  return static_cast<std::uint32_t>(candidate);
}

// The uid a host_user_uid trait asks for, when it is one we may give.
std::optional<std::uint32_t> trait_uid(const std::string& value,
                                       const std::set<std::uint32_t>& taken, std::string& note) {
  auto uid = parse_id(value);
  if (!uid || *uid < kMinHostUid || *uid > kMaxHostUid || *uid == 65534 || *uid == 65535) {
    note = std::string(kUidTrait) + " '" + value + "' is not a uid in [" +
           std::to_string(kMinHostUid) + ", " + std::to_string(kMaxHostUid) +
           "] other than 65534 and 65535";
    return std::nullopt;
  }
  if (taken.count(*uid)) {
    note = std::string(kUidTrait) + " " + value + " is taken";
    return std::nullopt;
  }
  return uid;
}

HostUser* find_user(UserDb& db, std::string_view login) {
  auto it = std::find_if(db.users.begin(), db.users.end(),
                         [&](const HostUser& u) { return u.login == login; });
  return it == db.users.end() ? nullptr : &*it;
}

const HostGroup* find_group(const UserDb& db, std::string_view name) {
  auto it = std::find_if(db.groups.begin(), db.groups.end(),
                         [&](const HostGroup& g) { return g.name == name; });
  return it == db.groups.end() ? nullptr : &*it;
}

// Why `login` cannot be a host user of its own, or "".
std::string conflict(const UserDb& db, const LocalAccounts& local, std::string_view login) {
  if (!valid_host_login(login))
    return "'" + std::string(login) + "' is not a valid login for a host user";
  if (local.groups.count(login) || find_group(db, login))
    return "a group named '" + std::string(login) +
           "' exists, so it cannot be the host user's primary group";
  return "";
}

}  // namespace

Result<LocalAccounts> read_local_accounts(const std::string& passwd_path,
                                          const std::string& group_path) {
  LocalAccounts out;
  auto passwd = read_file(passwd_path, kMaxAccountFileBytes);
  if (!passwd.ok()) return passwd.error();
  auto group = read_file(group_path, kMaxAccountFileBytes);
  if (!group.ok()) return group.error();
  for_each_entry(*passwd, [&](std::string name, std::uint32_t uid) {
    out.users.insert(std::move(name));
    out.uids.insert(uid);
  });
  for_each_entry(*group, [&](std::string name, std::uint32_t gid) {
    out.groups.emplace(std::move(name), gid);
    out.gids.insert(gid);
  });
  return out;
}

HostUsers::HostUsers(std::string db_path, std::string passwd_path, std::string group_path)
    : db_path_(std::move(db_path)),
      passwd_path_(std::move(passwd_path)),
      group_path_(std::move(group_path)) {}

Status HostUsers::load() {
  // A daemon killed while writing leaves write_file_atomic's temporary
  // behind; users.db itself is whole either way.
  std::error_code ec;
  fs::path path(db_path_);
  std::string stale = path.filename().string() + ".tmp.";
  for (const auto& entry : fs::directory_iterator(path.parent_path(), ec))
    if (entry.path().filename().string().rfind(stale, 0) == 0) fs::remove(entry.path(), ec);
  auto db = read_userdb(db_path_);
  if (!db.ok()) {
    error_ = db.error().message +
             " (host users are unavailable until it is repaired; it is not overwritten)";
    return make_error(db.error().code, error_);
  }
  db_ = std::move(*db);
  error_.clear();
  return {};
}

Result<LocalAccounts> HostUsers::local() const {
  return read_local_accounts(passwd_path_, group_path_);
}

UserDb HostUsers::pruned(std::int64_t now) const {
  UserDb db = db_;
  std::erase_if(db.users, [&](const HostUser& u) { return u.pending && u.expires <= now; });
  return db;
}

Status HostUsers::commit(UserDb next) {
  std::string dir = db_path_.substr(0, db_path_.rfind('/'));
  if (!dir.empty() && mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return make_error(Errc::io, dir + ": cannot create: " + std::strerror(errno));
  MID_CHECK(write_userdb(db_path_, next));
  db_ = std::move(next);
  return {};
}

HostUserReply HostUsers::reserve(std::string_view login, const Config::HostUsers& config,
                                 std::int64_t now) {
  if (!available()) return refusal(error_);
  auto local = this->local();
  if (!local.ok()) return refusal(local.error().message);
  if (local->users.count(login)) return refusal("'" + std::string(login) + "' is a local account");
  UserDb next = pruned(now);
  if (const HostUser* u = find_user(next, login)) return entry_of(*u);
  if (std::string why = conflict(next, *local, login); !why.empty()) return refusal(why);
  if (reservation_count(now) >= kMaxReservations)
    return refusal(std::to_string(kMaxReservations) + " reservations are pending; try again later");
  auto uid = allocate(taken_ids(next, *local), config);
  if (!uid.ok()) return refusal(uid.error().message);

  HostUser u;
  u.login = std::string(login);
  u.uid = *uid;
  u.home = home_of(config, login);
  u.shell = config.shell;
  u.pending = true;
  u.expires = now + kReservationSeconds;
  next.users.push_back(u);
  if (auto s = commit(std::move(next)); !s.ok()) return refusal(s.error().message);
  return entry_of(u);
}

Result<GrantOutcome> HostUsers::grant(const GrantRequest& request, const Config::HostUsers& config,
                                      std::int64_t now) {
  if (!available()) return make_error(Errc::io, error_);
  MID_TRY(local, this->local());
  if (local.users.count(request.login)) return GrantOutcome{};
  UserDb next = pruned(now);
  GrantOutcome outcome;
  std::set<std::uint32_t> taken = taken_ids(next, local);

  HostUser* user = find_user(next, request.login);
  if (user == nullptr) {
    if (std::string why = conflict(next, local, request.login); !why.empty())
      return make_error(Errc::unsupported, why);
    HostUser u;
    u.login = request.login;
    std::optional<std::uint32_t> wanted;
    if (request.uid_trait) wanted = trait_uid(*request.uid_trait, taken, outcome.note);
    if (wanted) {
      u.uid = *wanted;
    } else {
      MID_TRY(uid, allocate(taken, config));
      u.uid = uid;
    }
    taken.insert(u.uid);
    u.home = home_of(config, request.login);
    u.shell = config.shell;
    next.users.push_back(std::move(u));
    user = &next.users.back();
  } else if (user->pending && request.uid_trait &&
             *request.uid_trait != std::to_string(user->uid)) {
    outcome.note = std::string(kUidTrait) + " " + *request.uid_trait +
                   " not used: sshd already holds uid " + std::to_string(user->uid) +
                   ", reserved before authentication";
  }

  std::vector<std::uint32_t> gids;
  for (const auto& name : request.groups) {
    std::optional<std::uint32_t> gid;
    if (name == request.login) continue;  // its primary group
    if (auto it = local.groups.find(name); it != local.groups.end()) {
      gid = it->second;
    } else if (const HostGroup* g = find_group(next, name)) {
      gid = g->gid;
    } else if (const HostUser* owner = find_user(next, name); owner && !owner->pending) {
      gid = owner->uid;
    } else if (owner || !valid_host_login(name)) {
      outcome.note += (outcome.note.empty() ? "" : "; ") +
                      ("group '" + name + "' skipped: not a usable group name");
    } else {
      MID_TRY(new_gid, allocate(taken, config));
      taken.insert(new_gid);
      next.groups.push_back(HostGroup{name, new_gid});
      gid = new_gid;
    }
    if (gid && std::find(gids.begin(), gids.end(), *gid) == gids.end()) gids.push_back(*gid);
  }

  bool changed = user->pending || user->gids != gids || user->bot != request.bot ||
                 now - user->last_login >= kLastLoginResolution ||
                 next.users.size() != db_.users.size() || next.groups.size() != db_.groups.size();
  if (user->pending || user->first_login == 0) user->first_login = now;
  user->pending = false;
  user->expires = 0;
  user->gids = gids;
  user->bot = request.bot;
  if (changed) user->last_login = now;
  outcome.uid = user->uid;
  if (changed) MID_CHECK(commit(std::move(next)));
  return outcome;
}

Status HostUsers::forget(std::string_view login, std::int64_t now) {
  if (!available()) return make_error(Errc::io, error_);
  UserDb next = pruned(now);
  HostUser* u = find_user(next, login);
  if (u == nullptr || u->pending)
    return make_error(Errc::unsupported, "'" + std::string(login) + "' is not a host user");
  next.retired.push_back(RetiredUser{u->login, u->uid, now});
  std::erase_if(next.users, [&](const HostUser& x) { return x.login == login; });
  return commit(std::move(next));
}

std::size_t HostUsers::active_count() const {
  return std::count_if(db_.users.begin(), db_.users.end(),
                       [](const HostUser& u) { return !u.pending; });
}

std::size_t HostUsers::reservation_count(std::int64_t now) const {
  return std::count_if(db_.users.begin(), db_.users.end(),
                       [&](const HostUser& u) { return u.pending && u.expires > now; });
}

std::string HostUsers::list_json(std::int64_t now) const {
  std::map<std::uint32_t, std::string> group_names;
  if (auto local = this->local(); local.ok())
    for (const auto& [name, gid] : local->groups) group_names.emplace(gid, name);
  for (const auto& g : db_.groups) group_names.emplace(g.gid, g.name);
  for (const auto& u : db_.users)
    if (!u.pending) group_names.emplace(u.uid, u.login);

  nlohmann::ordered_json users = nlohmann::ordered_json::array(), reservations = users,
                         retired = users;
  std::vector<const HostUser*> sorted;
  for (const auto& u : db_.users) sorted.push_back(&u);
  std::sort(sorted.begin(), sorted.end(), [](auto a, auto b) { return a->login < b->login; });
  for (const HostUser* u : sorted) {
    if (u->pending) {
      if (u->expires > now)
        reservations.push_back({{"login", u->login}, {"uid", u->uid}, {"expires", u->expires}});
      continue;
    }
    auto groups = nlohmann::ordered_json::array();
    for (auto gid : u->gids) {
      auto it = group_names.find(gid);
      groups.push_back(it == group_names.end() ? std::to_string(gid) : it->second);
    }
    users.push_back(
        {{"login", u->login},
         {"uid", u->uid},
         {"gid", u->uid},
         {"groups", groups},
         {"home", u->home},
         {"shell", u->shell},
         {"bot", u->bot.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(u->bot)},
         {"first_login", u->first_login},
         {"last_login", u->last_login}});
  }
  for (const auto& r : db_.retired)
    retired.push_back({{"login", r.login}, {"uid", r.uid}, {"retired_at", r.retired_at}});
  nlohmann::ordered_json j;
  j["db"] = db_path_;
  if (!available()) j["error"] = error_;
  j["users"] = users;
  j["reservations"] = reservations;
  j["retired"] = retired;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace verifierd
