// Daemon frames: every decoder must refuse or accept, never misbehave.
#include <cstddef>
#include <cstdint>

#include "machineid/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  machineid::Bytes payload(data, size);
  if (size >= 4) (void)machineid::frame_length(payload.first(4));
  if (!machineid::peek_kind(payload).ok()) return 0;
  (void)machineid::decode_decide_request(payload);
  (void)machineid::decode_decide_reply(payload);
  (void)machineid::decode_status_reply(payload);
  (void)machineid::decode_error(payload);
  return 0;
}
