#pragma once

// Runs callbacks at given times on one thread of its own: for work that
// must happen later without holding a caller's thread (an IssueCoupon that
// waits for its result answers at its deadline; watches get their position
// updates every interval).

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace coupon::service {

/// Thread-safe. Owns one thread, from construction until the destructor,
/// which runs no more callbacks (those not due yet are dropped) and joins
/// it. Callbacks run on that thread one at a time, must not block for long,
/// and may call Schedule and Cancel.
class TimerThread {
 public:
  using Id = uint64_t;

  TimerThread();
  ~TimerThread();
  TimerThread(const TimerThread&) = delete;
  TimerThread& operator=(const TimerThread&) = delete;

  // Runs `fn` at `at` (at once when `at` is past). Never returns 0.
  Id Schedule(absl::Time at, std::function<void()> fn);

  // After Cancel returns, `id`'s callback is not running and never will,
  // unless Cancel is called from that very callback (then it has begun and
  // finishes). Unknown or finished ids are fine.
  void Cancel(Id id);

 private:
  void Run();

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  Id next_id_ ABSL_GUARDED_BY(mu_) = 1;
  Id running_ ABSL_GUARDED_BY(mu_) = 0;  // the callback on the thread now
  std::multimap<absl::Time, std::pair<Id, std::function<void()>>> due_
      ABSL_GUARDED_BY(mu_);
  std::map<Id, decltype(due_)::iterator> by_id_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace coupon::service
