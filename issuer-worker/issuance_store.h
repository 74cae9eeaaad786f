#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "common/domain/domain.h"
#include "issuer-worker/decision.h"

namespace coupon::worker {

class IssuanceStore {
 public:
  virtual ~IssuanceStore() = default;

  // In ONE transaction: locks the batch's coupons, loads what DecideBatch
  // needs, decides, and stores the copies, the results and the stock taken.
  // Returns the decision with user_coupon_id filled in for new copies. On
  // error nothing is stored and the batch may be retried as it is.
  virtual absl::StatusOr<BatchDecision> DecideAndStore(
      const std::vector<IssueRequest>& requests, UnixMicros now) = 0;
};

}  // namespace coupon::worker
