// Uncached decisions off the event loop: the signature check is most of a
// decision's cost, and on one thread the daemon would use one core however
// many sshd processes ask at once. The pool's threads run only
// machineid::decide(), which reads the policy snapshot it is given and
// writes nothing shared; everything with state (the cache, host users, the
// audit trail, the session table) stays on the loop.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "machineid/decision.h"
#include "machineid/node_policy.h"

namespace verifierd {

// A few threads: the daemon answers sshd, not a fleet, and each thread
// holds a prepared verify context per CA key.
inline constexpr unsigned kMaxDecisionThreads = 4;
// Jobs waiting beyond this many are decided on the loop instead: a flood of
// requests then slows the flood, not the memory.
inline constexpr std::size_t kMaxQueuedDecisions = 1024;

class DecisionPool {
 public:
  struct Job {
    std::uint64_t ticket = 0;
    std::shared_ptr<const machineid::NodePolicy> policy;
    machineid::ByteVector certificate;
    std::string login;
    std::optional<std::string> source;
    std::int64_t now = 0;
    std::optional<std::string> stale_locks;
  };
  struct Done {
    std::uint64_t ticket = 0;
    std::shared_ptr<const machineid::NodePolicy> policy;  // the snapshot it was decided on
    machineid::Decision decision;
  };

  // Starts min(hardware threads, kMaxDecisionThreads) threads; with none
  // (a thread could not be made) every submit() is refused.
  DecisionPool();
  ~DecisionPool();  // finishes the jobs taken, drops the rest, joins
  DecisionPool(const DecisionPool&) = delete;
  DecisionPool& operator=(const DecisionPool&) = delete;

  // False when the job is not taken (no threads, or the queue is full): the
  // caller decides it itself.
  bool submit(Job&& job);
  // Readable (an eventfd) when finished jobs wait in take().
  int ready_fd() const { return ready_fd_; }
  std::vector<Done> take();
  unsigned threads() const { return static_cast<unsigned>(threads_.size()); }

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::vector<Done> done_;
  bool stopping_ = false;
  int ready_fd_ = -1;
  std::vector<std::thread> threads_;
};

}  // namespace verifierd
