#pragma once

// Where results enter a gateway: what it learns goes to its cache
// (gateway/results/result_cache.h) and then to the watchers waiting for it
// (gateway/results/watch_registry.h), each under its own lock.

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

  // A result from the issuer (the result topic, or the Redis mode's
  // channel): cached, and handed to the watchers of its request id and, the
  // first time the issuer sends it, of its user and coupon. The issuer sends
  // every queued request's result, also one a gateway stored first, so a
  // caller told ACCEPTED finds it on those streams on every gateway.
  // Replayed results reach request-id watchers only, who take one result
  // per id.
  void Publish(const IssueResult& result) {
    const bool news = cache_.Learn(result, ResultCache::Source::kIssuer);
    watches_.Deliver(result, /*live=*/news || !IsStoredOutcome(result.outcome));
  }

  // A request id's stored result read from the store: an answer a gateway
  // stored itself (SOLD_OUT, NOT_STARTED, ...). Live watches by user or
  // coupon follow the issuer only.
  void Remember(const IssueResult& result) {
    cache_.Learn(result, ResultCache::Source::kStore);
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
