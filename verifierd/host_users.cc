#include "host_users.h"

#include <grp.h>
#include <pwd.h>
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
// Buffers for getpw*_r / getgr*_r start here and double on ERANGE up to the cap.
constexpr std::size_t kFirstBuffer = 4096, kMaxBuffer = 1 << 20;

std::optional<std::uint32_t> parse_id(std::string_view s) {
  std::uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

Lookup found(std::uint32_t id) { return Lookup{Lookup::State::found, id, ""}; }
Lookup failed(std::string why) { return Lookup{Lookup::State::failed, 0, std::move(why)}; }

// One getpw*_r / getgr*_r call with a growing buffer. `call` returns the
// function's result and sets `id` when it found an entry.
template <class Call>
Lookup ask_glibc(const std::string& what, Call call) {
  for (std::size_t size = kFirstBuffer; size <= kMaxBuffer; size *= 2) {
    std::vector<char> buf(size);
    std::optional<std::uint32_t> id;
    int rc = call(buf.data(), buf.size(), id);
    if (rc == ERANGE) continue;
    if (rc == 0) return id ? found(*id) : Lookup{};
    // "Not found" may come back as one of these (getpwnam(3)); anything else
    // is a source that could not answer, which must not pass for "absent".
    if (rc == ENOENT || rc == ESRCH) return Lookup{};
    return failed(what + ": " + std::strerror(rc));
  }
  return failed(what + ": entry larger than " + std::to_string(kMaxBuffer) + " bytes");
}

class SystemAccounts final : public Accounts {
 public:
  Lookup user(std::string_view name) override {
    std::string n(name);
    return ask_glibc("getpwnam " + n, [&](char* b, std::size_t s, auto& id) {
      passwd pw{}, *out = nullptr;
      int rc = getpwnam_r(n.c_str(), &pw, b, s, &out);
      if (rc == 0 && out) id = out->pw_uid;
      return rc;
    });
  }
  Lookup group(std::string_view name) override {
    std::string n(name);
    return ask_glibc("getgrnam " + n, [&](char* b, std::size_t s, auto& id) {
      struct group gr{}, *out = nullptr;
      int rc = getgrnam_r(n.c_str(), &gr, b, s, &out);
      if (rc == 0 && out) id = out->gr_gid;
      return rc;
    });
  }
  Lookup uid(std::uint32_t v) override {
    return ask_glibc("getpwuid " + std::to_string(v), [&](char* b, std::size_t s, auto& id) {
      passwd pw{}, *out = nullptr;
      int rc = getpwuid_r(v, &pw, b, s, &out);
      if (rc == 0 && out) id = out->pw_uid;
      return rc;
    });
  }
  Lookup gid(std::uint32_t v) override {
    return ask_glibc("getgrgid " + std::to_string(v), [&](char* b, std::size_t s, auto& id) {
      struct group gr{}, *out = nullptr;
      int rc = getgrgid_r(v, &gr, b, s, &out);
      if (rc == 0 && out) id = out->gr_gid;
      return rc;
    });
  }
};

class FileAccounts final : public Accounts {
 public:
  FileAccounts(std::string passwd, std::string group)
      : passwd_(std::move(passwd)), group_(std::move(group)) {}
  Lookup user(std::string_view name) override { return by_name(passwd_, name); }
  Lookup group(std::string_view name) override { return by_name(group_, name); }
  Lookup uid(std::uint32_t id) override { return by_id(passwd_, id); }
  Lookup gid(std::uint32_t id) override { return by_id(group_, id); }

 private:
  // Calls f(name, id) for each "name:x:id:..." line until it returns true;
  // NIS "+"/"-" lines and malformed ones are skipped, as glibc does.
  template <class F>
  static Lookup scan(const std::string& path, F f) {
    auto text = read_file(path, kMaxAccountFileBytes);
    if (!text.ok()) return failed(text.error().message);
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') continue;
      auto c1 = line.find(':');
      auto c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
      auto c3 = c2 == std::string::npos ? c2 : line.find(':', c2 + 1);
      if (c3 == std::string::npos || c1 == 0) continue;
      auto id = parse_id(std::string_view(line).substr(c2 + 1, c3 - c2 - 1));
      if (id && f(std::string_view(line).substr(0, c1), *id)) return found(*id);
    }
    return Lookup{};
  }
  static Lookup by_name(const std::string& path, std::string_view name) {
    return scan(path, [&](std::string_view n, std::uint32_t) { return n == name; });
  }
  static Lookup by_id(const std::string& path, std::uint32_t id) {
    return scan(path, [&](std::string_view, std::uint32_t v) { return v == id; });
  }

  std::string passwd_, group_;
};

HostUserReply refusal(std::string message) {
  HostUserReply r;
  r.message = std::move(message);
  return r;
}

HostUserReply entry(std::string_view login, std::uint32_t uid, const std::string& gecos,
                    const std::string& home, const std::string& shell) {
  HostUserReply r;
  r.found = true;
  r.name = std::string(login);
  r.uid = r.gid = uid;
  r.gecos = gecos;
  r.home = home;
  r.shell = shell;
  return r;
}

std::string home_of(const Config::HostUsers& config, std::string_view login) {
  std::string home = config.home;
  for (auto at = home.find("{login}"); at != std::string::npos;
       at = home.find("{login}", at + login.size()))
    home.replace(at, 7, login);
  return home;
}

// The uids of `name`'s probe sequence in the range, in order: every uid of
// the range once, starting at the hash.
class Sequence {
 public:
  Sequence(std::string_view name, const Config::HostUsers& c)
      : min_(c.uid_min), size_(std::uint64_t{c.uid_max} - c.uid_min + 1),
        start_(login_hash(name) % size_) {}
  std::uint64_t size() const { return size_; }
  std::uint32_t operator[](std::uint64_t i) const {
    return static_cast<std::uint32_t>(min_ + (start_ + i) % size_);
  }

 private:
  std::uint64_t min_, size_, start_;
};

// Whether another source knows `id` as a uid or a gid (both: the host
// user's primary group has its uid as gid).
Lookup foreign_id(Accounts& accounts, std::uint32_t id) {
  Lookup u = accounts.uid(id);
  if (u.found() || u.failed()) return u;
  return accounts.gid(id);
}

std::string range_of(const Config::HostUsers& c) {
  return "[" + std::to_string(c.uid_min) + ", " + std::to_string(c.uid_max) + "]";
}

}  // namespace

std::unique_ptr<Accounts> system_accounts() { return std::make_unique<SystemAccounts>(); }

std::unique_ptr<Accounts> file_accounts(std::string passwd_path, std::string group_path) {
  return std::make_unique<FileAccounts>(std::move(passwd_path), std::move(group_path));
}

std::uint64_t login_hash(std::string_view login) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : login) h = (h ^ c) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

HostUsers::HostUsers(std::string db_path, std::unique_ptr<Accounts> accounts)
    : db_path_(std::move(db_path)), accounts_(std::move(accounts)) {}

Status HostUsers::load() {
  // A daemon killed while rewriting the whole file leaves write_file_atomic's
  // temporary behind; users.db itself is whole either way.
  std::error_code ec;
  fs::path path(db_path_);
  std::string stale = path.filename().string() + ".tmp.";
  for (const auto& e : fs::directory_iterator(path.parent_path(), ec))
    if (e.path().filename().string().rfind(stale, 0) == 0) fs::remove(e.path(), ec);
  auto store = UserStore::open(db_path_);
  if (!store.ok()) {
    store_.reset();
    error_ = store.error().message +
             " (host users are unavailable until it is repaired; it is not overwritten)";
    return make_error(store.error().code, error_);
  }
  store_ = std::move(*store);
  error_.clear();
  return {};
}

Status HostUsers::current() {
  if (available() && store_->replaced()) return load();
  if (!available()) return make_error(Errc::io, error_);
  return {};
}

HostUserReply HostUsers::provisional(std::string_view login,
                                     const Config::HostUsers& config) const {
  if (!available()) return refusal(error_);
  if (!valid_host_login(login))
    return refusal("'" + std::string(login) + "' is not a valid login for a host user");
  auto existing = store_->user(login);
  if (!existing.ok()) return refusal(existing.error().message);
  if (const auto& u = *existing) return entry(u->login, u->uid, u->gecos, u->home, u->shell);
  Lookup named = accounts_->user(login);
  if (named.found()) return refusal("'" + std::string(login) + "' is another source's account");
  if (named.failed()) return refusal(named.error);
  Lookup group = accounts_->group(login);
  if (group.found() || store_->group(login))
    return refusal("a group named '" + std::string(login) + "' exists");
  if (group.failed()) return refusal(group.error);

  Sequence seq(login, config);
  int foreign = 0;
  for (std::uint64_t i = 0; i < seq.size(); ++i) {
    std::uint32_t uid = seq[i];
    if (store_->taken(uid)) continue;
    Lookup other = foreign_id(*accounts_, uid);
    if (other.failed()) return refusal(other.error);
    if (!other.found()) return entry(login, uid, "", home_of(config, login), config.shell);
    if (++foreign >= kMaxForeignProbes)
      return refusal(std::to_string(kMaxForeignProbes) +
                     " uids in a row are known to other sources; an allowed login records them");
  }
  return refusal("no free uid in " + range_of(config));
}

Result<GrantOutcome> HostUsers::grant(const GrantRequest& request, const Config::HostUsers& config,
                                      std::int64_t now) {
  const std::string& login = request.login;
  GrantOutcome outcome;
  auto note = [&](const std::string& what) {
    outcome.note += (outcome.note.empty() ? "" : "; ") + what;
  };

  // machineid is the last source: a login another source has is that
  // source's account, even if it was once a host user too, and needs no
  // users.db (a broken one must not lock root out).
  Lookup named = accounts_->user(login);
  if (named.failed()) return make_error(Errc::io, named.error);
  if (named.found()) return outcome;
  MID_CHECK(current());
  UserStore& store = *store_;
  bool must_write = false;  // the login's access depends on this write

  auto existing = store.user(login);
  if (!existing.ok()) return existing.error();
  std::optional<HostUser> user = std::move(*existing);
  if (!user) {
    if (!request.create)
      return make_error(Errc::unsupported,
                        "'" + login + "' exists in no NSS source and no role granting it sets " +
                            "create_host_user_mode");
    if (!valid_host_login(login))
      return make_error(Errc::unsupported, "'" + login + "' is not a valid login for a host user");
    Lookup group = accounts_->group(login);
    if (group.failed()) return make_error(Errc::io, group.error);
    if (group.found() || store.group(login))
      return make_error(Errc::unsupported, "a group named '" + login +
                                               "' exists, so it cannot be the host user's primary group");

    // The walk sshd's lookup made, again; see host_users.h for the denials.
    Sequence seq(login, config);
    std::optional<std::uint32_t> uid;
    std::string stale;  // why sshd may hold another uid than the one found
    bool recorded = false;
    std::string record_error;
    for (std::uint64_t i = 0; i < seq.size() && !uid; ++i) {
      std::uint32_t c = seq[i];
      if (auto t = store.taken(c)) {
        auto by = found_by_.find(c);
        bool own = t->kind == TakenId::Kind::other && by != found_by_.end() &&
                   by->second.first == login && by->second.second == t->since;
        if (!own && (t->since > now || now - t->since < kProvisionalSeconds) && stale.empty())
          stale = "uid " + std::to_string(c) + ", earlier in its sequence, was taken at " +
                  std::to_string(t->since) + "; a connection that looked '" + login +
                  "' up before may hold it: try again after " +
                  std::to_string(t->since + kProvisionalSeconds);
        continue;
      }
      Lookup other = foreign_id(*accounts_, c);
      if (other.failed()) return make_error(Errc::io, other.error);
      if (other.found()) {
        auto written = store.put_taken(TakenId{c, TakenId::Kind::other, now});
        if (!written.ok() && record_error.empty()) record_error = written.error().message;
        found_by_[c] = {login, now};
        recorded = true;
        continue;
      }
      uid = c;
    }
    if (recorded) {
      // sshd looked the login up before another source took those uids, or
      // after: it cannot be told, so this attempt is denied and the next
      // one's lookup skips them.
      std::string why = "uids earlier in the sequence of '" + login +
                        "' are known to another NSS source (now recorded as taken); the uid sshd "
                        "resolved may be one of them: try again";
      if (!record_error.empty()) why += " (recording them failed: " + record_error + ")";
      return make_error(Errc::unsupported, why);
    }
    if (!stale.empty()) return make_error(Errc::unsupported, stale);
    if (!uid) return make_error(Errc::limit, "no free uid in " + range_of(config));

    if (request.uid_trait && *request.uid_trait != std::to_string(*uid))
      note(std::string(kUidTrait) + " " + *request.uid_trait + " not used: sshd resolved '" + login +
           "' before authentication with uid " + std::to_string(*uid));
    HostUser u;
    u.login = login;
    u.uid = *uid;
    u.home = home_of(config, login);
    u.shell = config.shell;
    u.first_login = now;
    user = std::move(u);
    must_write = true;
  }

  std::vector<std::uint32_t> gids;
  for (const auto& name : request.groups) {
    std::optional<std::uint32_t> gid;
    if (name == login) continue;  // its primary group
    Lookup other = accounts_->group(name);
    if (other.failed()) return make_error(Errc::io, other.error);
    if (other.found()) {
      gid = other.id;
    } else if (auto g = store.group(name)) {
      gid = g->gid;
    } else if (auto owner = store.user(name); owner.ok() && *owner) {
      gid = (*owner)->uid;
    } else if (!owner.ok()) {
      return owner.error();
    } else if (!valid_host_login(name)) {
      note("group '" + name + "' skipped: not a usable group name");
    } else {
      Sequence seq(name, config);
      for (std::uint64_t i = 0; i < seq.size() && !gid; ++i) {
        std::uint32_t c = seq[i];
        // A new user's uid is not stored yet, but is its own.
        if (c == user->uid || store.taken(c)) continue;
        Lookup foreign = foreign_id(*accounts_, c);
        if (foreign.failed()) return make_error(Errc::io, foreign.error);
        if (foreign.found()) {
          MID_CHECK(store.put_taken(TakenId{c, TakenId::Kind::other, now}));
          continue;
        }
        gid = c;
      }
      if (!gid) return make_error(Errc::limit, "no free gid in " + range_of(config) + " for group '" + name + "'");
      MID_CHECK(store.put_group(HostGroup{name, *gid}, now));
    }
    if (gid && std::find(gids.begin(), gids.end(), *gid) == gids.end()) gids.push_back(*gid);
  }

  // Groups grant access: a change of them must be on disk. The rest is
  // bookkeeping, whose failure is logged and never denies.
  must_write = must_write || user->gids != gids;
  bool bookkeeping = user->bot != request.bot || now - user->last_login >= kLastLoginResolution;
  user->gids = gids;
  user->bot = request.bot;
  if (must_write || bookkeeping) user->last_login = now;
  outcome.uid = user->uid;
  if (must_write || bookkeeping) {
    auto written = store.put_user(*user, now);
    if (!written.ok()) {
      if (must_write) return written.error();
      note("last login not recorded: " + written.error().message);
    }
  }
  return outcome;
}

Status HostUsers::forget(std::string_view login, std::int64_t now) {
  MID_CHECK(current());
  // sshd may still hold the uid for a connection that resolved the login
  // before now: retired now, it counts as freshly taken (host_users.h).
  return store_->retire(login, now);
}

std::size_t HostUsers::foreign_count() const { return store_ ? store_->foreign() : 0; }

std::string HostUsers::list_json() const {
  machineid::UserDb db;
  std::string error = error_;
  if (store_) {
    auto snap = store_->snapshot();
    if (snap.ok()) {
      db = std::move(*snap);
    } else if (error.empty()) {
      error = snap.error().message;
    }
  }
  std::map<std::uint32_t, std::string> group_names;
  for (const auto& g : db.groups) group_names.emplace(g.gid, g.name);
  for (const auto& u : db.users) group_names.emplace(u.uid, u.login);

  nlohmann::ordered_json users = nlohmann::ordered_json::array(), retired = users, taken = users;
  std::vector<const HostUser*> sorted;
  for (const auto& u : db.users) sorted.push_back(&u);
  std::sort(sorted.begin(), sorted.end(), [](auto a, auto b) { return a->login < b->login; });
  std::sort(db.retired.begin(), db.retired.end(),
            [](const auto& a, const auto& b) { return a.uid < b.uid; });
  std::sort(db.taken.begin(), db.taken.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const HostUser* u : sorted) {
    auto groups = nlohmann::ordered_json::array();
    for (auto gid : u->gids) {
      auto it = group_names.find(gid);
      if (it == group_names.end()) {
        std::vector<char> buf(kFirstBuffer);
        struct group gr{}, *out = nullptr;
        if (getgrgid_r(gid, &gr, buf.data(), buf.size(), &out) == 0 && out) {
          groups.push_back(std::string(out->gr_name));
          continue;
        }
      }
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
  for (const auto& r : db.retired)
    retired.push_back({{"login", r.login}, {"uid", r.uid}, {"retired_at", r.retired_at}});
  for (const auto& t : db.taken)
    if (t.kind == TakenId::Kind::other) taken.push_back({{"id", t.id}, {"since", t.since}});
  nlohmann::ordered_json j;
  j["db"] = db_path_;
  if (!error.empty()) j["error"] = error;
  j["users"] = users;
  j["retired"] = retired;
  j["taken_by_other_sources"] = taken;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace verifierd
