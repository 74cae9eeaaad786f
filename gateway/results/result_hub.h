#pragma once

// Where results enter a gateway: what it learns goes to its cache
// (gateway/result_cache.h) and then to the watchers waiting for it
// (gateway/watch_registry.h), each under its own lock.

#include "gateway/results/result_cache.h"
#include "gateway/results/watch_registry.h"

namespace coupon::gateway {

struct HubLimits {
  CacheLimits cache;
  // WatchIssueResults streams open at once on this gateway, and the unsent
  // results they may hold between them.
  size_t max_watches = 4096;
  size_t watch_queue_bytes = size_t{128} << 20;
};

/// Thread-safe. Outlives every watcher registered with it.
class ResultHub {
 public:
  explicit ResultHub(HubLimits limits = {})
      : cache_(limits.cache),
        watches_(limits.max_watches, limits.watch_queue_bytes) {}

  // A result the issuer decided (from the result topic, or the Redis mode's
  // channel): cached, and handed to the watchers of its request id and, if it
  // is news, of its user and coupon. Replayed results reach request-id
  // watchers only, who take one result per id.
  void Publish(const IssueResult& result) {
    const bool news = cache_.Learn(result);
    watches_.Deliver(result, /*live=*/news || !IsStoredOutcome(result.outcome));
  }

  // A request id's stored result that was not decided by the issuer: an
  // answer a gateway stored itself (SOLD_OUT, NOT_STARTED, ...), read back.
  // Live watches by user or coupon follow the issuer's decisions only.
  void Remember(const IssueResult& result) {
    cache_.Learn(result);
    watches_.Deliver(result, /*live=*/false);
  }

  ResultCache& cache() { return cache_; }
  const ResultCache& cache() const { return cache_; }
  WatchRegistry& watches() { return watches_; }

 private:
  ResultCache cache_;
  WatchRegistry watches_;
};

}  // namespace coupon::gateway
