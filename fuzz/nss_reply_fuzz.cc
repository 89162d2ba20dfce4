// The daemon's provisional_user reply as libnss_machineid reads it off the
// socket: accepted or refused, never read past. The C reader is compiled in.
#include <cstddef>
#include <cstdint>

#include "../nss_machineid/reply.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mid_reply r;
  if (mid_reply_parse(data, size, &r) == 0) (void)mid_reply_usable(&r, "bot-ci");
  return 0;
}
