#include "machineid/client.h"

#include <cstring>

#include "machineid/mid_client.h"

namespace machineid {

Result<ByteVector> call_daemon(const std::string& socket_path, const ByteVector& request, int deadline_ms) {
  if (request.empty() || request.size() > kMaxFrameBytes)
    return make_error(Errc::io, socket_path + ": no request to send");
  // The C client sends whole frames: the payload after a 4-byte length.
  ByteVector framed = frame(request);
  mid_writer w;
  mid_writer_fixed(&w, framed.data(), framed.size());
  w.size = framed.size();
  ByteVector reply(kMaxFrameBytes);
  std::size_t size = 0;
  char err[512];
  if (mid_call(socket_path.c_str(), &w, mid_now_ms() + deadline_ms, 0, reply.data(), reply.size(), &size, err,
               sizeof err) != 0)
    return make_error(Errc::io, err);
  reply.resize(size);
  return reply;
}

}  // namespace machineid
