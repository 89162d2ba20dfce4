// Decisions through machineid-verifierd's socket, one connection each, as
// sshd's helper makes them. scripts/bench starts the daemon and sets
// MID_BENCH_SOCKET and MID_BENCH_CERT (a key-cert.pub the daemon allows).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "machineid/client.h"
#include "machineid/io.h"
#include "machineid/protocol.h"

namespace {

using namespace machineid;

DecideRequest request() {
  const char* socket = std::getenv("MID_BENCH_SOCKET");
  const char* cert = std::getenv("MID_BENCH_CERT");
  if (socket == nullptr || cert == nullptr) {
    std::fprintf(stderr, "socket_bench: run it through make bench\n");
    std::exit(2);
  }
  auto text = read_file(cert, 1 << 20);
  if (!text.ok()) std::exit(2);
  std::string line = text->substr(0, text->find('\n'));
  DecideRequest r;
  r.asker = Asker::cli;
  r.login = "root";
  r.key_type = line.substr(0, line.find(' '));
  r.certificate = line.substr(line.find(' ') + 1);
  r.certificate = r.certificate.substr(0, r.certificate.find(' '));
  return r;
}

void ask(benchmark::State& state, const DecideRequest& r) {
  auto reply = call_daemon(std::getenv("MID_BENCH_SOCKET"), encode(r), 2000);
  auto decision = reply.ok() ? decode_decide_reply(*reply) : Result<DecideReply>(reply.error());
  if (!decision.ok() || !decision->allowed) state.SkipWithError("daemon did not allow the benchmark certificate");
}

// The same request again: answered from the decision cache.
void BM_SocketCached(benchmark::State& state) {
  DecideRequest r = request();
  for (auto _ : state) ask(state, r);
  state.SetItemsProcessed(state.iterations());
}

// A new source address each time: a full decision every time.
void BM_SocketUncached(benchmark::State& state) {
  DecideRequest r = request();
  std::uint32_t n = 0;
  for (auto _ : state) {
    ++n;
    r.source = "10." + std::to_string(n >> 16 & 255) + "." + std::to_string(n >> 8 & 255) + "." +
               std::to_string(n & 255);
    ask(state, r);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_SocketCached)->Name("socket/cached")->UseRealTime();
BENCHMARK(BM_SocketUncached)->Name("socket/uncached")->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
