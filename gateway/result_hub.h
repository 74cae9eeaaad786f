#pragma once

// What a gateway replica knows from the result topic: recent results by
// request id, which (coupon, user) pairs hold a copy, which coupons are sold
// out; and who is waiting for which results. Plain C++: no gRPC, no Kafka.

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/domain.h"

namespace coupon::gateway {

/// Receives results. OnResult is called with the hub's lock held, from
/// whichever thread publishes: it must not block and must not call the hub.
class ResultWatcher {
 public:
  virtual ~ResultWatcher() = default;
  virtual void OnResult(const IssueResult& result) = 0;
  // The gateway is shutting down: no more results will come. Same rules as
  // OnResult.
  virtual void OnShutdown() = 0;
};

struct HubLimits {
  // Results kept by request id (oldest forgotten first).
  size_t max_results = 1'000'000;
  // (coupon, user) pairs known to hold a copy.
  size_t max_issued_pairs = 2'000'000;
};

// What the hub already knows about an issue request.
struct KnownAnswer {
  Outcome outcome;
  int64_t user_coupon_id = 0;
};

/// Thread-safe. Outlives every watcher registered with it; a watcher must
/// Unwatch before it is destroyed, after which no OnResult reaches it.
class ResultHub {
 public:
  explicit ResultHub(HubLimits limits = {}) : limits_(limits) {}

  // Learns a decided result and hands it to the watchers waiting for it.
  // Results seen again (a replayed event) are passed on again; watchers
  // de-duplicate by request id.
  void Publish(const IssueResult& result);

  std::optional<IssueResult> FindResult(const std::string& request_id) const;

  // The final answer for this request if the hub already knows it: the
  // earlier result of the same request id, ALREADY_ISSUED if another request
  // of this user won a copy (ISSUED if this one did), SOLD_OUT if the coupon
  // is gone. nullopt means: ask the worker. FAILED_PRECONDITION-worthy reuse
  // of a request id for another coupon or user is reported through
  // `*request_id_conflict`.
  std::optional<KnownAnswer> Precheck(int64_t coupon_id,
                                      const std::string& user_id,
                                      const std::string& request_id,
                                      bool* request_id_conflict) const;

  // Registers `watcher` for these request ids and returns the results among
  // them that are already known, atomically, so none is missed in between.
  std::vector<IssueResult> WatchRequests(const std::vector<std::string>& ids,
                                         ResultWatcher* watcher);
  void WatchUser(const std::string& user_id, ResultWatcher* watcher);
  void WatchCoupon(int64_t coupon_id, ResultWatcher* watcher);
  // Removes every registration of `watcher`.
  void Unwatch(ResultWatcher* watcher);

  size_t watcher_count() const;

  // Tells every registered watcher the gateway is shutting down (they stay
  // registered until they Unwatch), and from then on every watcher that
  // registers, at once: a watch opened during the shutdown ends too.
  void ShutdownWatchers();

 private:
  struct Registrations {
    std::vector<std::string> request_ids;
    std::vector<std::string> user_ids;
    std::vector<int64_t> coupon_ids;
  };
  using PairKey = std::pair<int64_t, std::string>;
  struct IssuedTo {
    std::string request_id;
    int64_t user_coupon_id;
  };

  void Remember(const IssueResult& result);

  const HubLimits limits_;
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, IssueResult> results_;
  std::deque<std::string> result_order_;
  absl::flat_hash_map<PairKey, IssuedTo> issued_;
  std::deque<PairKey> issued_order_;
  absl::flat_hash_set<int64_t> sold_out_;
  bool shut_down_ = false;

  absl::flat_hash_map<std::string, std::vector<ResultWatcher*>> by_request_;
  absl::flat_hash_map<std::string, std::vector<ResultWatcher*>> by_user_;
  absl::flat_hash_map<int64_t, std::vector<ResultWatcher*>> by_coupon_;
  absl::flat_hash_map<ResultWatcher*, Registrations> registrations_;
};

}  // namespace coupon::gateway
