#pragma once

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "common/domain/domain.h"
#include "issuer-worker/decision.h"

namespace coupon::worker {

/// Where a batch is decided: the store gives the decision what it needs, in
/// a transaction that holds the batch's coupons, and keeps what it decided.
/// The decision itself is the caller's (decision.h), not the store's.
class IssuanceStore {
 public:
  // A decision over the batch and what the store held (DecideBatch).
  using Decide = std::function<BatchDecision(const std::vector<IssueRequest>&, Snapshot,
                                             UnixMicros now)>;
  // The caller's own work, run while the store's writes are on their way.
  using Meanwhile = std::function<void()>;

  virtual ~IssuanceStore() = default;

  // In ONE transaction: locks the batch's coupons, loads the Snapshot,
  // calls `decide`, and stores the copies, the results and the stock taken.
  // Returns the decision with user_coupon_id filled in for new copies. On
  // error nothing is stored and the batch may be retried as it is.
  // `meanwhile` (when given) runs at most once, once the writes and the
  // commit are sent and before their outcome is known; never after an error
  // that came before them.
  virtual absl::StatusOr<BatchDecision> DecideAndStore(
      const std::vector<IssueRequest>& requests, UnixMicros now, const Decide& decide,
      const Meanwhile& meanwhile) = 0;
};

}  // namespace coupon::worker
