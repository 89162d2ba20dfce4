// Uncached decisions through machineid-verifierd's socket from N clients at
// once, each a new connection as sshd's helper makes them: the rate, and the
// latency each request saw. Prints one JSON object.
// usage: socket_load SOCKET KEY-CERT.pub CLIENTS SECONDS
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "machineid/client.h"
#include "machineid/io.h"
#include "machineid/protocol.h"

namespace {

using namespace machineid;
using Clock = std::chrono::steady_clock;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: socket_load SOCKET KEY-CERT.pub CLIENTS SECONDS\n");
    return 2;
  }
  const std::string socket = argv[1];
  auto text = read_file(argv[2], 1 << 20);
  const int clients = std::atoi(argv[3]);
  const double seconds = std::atof(argv[4]);
  if (!text.ok() || clients < 1 || seconds <= 0) return 2;
  std::string line = text->substr(0, text->find('\n'));
  DecideRequest base;
  base.asker = Asker::cli;  // never answered from the cache
  base.login = "root";
  base.key_type = line.substr(0, line.find(' '));
  base.certificate = line.substr(line.find(' ') + 1);
  base.certificate = base.certificate.substr(0, base.certificate.find(' '));

  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::vector<double> latencies_us;
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  auto client = [&](int index) {
    std::vector<double> mine;
    DecideRequest r = base;
    for (std::uint32_t n = 0; Clock::now() < until && !failed; ++n) {
      r.source = "10." + std::to_string(index) + "." + std::to_string(n >> 8 & 255) + "." + std::to_string(n & 255);
      auto start = Clock::now();
      auto reply = call_daemon(socket, encode(r), 5000);
      auto decision = reply.ok() ? decode_decide_reply(*reply) : Result<DecideReply>(reply.error());
      if (!decision.ok() || !decision->allowed) {
        std::fprintf(stderr, "socket_load: %s\n",
                     decision.ok() ? decision->detail.c_str() : decision.error().message.c_str());
        failed = true;
        return;
      }
      mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    std::lock_guard lock(mutex);
    latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
  };
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) threads.emplace_back(client, i);
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (failed || latencies_us.empty()) return 1;
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) {
    return latencies_us[std::min(latencies_us.size() - 1, static_cast<std::size_t>(p * latencies_us.size()))];
  };
  std::printf("{\"clients\": %d, \"requests\": %zu, \"seconds\": %.3f, \"per_second\": %.1f, "
              "\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n",
              clients, latencies_us.size(), elapsed, static_cast<double>(latencies_us.size()) / elapsed, pct(0.50),
              pct(0.99), latencies_us.back());
  return 0;
}
