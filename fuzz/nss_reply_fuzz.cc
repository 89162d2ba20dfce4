// The daemon's replies as the C client library reads them off the socket
// (libnss_machineid, pam_machineid.so, machineid-principals): every decoder
// accepts or refuses, never reads past, and an accepted reply's strings lie
// inside the payload. The corpus holds provisional_user replies; the same
// bytes go to the decide, status and error decoders.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>

#include "machineid/mid_client.h"

namespace {

void check_inside(const mid_string& s, const std::uint8_t* data, std::size_t size) {
  const char* begin = reinterpret_cast<const char*>(data);
  if (s.size > 0 && (s.data < begin || s.data + s.size > begin + size)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mid_host_user_reply user;
  if (mid_decode_host_user_reply(data, size, &user) == 0) {
    for (const mid_string* s : {&user.message, &user.name, &user.gecos, &user.home, &user.shell})
      check_inside(*s, data, size);
    (void)mid_host_user_usable(&user, "bot-ci");
  }
  mid_decide_reply decide;
  if (mid_decode_decide_reply(data, size, &decide) == 0) {
    for (const mid_string* s : {&decide.reason, &decide.detail, &decide.key_options, &decide.sudoers_file,
                                &decide.sudoers})
      check_inside(*s, data, size);
    for (const mid_string& s : decide.who.field) check_inside(s, data, size);
  }
  mid_status_reply status;
  if (mid_decode_status_reply(data, size, &status) == 0) check_inside(status.json, data, size);
  mid_string message;
  if (mid_decode_error(data, size, &message) == 0) check_inside(message, data, size);
  return 0;
}
