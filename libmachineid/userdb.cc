#include "machineid/userdb.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <numeric>
#include <unordered_map>

#include "machineid/io.h"
#include "machineid/userdb_format.h"

namespace machineid {
namespace {

Error layout_error(int code) { return make_error(Errc::malformed, mid_userdb_strerror(code)); }

}  // namespace

bool valid_host_login(std::string_view login) {
  return login.size() <= MID_USERDB_MAX_LOGIN && login.find('\0') == std::string_view::npos &&
         mid_userdb_valid_login(std::string(login).c_str());
}

namespace {

HostUser host_user(const mid_userdb_entry& e) {
  HostUser u;
  u.login = e.name;
  u.uid = e.id;
  for (std::uint32_t g = 0; g < e.count; ++g) u.gids.push_back(mid_userdb_gid(&e, g));
  u.gecos = e.gecos;
  u.home = e.home;
  u.shell = e.shell;
  u.bot = e.bot;
  u.first_login = e.first_login;
  u.last_login = e.last_login;
  return u;
}

// A user, group or retired uid record, into the database it belongs to.
void add_record(UserDb& db, const mid_userdb_entry& e) {
  switch (e.kind) {
    case MID_USERDB_REC_USER:
      db.users.push_back(host_user(e));
      break;
    case MID_USERDB_REC_GROUP:
      db.groups.push_back(HostGroup{e.name, e.id});
      break;
    case MID_USERDB_REC_RETIRED:
      db.retired.push_back(RetiredUser{e.name, e.id, e.first_login});
      break;
  }
}

// One version 3 record.
std::string encode_record(std::uint32_t kind, std::uint32_t id, std::uint32_t count,
                          std::int64_t since, std::int64_t first, std::int64_t last,
                          const std::vector<std::uint32_t>& gids,
                          std::initializer_list<std::string_view> strings) {
  mid_userdb_record r{};
  r.kind = kind;
  r.id = id;
  r.count = count;
  r.since = since;
  r.first_login = first;
  r.last_login = last;
  std::string out(sizeof r, '\0');
  for (auto g : gids) out.append(reinterpret_cast<const char*>(&g), sizeof g);
  for (auto str : strings) out.append(str).push_back('\0');
  out.resize((out.size() + 7) / 8 * 8, '\0');
  r.length = static_cast<std::uint32_t>(out.size());
  std::memcpy(out.data(), &r, sizeof r);
  r.checksum = mid_userdb_checksum(out.data() + 8, out.size() - 8);
  std::memcpy(out.data(), &r, sizeof r);
  return out;
}

std::string user_record(const HostUser& u, std::int64_t since) {
  return encode_record(MID_USERDB_REC_USER, u.uid, static_cast<std::uint32_t>(u.gids.size()), since,
                       u.first_login, u.last_login, u.gids, {u.login, u.gecos, u.home, u.shell, u.bot});
}

std::string group_record(const HostGroup& g, std::int64_t since) {
  return encode_record(MID_USERDB_REC_GROUP, g.gid, 0, since, 0, 0, {}, {g.name});
}

std::string retired_record(const RetiredUser& r, std::int64_t since) {
  return encode_record(MID_USERDB_REC_RETIRED, r.uid, 0, since, r.retired_at, 0, {}, {r.login});
}

std::string taken_record(const TakenId& t) {
  return encode_record(MID_USERDB_REC_TAKEN, t.id, static_cast<std::uint32_t>(t.kind), t.since, 0, 0,
                       {}, {});
}

// Slots per table for `n` entries: at most half used after a rebuild.
std::uint32_t slots_for(std::size_t n) {
  std::uint64_t slots = MID_USERDB_MIN_SLOTS;
  while (slots < 2 * n + 2) slots *= 2;
  return static_cast<std::uint32_t>(slots);
}

std::uint32_t probe_empty(const std::vector<std::uint8_t>& state, std::uint64_t hash) {
  std::uint32_t mask = static_cast<std::uint32_t>(state.size()) - 1;
  for (std::uint32_t i = 0;; ++i) {
    std::uint32_t at = static_cast<std::uint32_t>(hash + i) & mask;
    if (state[at] != 1) return at;
  }
}

// A record kind's taken kind.
std::uint32_t taken_kind_of(const mid_userdb_entry& e) {
  switch (e.kind) {
    case MID_USERDB_REC_USER:
    case MID_USERDB_REC_RETIRED:
      return MID_USERDB_TAKEN_USER;
    case MID_USERDB_REC_GROUP:
      return MID_USERDB_TAKEN_GROUP;
    default:
      return e.count;
  }
}

// A version 3 file, checked whole: every id slot's record and every name
// slot's. `repair`: the name table is behind the id table (a crash between
// an update's two slot writes), which a rebuild mends.
struct Parsed {
  mid_userdb_header3 header{};
  std::unordered_map<std::string, UserStore::Entry> by_name;
  std::unordered_map<std::uint32_t, UserStore::Entry> by_id;
  std::vector<std::uint8_t> name_state, id_state;
  std::uint32_t names_used = 0, ids_used = 0;
  std::uint64_t live_bytes = 0;
  bool repair = false;
  UserDb db;
};

Status parse_v3(std::string_view bytes, Parsed& p, bool want_db) {
  if (bytes.size() < sizeof p.header || bytes.size() > MID_USERDB_MAX_FILE_BYTES)
    return layout_error(MID_USERDB_E_SIZE);
  std::memcpy(&p.header, bytes.data(), sizeof p.header);
  const mid_userdb_header3& h = p.header;
  if (int rc = mid_userdb_header3_check(&h); rc != MID_USERDB_OK) return layout_error(rc);
  if (h.heap > bytes.size()) return layout_error(MID_USERDB_E_SIZE);
  p.name_state.assign(h.nslots, 0);
  p.id_state.assign(h.nslots, 0);
  // Checked where it lies: the record checks read through memcpy and byte
  // pointers only, so no aligned copy is needed.
  auto record = [&](std::uint64_t offset, mid_userdb_entry& e) -> int {
    if (offset >= bytes.size()) return MID_USERDB_E_SIZE;
    std::size_t avail = std::min<std::size_t>(MID_USERDB_MAX_RECORD, bytes.size() - offset);
    return mid_userdb_record_check(bytes.data() + offset, avail, &e);
  };
  auto slot = [&](std::uint32_t table, std::uint32_t i, mid_userdb_slot& s) {
    std::memcpy(&s, bytes.data() + (table == MID_USERDB_TABLE_NAMES ? h.names : h.ids) + 16 * std::uint64_t{i},
                sizeof s);
    return mid_userdb_slot_state(&h, table, i, &s);
  };
  // Named records enter by_name from the id table, without a name slot yet:
  // the name table's pass must then find each of them at its slot. (A
  // map of names built apart and dropped would leave a million small freed
  // blocks in malloc's lists, which the first allocations after a load
  // would pay to sort.)
  constexpr std::uint32_t kNoSlot = UINT32_MAX;
  for (std::uint32_t i = 0; i < h.nslots; ++i) {
    mid_userdb_slot s;
    int st = slot(MID_USERDB_TABLE_IDS, i, s);
    if (st < 0) return layout_error(st);
    if (st == 2) return layout_error(MID_USERDB_E_LAYOUT);
    if (st == 0) continue;
    mid_userdb_entry e;
    if (int rc = record(s.offset, e); rc != MID_USERDB_OK) return layout_error(rc);
    if (e.id != s.key) return layout_error(MID_USERDB_E_LAYOUT);
    UserStore::Entry entry{s.offset, e.length, e.kind, e.id, i, taken_kind_of(e), e.since};
    if (!p.by_id.emplace(e.id, entry).second) return layout_error(MID_USERDB_E_LAYOUT);
    p.id_state[i] = 1;
    ++p.ids_used;
    p.live_bytes += e.length;
    if (e.kind == MID_USERDB_REC_USER || e.kind == MID_USERDB_REC_GROUP) {
      entry.slot = kNoSlot;
      if (!p.by_name.emplace(e.name, entry).second) return layout_error(MID_USERDB_E_LAYOUT);
    }
    if (want_db) {
      add_record(p.db, e);
      p.db.taken.push_back(TakenId{e.id, static_cast<TakenId::Kind>(taken_kind_of(e)), e.since});
    }
  }
  std::size_t matched = 0;
  for (std::uint32_t i = 0; i < h.nslots; ++i) {
    mid_userdb_slot s;
    int st = slot(MID_USERDB_TABLE_NAMES, i, s);
    if (st < 0) return layout_error(st);
    if (st == 0) continue;
    ++p.names_used;
    if (st == 2) {
      p.name_state[i] = 2;
      continue;
    }
    p.name_state[i] = 1;
    mid_userdb_entry e;
    if (int rc = record(s.offset, e); rc != MID_USERDB_OK) return layout_error(rc);
    if ((e.kind != MID_USERDB_REC_USER && e.kind != MID_USERDB_REC_GROUP) ||
        static_cast<std::uint32_t>(mid_userdb_name_hash(e.name) >> 32) != s.key)
      return layout_error(MID_USERDB_E_LAYOUT);
    auto it = p.by_name.find(e.name);
    if (it == p.by_name.end() || it->second.offset != s.offset) {
      p.repair = true;  // stale: the id table has moved on
      continue;
    }
    if (it->second.slot != kNoSlot) return layout_error(MID_USERDB_E_LAYOUT);  // two slots, one name
    it->second.slot = i;
    ++matched;
  }
  if (matched != p.by_name.size()) {
    p.repair = true;  // names the name table lacks: not found by name until the rebuild
    std::erase_if(p.by_name, [](const auto& named) { return named.second.slot == kNoSlot; });
  }
  return {};
}

}  // namespace

Result<std::string> serialize_userdb(const UserDb& db) {
  for (const auto& u : db.users)
    if (!valid_host_login(u.login))
      return make_error(Errc::malformed, "not a valid host login: '" + u.login + "'");
  for (const auto& g : db.groups)
    if (!valid_host_login(g.name))
      return make_error(Errc::malformed, "not a valid group name: '" + g.name + "'");
  for (const auto& r : db.retired)
    if (!valid_host_login(r.login))
      return make_error(Errc::malformed, "not a valid retired login: '" + r.login + "'");

  std::unordered_map<std::uint32_t, const TakenId*> taken;
  for (const auto& t : db.taken) taken[t.id] = &t;
  auto since = [&](std::uint32_t id, std::int64_t otherwise) {
    auto it = taken.find(id);
    return it != taken.end() ? it->second->since : otherwise;
  };

  // Records, each with its id, its name (users and groups) and its bytes.
  struct Item {
    std::uint32_t id;
    std::string_view name;
    std::string bytes;
  };
  std::vector<Item> items;
  items.reserve(db.users.size() + db.groups.size() + db.retired.size() + db.taken.size());
  std::unordered_map<std::uint32_t, bool> ids;
  std::unordered_map<std::string_view, bool> names;
  auto add = [&](std::uint32_t id, std::string_view name, std::string bytes) -> Status {
    if (bytes.size() > MID_USERDB_MAX_RECORD)
      return make_error(Errc::limit, "a users.db record would take " + std::to_string(bytes.size()) +
                                         " bytes, over " + std::to_string(MID_USERDB_MAX_RECORD));
    if (!ids.emplace(id, true).second)
      return make_error(Errc::malformed, "id " + std::to_string(id) + " is given twice");
    if (!name.empty() && !names.emplace(name, true).second)
      return make_error(Errc::malformed, "name '" + std::string(name) + "' is given twice");
    items.push_back(Item{id, name, std::move(bytes)});
    return {};
  };
  for (const auto& u : db.users) MID_CHECK(add(u.uid, u.login, user_record(u, since(u.uid, u.first_login))));
  for (const auto& g : db.groups) MID_CHECK(add(g.gid, g.name, group_record(g, since(g.gid, 0))));
  for (const auto& r : db.retired) MID_CHECK(add(r.uid, {}, retired_record(r, since(r.uid, r.retired_at))));
  for (const auto& t : db.taken)
    if (!ids.count(t.id)) MID_CHECK(add(t.id, {}, taken_record(t)));

  std::size_t nnames = 0;
  for (const auto& it : items) nnames += !it.name.empty();
  std::uint32_t nslots = slots_for(std::max(items.size(), nnames));
  if (nslots > MID_USERDB_MAX_SLOTS) return make_error(Errc::limit, "users.db: too many entries");
  mid_userdb_header3 h{};
  std::memcpy(h.magic, MID_USERDB_MAGIC, sizeof h.magic);
  h.version = MID_USERDB_VERSION;
  h.byte_order = MID_USERDB_BYTE_ORDER;
  h.nslots = nslots;
  h.names = sizeof h;
  h.ids = h.names + std::uint64_t{nslots} * 16;
  h.heap = h.ids + std::uint64_t{nslots} * 16;
  mid_userdb_seal_header(&h);

  std::uint64_t size = h.heap;
  for (const auto& it : items) size += it.bytes.size();
  if (size > MID_USERDB_MAX_FILE_BYTES)
    return make_error(Errc::limit, "users.db would take " + std::to_string(size) + " bytes");
  std::string out;
  out.reserve(size);
  out.assign(reinterpret_cast<const char*>(&h), sizeof h);
  out.resize(h.heap, '\0');
  std::vector<std::uint8_t> name_state(nslots, 0), id_state(nslots, 0);
  std::uint64_t offset = h.heap;
  for (const auto& it : items) {
    std::uint64_t hash = mid_userdb_id_hash(it.id);
    std::uint32_t at = probe_empty(id_state, hash);
    id_state[at] = 1;
    mid_userdb_slot s = mid_userdb_make_slot(MID_USERDB_TABLE_IDS, at, offset, it.id);
    std::memcpy(out.data() + h.ids + 16 * std::uint64_t{at}, &s, sizeof s);
    if (!it.name.empty()) {
      std::uint64_t nh = mid_userdb_name_hash(std::string(it.name).c_str());
      at = probe_empty(name_state, nh);
      name_state[at] = 1;
      s = mid_userdb_make_slot(MID_USERDB_TABLE_NAMES, at, offset, static_cast<std::uint32_t>(nh >> 32));
      std::memcpy(out.data() + h.names + 16 * std::uint64_t{at}, &s, sizeof s);
    }
    out += it.bytes;
    offset += it.bytes.size();
  }
  return out;
}

namespace {
Result<UserDb> parse_snapshot(std::string_view bytes) {
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

}  // namespace

Result<UserDb> parse_userdb(std::string_view bytes) {
  std::uint32_t version = 0;
  if (bytes.size() >= 16 + sizeof version) std::memcpy(&version, bytes.data() + 16, sizeof version);
  if (bytes.size() >= sizeof(mid_userdb_header3) &&
      std::memcmp(bytes.data(), MID_USERDB_MAGIC, 8) == 0 && version == MID_USERDB_VERSION) {
    Parsed p;
    MID_CHECK(parse_v3(bytes, p, true));
    return std::move(p.db);
  }
  return parse_snapshot(bytes);
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

// ---- UserStore ------------------------------------------------------------

Result<std::unique_ptr<UserStore>> UserStore::open(const std::string& path) {
  std::unique_ptr<UserStore> store(new UserStore());
  store->path_ = path;
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 && errno == ENOENT) return store;  // made on the first change
  auto bytes = read_file(path, MID_USERDB_MAX_FILE_BYTES);
  if (!bytes.ok()) return bytes.error();
  std::uint32_t version = 0;
  if (bytes->size() >= 20) std::memcpy(&version, bytes->data() + 16, sizeof version);
  if (version != MID_USERDB_VERSION) {  // an older version: migrated now
    auto db = parse_userdb(*bytes);
    if (!db.ok()) return with_context(db.error(), path);
    MID_CHECK(store->rebuild(*db));
    return store;
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return make_error(Errc::io, path + ": cannot open: " + std::strerror(errno));
  store->fd_ = fd;
  bool repair = false;
  if (auto s = store->adopt(*bytes, &repair); !s.ok()) return with_context(s.error(), path);
  if (fstat(fd, &st) == 0) {
    store->dev_ = st.st_dev;
    store->ino_ = st.st_ino;
  }
  // Superseded records past what the live ones take: compacted now.
  bool bloated = store->end_ - store->ids_ - std::uint64_t{store->nslots_} * 16 >
                 2 * store->live_bytes_ + (1u << 20);
  if (repair || bloated || store->needs_room(0, 0)) {
    auto db = store->snapshot();
    if (!db.ok()) return with_context(db.error(), path);
    MID_CHECK(store->rebuild(*db));
  }
  return store;
}

UserStore::~UserStore() {
  if (fd_ >= 0) ::close(fd_);
}

Status UserStore::adopt(const std::string& bytes, bool* repair) {
  Parsed p;
  MID_CHECK(parse_v3(bytes, p, false));
  nslots_ = p.header.nslots;
  names_ = p.header.names;
  ids_ = p.header.ids;
  end_ = (bytes.size() + 7) / 8 * 8;
  live_bytes_ = p.live_bytes;
  by_name_ = std::move(p.by_name);
  by_id_ = std::move(p.by_id);
  name_state_ = std::move(p.name_state);
  id_state_ = std::move(p.id_state);
  names_used_ = p.names_used;
  ids_used_ = p.ids_used;
  users_ = groups_ = retired_ = foreign_ = 0;
  for (const auto& [id, e] : by_id_) {
    users_ += e.kind == MID_USERDB_REC_USER;
    groups_ += e.kind == MID_USERDB_REC_GROUP;
    retired_ += e.kind == MID_USERDB_REC_RETIRED;
    foreign_ += e.kind == MID_USERDB_REC_TAKEN && e.taken_kind == MID_USERDB_TAKEN_OTHER;
  }
  if (repair) *repair = p.repair;
  return {};
}

Status UserStore::rebuild(const UserDb& db) {
  auto bytes = serialize_userdb(db);
  if (!bytes.ok()) return with_context(bytes.error(), path_);
  std::string dir = path_.substr(0, path_.rfind('/'));
  if (!dir.empty() && path_.find('/') != std::string::npos && mkdir(dir.c_str(), 0755) != 0 &&
      errno != EEXIST)
    return make_error(Errc::io, dir + ": cannot create: " + std::strerror(errno));
  MID_CHECK(write_file_atomic(path_, *bytes, 0644));
  int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return make_error(Errc::io, path_ + ": cannot open: " + std::strerror(errno));
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  struct stat st {};
  if (fstat(fd, &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  return adopt(*bytes, nullptr);
}

bool UserStore::replaced() const {
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0) return fd_ >= 0 || errno != ENOENT;
  return fd_ < 0 || st.st_dev != dev_ || st.st_ino != ino_;
}

bool UserStore::needs_room(std::uint32_t more_names, std::uint32_t more_ids) const {
  std::uint64_t limit = std::uint64_t{nslots_} * 7 / 10;
  return names_used_ + more_names > limit || ids_used_ + more_ids > limit;
}

Status UserStore::append(const std::string& record, std::uint64_t* offset) {
  if (end_ + record.size() > MID_USERDB_MAX_FILE_BYTES)
    return make_error(Errc::limit, path_ + ": full");
  for (std::size_t done = 0; done < record.size();) {
    ssize_t n = pwrite(fd_, record.data() + done, record.size() - done, static_cast<off_t>(end_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(Errc::io, path_ + ": cannot write: " + std::strerror(n < 0 ? errno : EIO));
    done += static_cast<std::size_t>(n);
  }
  *offset = end_;
  end_ += record.size();
  return {};
}

Status UserStore::write_slot(std::uint32_t table, std::uint32_t index, std::uint64_t offset,
                             std::uint32_t key) {
  mid_userdb_slot s = offset == MID_USERDB_SLOT_DELETED || offset != 0
                          ? mid_userdb_make_slot(table, index, offset, key)
                          : mid_userdb_slot{};
  std::uint64_t at = (table == MID_USERDB_TABLE_NAMES ? names_ : ids_) + 16 * std::uint64_t{index};
  ssize_t n;
  do n = pwrite(fd_, &s, sizeof s, static_cast<off_t>(at));
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof s))
    return make_error(Errc::io, path_ + ": cannot write: " + std::strerror(n < 0 ? errno : EIO));
  return {};
}

Status UserStore::sync() {
  if (fdatasync(fd_) != 0) return make_error(Errc::io, path_ + ": cannot sync: " + std::strerror(errno));
  return {};
}

std::uint32_t UserStore::free_slot(std::uint32_t table, std::uint64_t hash) const {
  return probe_empty(table == MID_USERDB_TABLE_NAMES ? name_state_ : id_state_, hash);
}

Result<std::optional<HostUser>> UserStore::user(std::string_view login) const {
  auto it = by_name_.find(std::string(login));
  if (it == by_name_.end() || it->second.kind != MID_USERDB_REC_USER) return std::optional<HostUser>{};
  std::vector<std::uint64_t> buf(MID_USERDB_MAX_RECORD / 8);
  mid_userdb_entry e;
  if (int rc = mid_userdb_read_record(fd_, it->second.offset, buf.data(), &e); rc != MID_USERDB_OK)
    return make_error(Errc::io, path_ + ": the record of '" + std::string(login) +
                                    "' cannot be read: " + mid_userdb_strerror(rc));
  return std::optional<HostUser>(host_user(e));
}

bool UserStore::has_user(std::string_view login) const {
  auto it = by_name_.find(std::string(login));
  return it != by_name_.end() && it->second.kind == MID_USERDB_REC_USER;
}

std::optional<HostGroup> UserStore::group(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end() || it->second.kind != MID_USERDB_REC_GROUP) return std::nullopt;
  return HostGroup{std::string(name), it->second.id};
}

std::optional<TakenId> UserStore::taken(std::uint32_t id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return TakenId{id, static_cast<TakenId::Kind>(it->second.taken_kind), it->second.since};
}

Status UserStore::put_user(const HostUser& user, std::int64_t since) {
  if (!valid_host_login(user.login))
    return make_error(Errc::malformed, "not a valid host login: '" + user.login + "'");
  auto named = by_name_.find(user.login);
  bool fresh = named == by_name_.end();
  if (!fresh && (named->second.kind != MID_USERDB_REC_USER || named->second.id != user.uid))
    return make_error(Errc::malformed, "'" + user.login + "' is not the host user of uid " +
                                           std::to_string(user.uid));
  if (fresh && by_id_.count(user.uid))
    return make_error(Errc::malformed, "uid " + std::to_string(user.uid) + " is taken");
  std::string record = user_record(user, fresh ? since : named->second.since);
  if (record.size() > MID_USERDB_MAX_RECORD)
    return make_error(Errc::limit, "the record of '" + user.login + "' would be over " +
                                       std::to_string(MID_USERDB_MAX_RECORD) + " bytes");
  if (fresh && needs_room(1, 1)) {  // a larger file, made anew
    auto db = snapshot();
    if (!db.ok()) return db.error();
    db->users.push_back(user);
    db->taken.push_back(TakenId{user.uid, TakenId::Kind::user, since});
    return rebuild(*db);
  }
  std::uint64_t offset = 0;
  MID_CHECK(append(record, &offset));
  MID_CHECK(sync());  // the record is whole on disk before a slot points at it
  std::uint64_t nh = mid_userdb_name_hash(user.login.c_str());
  auto key = static_cast<std::uint32_t>(nh >> 32);
  Entry e{offset, static_cast<std::uint32_t>(record.size()), MID_USERDB_REC_USER, user.uid, 0,
          MID_USERDB_TAKEN_USER, fresh ? since : named->second.since};
  if (fresh) {
    std::uint32_t id_at = free_slot(MID_USERDB_TABLE_IDS, mid_userdb_id_hash(user.uid));
    std::uint32_t name_at = free_slot(MID_USERDB_TABLE_NAMES, nh);
    // The id table first: it is authoritative; a name slot a crash loses
    // is put back on load.
    MID_CHECK(write_slot(MID_USERDB_TABLE_IDS, id_at, offset, user.uid));
    MID_CHECK(write_slot(MID_USERDB_TABLE_NAMES, name_at, offset, key));
    MID_CHECK(sync());
    if (id_state_[id_at] == 0) ++ids_used_;
    if (name_state_[name_at] == 0) ++names_used_;
    id_state_[id_at] = name_state_[name_at] = 1;
    e.slot = id_at;
    by_id_[user.uid] = e;
    e.slot = name_at;
    by_name_[user.login] = e;
    ++users_;
  } else {
    Entry& id = by_id_.at(user.uid);
    MID_CHECK(write_slot(MID_USERDB_TABLE_IDS, id.slot, offset, user.uid));
    MID_CHECK(write_slot(MID_USERDB_TABLE_NAMES, named->second.slot, offset, key));
    MID_CHECK(sync());
    live_bytes_ -= id.length;
    e.slot = id.slot;
    id = e;
    e.slot = named->second.slot;
    named->second = e;
  }
  live_bytes_ += record.size();
  // Superseded records (last_login updates) are compacted away in one go
  // once they take more than the live ones.
  if (end_ > 2 * (ids_ + std::uint64_t{nslots_} * 16 + live_bytes_) + (4u << 20)) {
    auto db = snapshot();
    if (db.ok()) (void)rebuild(*db);  // the change is durable already
  }
  return {};
}

Status UserStore::put_group(const HostGroup& group, std::int64_t since) {
  if (!valid_host_login(group.name))
    return make_error(Errc::malformed, "not a valid group name: '" + group.name + "'");
  if (by_name_.count(group.name) || by_id_.count(group.gid))
    return make_error(Errc::malformed, "group '" + group.name + "' or gid " +
                                           std::to_string(group.gid) + " exists");
  if (needs_room(1, 1)) {
    auto db = snapshot();
    if (!db.ok()) return db.error();
    db->groups.push_back(group);
    db->taken.push_back(TakenId{group.gid, TakenId::Kind::group, since});
    return rebuild(*db);
  }
  std::string record = group_record(group, since);
  std::uint64_t offset = 0;
  MID_CHECK(append(record, &offset));
  MID_CHECK(sync());
  std::uint64_t nh = mid_userdb_name_hash(group.name.c_str());
  std::uint32_t id_at = free_slot(MID_USERDB_TABLE_IDS, mid_userdb_id_hash(group.gid));
  std::uint32_t name_at = free_slot(MID_USERDB_TABLE_NAMES, nh);
  MID_CHECK(write_slot(MID_USERDB_TABLE_IDS, id_at, offset, group.gid));
  MID_CHECK(write_slot(MID_USERDB_TABLE_NAMES, name_at, offset, static_cast<std::uint32_t>(nh >> 32)));
  MID_CHECK(sync());
  if (id_state_[id_at] == 0) ++ids_used_;
  if (name_state_[name_at] == 0) ++names_used_;
  id_state_[id_at] = name_state_[name_at] = 1;
  Entry e{offset, static_cast<std::uint32_t>(record.size()), MID_USERDB_REC_GROUP, group.gid, id_at,
          MID_USERDB_TAKEN_GROUP, since};
  by_id_[group.gid] = e;
  e.slot = name_at;
  by_name_[group.name] = e;
  live_bytes_ += record.size();
  ++groups_;
  return {};
}

Status UserStore::put_taken(const TakenId& taken) {
  if (by_id_.count(taken.id)) return {};  // taken already: ids never leave the table
  if (needs_room(0, 1)) {
    auto db = snapshot();
    if (!db.ok()) return db.error();
    db->taken.push_back(taken);
    return rebuild(*db);
  }
  std::string record = taken_record(taken);
  std::uint64_t offset = 0;
  MID_CHECK(append(record, &offset));
  MID_CHECK(sync());
  std::uint32_t id_at = free_slot(MID_USERDB_TABLE_IDS, mid_userdb_id_hash(taken.id));
  MID_CHECK(write_slot(MID_USERDB_TABLE_IDS, id_at, offset, taken.id));
  MID_CHECK(sync());
  if (id_state_[id_at] == 0) ++ids_used_;
  id_state_[id_at] = 1;
  by_id_[taken.id] = Entry{offset, static_cast<std::uint32_t>(record.size()), MID_USERDB_REC_TAKEN,
                           taken.id, id_at, static_cast<std::uint32_t>(taken.kind), taken.since};
  live_bytes_ += record.size();
  foreign_ += taken.kind == TakenId::Kind::other;
  return {};
}

Status UserStore::retire(std::string_view login, std::int64_t now) {
  auto named = by_name_.find(std::string(login));
  if (named == by_name_.end() || named->second.kind != MID_USERDB_REC_USER)
    return make_error(Errc::unsupported, "'" + std::string(login) + "' is not a host user");
  std::uint32_t uid = named->second.id;
  std::string record = retired_record(RetiredUser{std::string(login), uid, now}, now);
  std::uint64_t offset = 0;
  MID_CHECK(append(record, &offset));
  MID_CHECK(sync());
  Entry& id = by_id_.at(uid);
  // The id first: once it says retired, the user is gone (a name slot left
  // behind by a crash is dropped on load).
  MID_CHECK(write_slot(MID_USERDB_TABLE_IDS, id.slot, offset, uid));
  MID_CHECK(write_slot(MID_USERDB_TABLE_NAMES, named->second.slot, MID_USERDB_SLOT_DELETED, 0));
  MID_CHECK(sync());
  name_state_[named->second.slot] = 2;
  live_bytes_ = live_bytes_ - id.length + record.size();
  id = Entry{offset, static_cast<std::uint32_t>(record.size()), MID_USERDB_REC_RETIRED, uid, id.slot,
             MID_USERDB_TAKEN_USER, now};
  by_name_.erase(named);
  --users_;
  ++retired_;
  return {};
}

Result<UserDb> UserStore::snapshot() const {
  UserDb db;
  std::vector<std::uint64_t> buf(MID_USERDB_MAX_RECORD / 8);
  for (const auto& [id, entry] : by_id_) {
    mid_userdb_entry e;
    if (int rc = mid_userdb_read_record(fd_, entry.offset, buf.data(), &e); rc != MID_USERDB_OK)
      return make_error(Errc::io, path_ + ": a record cannot be read: " + mid_userdb_strerror(rc));
    add_record(db, e);
    db.taken.push_back(TakenId{id, static_cast<TakenId::Kind>(entry.taken_kind), entry.since});
  }
  return db;
}

}  // namespace machineid
