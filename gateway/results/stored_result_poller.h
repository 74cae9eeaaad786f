#pragma once

// Request-id watches learn the worker's decisions from the result topic, but
// an answer another gateway stored itself (a SOLD_OUT from its pre-check, say)
// is not broadcast: it is in the store only. This looks the ids that watches
// wait for up in the store, a bounded number each round, so such an answer
// reaches every gateway's watches too, within about a round.

#include <atomic>
#include <thread>

#include "absl/time/time.h"
#include "gateway/store/gateway_store.h"
#include "gateway/results/result_hub.h"

namespace coupon::gateway {

/// Owns one thread, from the constructor until the destructor joins it. The
/// hub and store must outlive it.
class StoredResultPoller {
 public:
  StoredResultPoller(ResultHub* hub, GatewayStore* store,
                     absl::Duration interval = absl::Seconds(1),
                     size_t ids_per_round = 1000);
  ~StoredResultPoller();

 private:
  void Run();

  ResultHub* hub_;
  GatewayStore* store_;
  const absl::Duration interval_;
  const size_t ids_per_round_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace coupon::gateway
