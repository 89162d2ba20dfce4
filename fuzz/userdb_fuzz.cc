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

  // Version 3: the input as one record (its checksum fixed up), and as a
  // whole file with a sealed header, so the record and slot checks behind
  // the checksums are reached too.
  if (size >= sizeof(mid_userdb_record)) {
    auto* bytes = reinterpret_cast<unsigned char*>(aligned.data());
    std::uint32_t length;
    std::memcpy(&length, bytes + 8, sizeof length);
    if (length >= 8 && length <= size) {
      std::uint64_t sum = mid_userdb_checksum(bytes + 8, length - 8);
      std::memcpy(bytes, &sum, sizeof sum);
    }
    mid_userdb_entry e;
    if (mid_userdb_record_check(bytes, size, &e) == MID_USERDB_OK)
      for (std::uint32_t i = 0; e.kind == MID_USERDB_REC_USER && i < e.count; ++i)
        (void)mid_userdb_gid(&e, i);
  }
  if (size >= sizeof(mid_userdb_header3)) {
    std::string file(reinterpret_cast<const char*>(data), size);
    mid_userdb_header3 h;
    std::memcpy(&h, file.data(), sizeof h);
    std::memcpy(h.magic, MID_USERDB_MAGIC, sizeof h.magic);
    h.version = MID_USERDB_VERSION;
    h.byte_order = MID_USERDB_BYTE_ORDER;
    mid_userdb_seal_header(&h);
    std::memcpy(file.data(), &h, sizeof h);
    (void)machineid::parse_userdb(file);
  }
  return 0;
}
