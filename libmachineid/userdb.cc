#include "machineid/userdb.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <numeric>

#include "machineid/io.h"
#include "machineid/userdb_format.h"

namespace machineid {
namespace {

// Appends fixed-layout records and strings to a zero-filled buffer.
class Builder {
 public:
  Builder() : bytes_(sizeof(mid_userdb_header), '\0') {}

  // Starts an 8-byte aligned section and returns its offset.
  std::uint32_t begin_section() {
    bytes_.resize((bytes_.size() + 7) / 8 * 8, '\0');
    return static_cast<std::uint32_t>(bytes_.size());
  }
  template <class T>
  void put(const T& record) {
    bytes_.append(reinterpret_cast<const char*>(&record), sizeof record);
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

// Deduplicated NUL-terminated strings; offset 0 is "".
class Strings {
 public:
  Strings() : pool_(1, '\0') {}
  std::uint32_t add(const std::string& s) {
    if (s.empty()) return 0;
    auto [it, added] = offsets_.try_emplace(s, static_cast<std::uint32_t>(pool_.size()));
    if (added) pool_.append(s).push_back('\0');
    return it->second;
  }
  const std::string& pool() const { return pool_; }

 private:
  std::string pool_;
  std::map<std::string, std::uint32_t> offsets_;
};

Error layout_error(int code) { return make_error(Errc::malformed, mid_userdb_strerror(code)); }

}  // namespace

bool valid_host_login(std::string_view login) {
  return login.size() <= MID_USERDB_MAX_LOGIN && login.find('\0') == std::string_view::npos &&
         mid_userdb_valid_login(std::string(login).c_str());
}

Result<std::string> serialize_userdb(const UserDb& db) {
  for (const auto& u : db.users)
    if (!valid_host_login(u.login))
      return make_error(Errc::malformed, "not a valid host login: '" + u.login + "'");

  std::vector<std::uint32_t> users(db.users.size()), groups(db.groups.size());
  std::iota(users.begin(), users.end(), 0);
  std::iota(groups.begin(), groups.end(), 0);
  std::sort(users.begin(), users.end(),
            [&](auto a, auto b) { return db.users[a].login < db.users[b].login; });
  std::sort(groups.begin(), groups.end(),
            [&](auto a, auto b) { return db.groups[a].name < db.groups[b].name; });
  std::vector<std::uint32_t> position(db.users.size());  // index in db.users -> index in the file
  for (std::uint32_t i = 0; i < users.size(); ++i) position[users[i]] = i;

  Strings strings;
  std::vector<std::uint32_t> ids;
  mid_userdb_header h{};
  std::memcpy(h.magic, MID_USERDB_MAGIC, sizeof h.magic);
  h.version = MID_USERDB_VERSION;
  h.byte_order = MID_USERDB_BYTE_ORDER;

  Builder b;
  h.users = {b.begin_section(), static_cast<std::uint32_t>(users.size())};
  for (auto i : users) {
    const HostUser& u = db.users[i];
    mid_userdb_user r{};
    r.uid = u.uid;
    r.flags = 0;
    r.name = strings.add(u.login);
    r.gecos = strings.add(u.gecos);
    r.home = strings.add(u.home);
    r.shell = strings.add(u.shell);
    r.bot = strings.add(u.bot);
    r.gids = static_cast<std::uint32_t>(ids.size());
    r.ngids = static_cast<std::uint32_t>(u.gids.size());
    ids.insert(ids.end(), u.gids.begin(), u.gids.end());
    r.first_login = u.first_login;
    r.last_login = u.last_login;
    b.put(r);
  }
  std::vector<std::uint32_t> by_uid(users.size());
  std::iota(by_uid.begin(), by_uid.end(), 0);
  std::sort(by_uid.begin(), by_uid.end(),
            [&](auto a, auto b) { return db.users[users[a]].uid < db.users[users[b]].uid; });
  h.users_by_uid = {b.begin_section(), static_cast<std::uint32_t>(by_uid.size())};
  for (auto i : by_uid) b.put(i);

  h.groups = {b.begin_section(), static_cast<std::uint32_t>(groups.size())};
  for (auto i : groups) {
    const HostGroup& g = db.groups[i];
    mid_userdb_group r{};
    r.gid = g.gid;
    r.name = strings.add(g.name);
    r.members = static_cast<std::uint32_t>(ids.size());
    for (auto u : users)
      if (std::count(db.users[u].gids.begin(), db.users[u].gids.end(), g.gid) > 0)
        ids.push_back(position[u]);
    r.nmembers = static_cast<std::uint32_t>(ids.size()) - r.members;
    b.put(r);
  }
  std::vector<std::uint32_t> by_gid(groups.size());
  std::iota(by_gid.begin(), by_gid.end(), 0);
  std::sort(by_gid.begin(), by_gid.end(),
            [&](auto a, auto b) { return db.groups[groups[a]].gid < db.groups[groups[b]].gid; });
  h.groups_by_gid = {b.begin_section(), static_cast<std::uint32_t>(by_gid.size())};
  for (auto i : by_gid) b.put(i);

  std::vector<RetiredUser> retired = db.retired;
  std::sort(retired.begin(), retired.end(),
            [](const auto& a, const auto& b) { return a.uid < b.uid; });
  h.retired = {b.begin_section(), static_cast<std::uint32_t>(retired.size())};
  for (const auto& r : retired) {
    mid_userdb_retired rec{};
    rec.uid = r.uid;
    rec.name = strings.add(r.login);
    rec.retired_at = r.retired_at;
    b.put(rec);
  }

  h.ids = {b.begin_section(), static_cast<std::uint32_t>(ids.size())};
  for (auto id : ids) b.put(id);
  h.strings = {b.begin_section(), static_cast<std::uint32_t>(strings.pool().size())};
  b.bytes() += strings.pool();

  std::vector<TakenId> taken = db.taken;
  std::sort(taken.begin(), taken.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  h.taken = {b.begin_section(), static_cast<std::uint32_t>(taken.size())};
  for (const auto& t : taken) {
    mid_userdb_taken rec{};
    rec.id = t.id;
    rec.kind = static_cast<std::uint32_t>(t.kind);
    rec.since = t.since;
    b.put(rec);
  }
  b.begin_section();  // pads the file to a multiple of 8

  std::string& out = b.bytes();
  if (out.size() > MID_USERDB_MAX_BYTES)
    return make_error(Errc::limit, "users.db would take " + std::to_string(out.size()) +
                                       " bytes, over the limit of " +
                                       std::to_string(MID_USERDB_MAX_BYTES));
  h.size = out.size();
  std::memcpy(out.data(), &h, sizeof h);
  h.checksum = mid_userdb_checksum(out.data() + 16, out.size() - 16);
  std::memcpy(out.data(), &h, sizeof h);

  // Never write what the NSS module would refuse (duplicate names or ids).
  std::vector<std::uint64_t> aligned((out.size() + 7) / 8);
  std::memcpy(aligned.data(), out.data(), out.size());
  mid_userdb check;
  if (int rc = mid_userdb_open(&check, aligned.data(), out.size()); rc != MID_USERDB_OK)
    return make_error(Errc::malformed, std::string("users.db would not pass its own checks: ") +
                                           mid_userdb_strerror(rc) + " (a duplicate name or id?)");
  return std::move(out);
}

Result<UserDb> parse_userdb(std::string_view bytes) {
  // The reader needs 8-byte alignment, which a string's data need not have.
  std::vector<std::uint64_t> aligned((bytes.size() + 7) / 8);
  if (!bytes.empty()) std::memcpy(aligned.data(), bytes.data(), bytes.size());
  mid_userdb db;
  if (int rc = mid_userdb_open(&db, aligned.data(), bytes.size()); rc != MID_USERDB_OK)
    return layout_error(rc);

  UserDb out;
  for (std::uint32_t i = 0; i < db.nusers; ++i) {
    const mid_userdb_user& r = db.users[i];
    if (r.flags & MID_USERDB_PENDING) continue;  // version 1: never a user
    HostUser u;
    u.login = mid_userdb_string(&db, r.name);
    u.uid = r.uid;
    u.gids.assign(db.ids + r.gids, db.ids + r.gids + r.ngids);
    u.gecos = mid_userdb_string(&db, r.gecos);
    u.home = mid_userdb_string(&db, r.home);
    u.shell = mid_userdb_string(&db, r.shell);
    u.bot = mid_userdb_string(&db, r.bot);
    u.first_login = r.first_login;
    u.last_login = r.last_login;
    out.users.push_back(std::move(u));
  }
  for (std::uint32_t i = 0; i < db.ngroups; ++i)
    out.groups.push_back(HostGroup{mid_userdb_string(&db, db.groups[i].name), db.groups[i].gid});
  for (std::uint32_t i = 0; i < db.nretired; ++i)
    out.retired.push_back(RetiredUser{mid_userdb_string(&db, db.retired[i].name), db.retired[i].uid,
                                      db.retired[i].retired_at});
  std::map<std::uint32_t, TakenId> taken;
  for (std::uint32_t i = 0; i < db.ntaken; ++i)
    taken.emplace(db.taken[i].id, TakenId{db.taken[i].id, static_cast<TakenId::Kind>(db.taken[i].kind),
                                          db.taken[i].since});
  // A version 1 file has no taken section: its ids were taken long ago.
  for (const auto& u : out.users) taken.emplace(u.uid, TakenId{u.uid, TakenId::Kind::user, 0});
  for (const auto& r : out.retired) taken.emplace(r.uid, TakenId{r.uid, TakenId::Kind::user, 0});
  for (const auto& g : out.groups) taken.emplace(g.gid, TakenId{g.gid, TakenId::Kind::group, 0});
  for (const auto& [id, t] : taken) out.taken.push_back(t);
  return out;
}

Result<UserDb> read_userdb(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 && errno == ENOENT) return UserDb{};
  auto bytes = read_file(path, MID_USERDB_MAX_BYTES);
  if (!bytes.ok()) return bytes.error();
  auto db = parse_userdb(*bytes);
  if (!db.ok()) return with_context(db.error(), path);
  return db;
}

Status write_userdb(const std::string& path, const UserDb& db) {
  auto bytes = serialize_userdb(db);
  if (!bytes.ok()) return with_context(bytes.error(), path);
  return write_file_atomic(path, *bytes, 0644);
}

}  // namespace machineid
