#pragma once

// Who is waiting for which results on this gateway, and the hand-over of
// each result to them. It has a lock of its own: handing results over never
// holds up an IssueCoupon pre-check (gateway/results/result_cache.h). Plain C++.

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/domain/domain.h"

namespace coupon::gateway {

/// Receives results. OnResult and OnShutdown are called with the registry's
/// lock held, from whichever thread delivers: they must not block and must
/// not call the registry.
class ResultWatcher {
 public:
  virtual ~ResultWatcher() = default;
  virtual void OnResult(const IssueResult& result) = 0;
  // The gateway is shutting down: no more results will come.
  virtual void OnShutdown() = 0;
};

/// Thread-safe. A watcher Opens once, registers what it waits for, and
/// Closes before it is destroyed; after Close no call reaches it.
class WatchRegistry {
 public:
  // At most `max_watches` watchers open at once, holding at most
  // `max_queued_bytes` of unsent results between them.
  explicit WatchRegistry(size_t max_watches,
                         size_t max_queued_bytes = size_t{128} << 20)
      : max_watches_(max_watches), max_queued_bytes_(max_queued_bytes) {}

  // RESOURCE_EXHAUSTED when `max_watches` are open already. A watcher opened
  // during shutdown is told OnShutdown at once.
  absl::Status Open(ResultWatcher* watcher);
  // Registrations; each needs an open watcher.
  void WatchRequests(const std::vector<std::string>& ids, ResultWatcher* watcher);
  void WatchUser(const std::string& user_id, ResultWatcher* watcher);
  void WatchCoupon(int64_t coupon_id, ResultWatcher* watcher);
  // Removes every registration of `watcher` and frees its slot.
  void Close(ResultWatcher* watcher);

  // Hands `result` to the watchers of its request id and, when `live`, to
  // those of its user and its coupon.
  void Deliver(const IssueResult& result, bool live);

  // Up to `max` request ids that watchers still wait for and that were last
  // handed out here before `since` (or registered then), oldest first: to
  // look up in the store, for the answers other gateways stored. Each id
  // handed out goes to the back of the line.
  std::vector<std::string> TakeWaiting(absl::Time since, size_t max);

  // Tells every open watcher the gateway is shutting down, and from then on
  // every watcher that opens, at once.
  void ShutdownWatchers();

  size_t open_watches() const;

  // A watcher's queue of unsent results takes `bytes` more, or may not:
  // false when every watch's queues together would pass the budget.
  // Lock-free: watchers call these from OnResult.
  bool ReserveQueued(size_t bytes) {
    size_t now = queued_bytes_.load(std::memory_order_relaxed);
    do {
      if (now + bytes > max_queued_bytes_) return false;
    } while (!queued_bytes_.compare_exchange_weak(now, now + bytes,
                                                  std::memory_order_relaxed));
    return true;
  }
  void ReleaseQueued(size_t bytes) {
    queued_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  }
  size_t queued_bytes() const { return queued_bytes_.load(); }

 private:
  struct Registrations {
    std::vector<std::string> request_ids;
    std::vector<std::string> user_ids;
    std::vector<int64_t> coupon_ids;
  };

  const size_t max_watches_;
  const size_t max_queued_bytes_;
  std::atomic<size_t> queued_bytes_{0};
  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, std::vector<ResultWatcher*>> by_request_
      ABSL_GUARDED_BY(mu_);
  // Request ids in the order TakeWaiting hands them out; an id nobody waits
  // for any more is dropped when it comes up.
  std::deque<std::pair<absl::Time, std::string>> waiting_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<ResultWatcher*>> by_user_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, std::vector<ResultWatcher*>> by_coupon_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<ResultWatcher*, Registrations> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coupon::gateway
