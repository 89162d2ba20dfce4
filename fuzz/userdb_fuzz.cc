// users.db as the NSS module maps it: the reader must accept or refuse any
// bytes without reading outside them, and every lookup into a file it
// accepted stays inside it too.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "machineid/userdb.h"
#include "machineid/userdb_format.h"

namespace {

void look_up_everything(const mid_userdb& db) {
  std::size_t sink = 0;
  for (std::uint32_t i = 0; i < db.nusers; ++i) {
    const mid_userdb_user& u = db.users[i];
    const char* name = mid_userdb_string(&db, u.name);
    sink += mid_userdb_user_by_name(&db, name) != nullptr;
    sink += mid_userdb_user_by_uid(&db, u.uid) != nullptr;
    sink +=
        std::strlen(mid_userdb_string(&db, u.home)) + std::strlen(mid_userdb_string(&db, u.shell));
    for (std::uint32_t g = 0; g < u.ngids; ++g) sink += db.ids[u.gids + g];
  }
  for (std::uint32_t i = 0; i < db.ngroups; ++i) {
    const mid_userdb_group& g = db.groups[i];
    sink += mid_userdb_group_by_name(&db, mid_userdb_string(&db, g.name)) != nullptr;
    sink += mid_userdb_group_by_gid(&db, g.gid) != nullptr;
    for (std::uint32_t m = 0; m < g.nmembers; ++m)
      sink += std::strlen(mid_userdb_string(&db, db.users[db.ids[g.members + m]].name));
  }
  for (std::uint32_t i = 0; i < db.nretired; ++i)
    sink += std::strlen(mid_userdb_string(&db, db.retired[i].name));
  volatile std::size_t keep = sink;
  (void)keep;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // As mmap would hand it over: 8-byte aligned.
  std::vector<std::uint64_t> aligned((size + 7) / 8);
  if (size > 0) std::memcpy(aligned.data(), data, size);
  mid_userdb db;
  if (mid_userdb_open(&db, aligned.data(), size) == MID_USERDB_OK) look_up_everything(db);
  (void)machineid::parse_userdb(std::string_view(reinterpret_cast<const char*>(data), size));

  // Random bytes almost never carry the right checksum: fix it up, so the
  // fuzzer also reaches the layout checks behind it.
  if (size >= sizeof(mid_userdb_header)) {
    std::uint64_t sum =
        mid_userdb_checksum(reinterpret_cast<const unsigned char*>(aligned.data()) + 16, size - 16);
    std::memcpy(reinterpret_cast<unsigned char*>(aligned.data()) + 8, &sum, sizeof sum);
    if (mid_userdb_open(&db, aligned.data(), size) == MID_USERDB_OK) look_up_everything(db);
  }
  return 0;
}
