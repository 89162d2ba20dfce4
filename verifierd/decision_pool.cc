#include "decision_pool.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "log.h"

namespace verifierd {

DecisionPool::DecisionPool() {
  ready_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (ready_fd_ < 0) {
    log(Priority::warning, std::string("eventfd: ") + std::strerror(errno) + ": deciding on the event loop only");
    return;
  }
  unsigned wanted = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxDecisionThreads);
  for (unsigned i = 0; i < wanted; ++i) {
    try {
      threads_.emplace_back([this] { run(); });
    } catch (const std::system_error& e) {
      log(Priority::warning, std::string("cannot start a decision thread (") + e.what() + ")");
      break;
    }
  }
}

DecisionPool::~DecisionPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  if (ready_fd_ >= 0) close(ready_fd_);
}

bool DecisionPool::submit(Job&& job) {
  {
    std::lock_guard lock(mutex_);
    if (threads_.empty() || queue_.size() >= kMaxQueuedDecisions) return false;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

std::vector<DecisionPool::Done> DecisionPool::take() {
  std::uint64_t count = 0;
  (void)!read(ready_fd_, &count, sizeof count);
  std::lock_guard lock(mutex_);
  return std::exchange(done_, {});
}

void DecisionPool::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Done done{job.ticket, job.policy,
              machineid::decide(machineid::Request{job.certificate, job.login, job.source, job.now, job.stale_locks}, *job.policy)};
    {
      std::lock_guard lock(mutex_);
      done_.push_back(std::move(done));
    }
    std::uint64_t one = 1;
    // An eventfd write only fails when the counter would overflow.
    (void)!write(ready_fd_, &one, sizeof one);
  }
}

}  // namespace verifierd
