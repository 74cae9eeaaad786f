#include "common/service/timer_thread.h"

namespace coupon::service {

TimerThread::TimerThread() : thread_([this] { Run(); }) {}

TimerThread::~TimerThread() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

TimerThread::Id TimerThread::Schedule(absl::Time at, std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  const Id id = next_id_++;
  by_id_.emplace(id, due_.emplace(at, std::make_pair(id, std::move(fn))));
  return id;
}

void TimerThread::Cancel(Id id) {
  absl::MutexLock lock(&mu_);
  if (auto it = by_id_.find(id); it != by_id_.end()) {
    due_.erase(it->second);
    by_id_.erase(it);
    return;
  }
  if (std::this_thread::get_id() == thread_.get_id()) return;
  auto not_running = [this, id]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return running_ != id;
  };
  mu_.Await(absl::Condition(&not_running));
}

void TimerThread::Run() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    // Wakes for a new earliest entry too: Schedule changes due_, and the
    // condition is evaluated again whenever the mutex is released.
    const absl::Time next = due_.empty() ? absl::InfiniteFuture() : due_.begin()->first;
    auto wake = [this, next]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return stop_ || (!due_.empty() && due_.begin()->first < next);
    };
    if (next > absl::Now()) {
      mu_.AwaitWithDeadline(absl::Condition(&wake), next);
      continue;
    }
    auto first = due_.begin();
    const Id id = first->second.first;
    std::function<void()> fn = std::move(first->second.second);
    by_id_.erase(id);
    due_.erase(first);
    running_ = id;
    mu_.Unlock();
    fn();
    mu_.Lock();
    running_ = 0;
  }
}

}  // namespace coupon::service
