// users.db as the daemon sees it: the host users, the groups made for them,
// the uids never to be given again and every id of the range that is not
// free, read from and written to the file format of userdb_format.h (which
// the NSS module reads).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "machineid/result.h"

namespace machineid {

inline constexpr std::string_view kUserDbFileName = "users.db";

struct HostUser {
  std::string login;
  std::uint32_t uid = 0;            // and the gid of its primary group
  std::vector<std::uint32_t> gids;  // supplementary groups
  std::string gecos, home, shell;
  std::string bot;               // the bot it was last granted to, if any
  std::int64_t first_login = 0;  // unix seconds: when it was made
  std::int64_t last_login = 0;
};

// A group made for a role's host_groups that /etc/group does not have.
// Its members are the active host users whose gids hold it.
struct HostGroup {
  std::string name;
  std::uint32_t gid = 0;
};

// A uid given once and retired (machineidctl users --forget): never again.
struct RetiredUser {
  std::string login;
  std::uint32_t uid = 0;
  std::int64_t retired_at = 0;
};

// An id that is not free: given to a host user or a made group, or found
// known to another NSS source. Ids never leave this list.
struct TakenId {
  enum class Kind : std::uint32_t { user = 1, group = 2, other = 3 };
  std::uint32_t id = 0;
  Kind kind = Kind::user;
  std::int64_t since = 0;  // unix seconds; 0 when not known (read from a version 1 file)
};

struct UserDb {
  std::vector<HostUser> users;
  std::vector<HostGroup> groups;
  std::vector<RetiredUser> retired;
  std::vector<TakenId> taken;  // every id of users, groups and retired too
};

// Whether `login` may name a host user (mid_userdb_valid_login).
bool valid_host_login(std::string_view login);

// A whole version 3 file's bytes (freshly laid out: no deleted slot, no
// superseded record). An error (Errc::limit or Errc::malformed) when the
// result would not pass the reader's checks: duplicate names or ids, a
// login that is not valid_host_login, or more than MID_USERDB_MAX_BYTES.
Result<std::string> serialize_userdb(const UserDb& db);
// Parses and checks a whole file of any version read; Errc::malformed says
// which check failed. A version 1 file reads without its pending users, and
// its ids are taken since 0.
Result<UserDb> parse_userdb(std::string_view bytes);

// Reads `path`: a missing file is an empty database, anything unreadable or
// invalid an error naming the path.
Result<UserDb> read_userdb(const std::string& path);
// Replaces `path` atomically and durably (write, fsync, rename, fsync dir).
Status write_userdb(const std::string& path, const UserDb& db);

// users.db as the daemon keeps it open: a change appends one record, syncs
// it, then points its slots at it and syncs them; nothing else of the file
// is read or written, whatever the number of host users. Only when a table
// would be more than 70 % used, or superseded records outweigh live ones,
// is the file made anew (serialize_userdb, write_file_atomic): amortised
// O(1) per change. Nothing acknowledged is lost to a kill -9 at any point,
// and no reader ever sees a torn record (userdb_format.h).
class UserStore {
 public:
  // Opens `path`: a missing file is an empty database, made on the first
  // change. A version 1 or 2 file, one whose name table a crash left behind
  // its id table, or one mostly superseded records is rewritten at once as a
  // fresh version 3 file.
  static Result<std::unique_ptr<UserStore>> open(const std::string& path);
  ~UserStore();
  UserStore(const UserStore&) = delete;
  UserStore& operator=(const UserStore&) = delete;

  // The host user `login` (one pread of its record), or nothing.
  Result<std::optional<HostUser>> user(std::string_view login) const;
  bool has_user(std::string_view login) const;
  std::optional<HostGroup> group(std::string_view name) const;
  std::optional<TakenId> taken(std::uint32_t id) const;

  // Adds or replaces a host user (a new one's uid must be free); `since`:
  // when a new user's uid was taken.
  Status put_user(const HostUser& user, std::int64_t since);
  // Adds a made group (its gid must be free).
  Status put_group(const HostGroup& group, std::int64_t since);
  // Marks a free id taken (by another NSS source).
  Status put_taken(const TakenId& taken);
  // Forgets a host user: its uid is retired, taken since `now`.
  Status retire(std::string_view login, std::int64_t now);

  std::size_t users() const { return users_; }
  std::size_t groups() const { return groups_; }
  std::size_t retired() const { return retired_; }
  std::size_t foreign() const { return foreign_; }
  std::uint64_t file_bytes() const { return end_; }
  std::uint32_t slots() const { return nslots_; }
  // Whether the file at the path is no longer the one open (replaced).
  bool replaced() const;
  // Every record: O(n), for listings.
  Result<UserDb> snapshot() const;

  struct Entry {
    std::uint64_t offset = 0;
    std::uint32_t length = 0;
    std::uint32_t kind = 0;       // MID_USERDB_REC_*
    std::uint32_t id = 0;
    std::uint32_t slot = 0;       // in its table
    std::uint32_t taken_kind = 0; // MID_USERDB_TAKEN_*
    std::int64_t since = 0;
  };

 private:
  UserStore() = default;
  Status adopt(const std::string& bytes, bool* repair);
  Status rebuild(const UserDb& db);
  Status append(const std::string& record, std::uint64_t* offset);
  Status write_slot(std::uint32_t table, std::uint32_t index, std::uint64_t offset, std::uint32_t key);
  Status sync();
  std::uint32_t free_slot(std::uint32_t table, std::uint64_t hash) const;
  bool needs_room(std::uint32_t more_names, std::uint32_t more_ids) const;

  std::string path_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::uint32_t nslots_ = 0;
  std::uint64_t names_ = 0, ids_ = 0, end_ = 0, live_bytes_ = 0;
  std::unordered_map<std::string, Entry> by_name_;  // users and made groups
  std::unordered_map<std::uint32_t, Entry> by_id_;  // every id taken
  std::vector<std::uint8_t> name_state_, id_state_;  // 0 empty, 1 live, 2 deleted
  std::uint32_t names_used_ = 0, ids_used_ = 0;
  std::size_t users_ = 0, groups_ = 0, retired_ = 0, foreign_ = 0;
};

}  // namespace machineid
