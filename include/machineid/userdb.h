// users.db as the daemon sees it: the host users, the groups made for them,
// the uids never to be given again and every id of the range that is not
// free, read from and written to the file format of userdb_format.h (which
// the NSS module reads).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
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

// The file's bytes. An error (Errc::limit or Errc::malformed) when the
// result would not pass the reader's checks: duplicate names or ids, a
// login that is not valid_host_login, or more than MID_USERDB_MAX_BYTES.
Result<std::string> serialize_userdb(const UserDb& db);
// Parses and checks a whole file; Errc::malformed says which check failed.
// A version 1 file reads without its pending users, and its ids are taken
// since 0.
Result<UserDb> parse_userdb(std::string_view bytes);

// Reads `path`: a missing file is an empty database, anything unreadable or
// invalid an error naming the path.
Result<UserDb> read_userdb(const std::string& path);
// Replaces `path` atomically and durably (write, fsync, rename, fsync dir).
Status write_userdb(const std::string& path, const UserDb& db);

}  // namespace machineid
