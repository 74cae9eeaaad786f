#pragma once

// The IssueCoupon front end, the same for every issuer: validate the fields,
// find the coupon (cached), make a request id when the caller gave none, then
// let the configured Issuer answer. No gRPC here: the handler converts and
// calls Issue; tests call it with fakes.

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/coupon_cache.h"
#include "gateway/issuer.h"

namespace coupon::gateway {

/// Thread-safe; holds no state of its own. The cache and issuer must outlive it.
class IssueService {
 public:
  IssueService(CouponCache* coupons, Issuer* issuer)
      : coupons_(coupons), issuer_(issuer) {}

  // Calls `done` exactly once (see Issuer::Issue).
  void Issue(IssueCommand command, absl::Time deadline, IssueDone done);

  // A fresh request id: 32 random hex digits.
  static std::string NewRequestId();

 private:
  CouponCache* coupons_;
  Issuer* issuer_;
};

}  // namespace coupon::gateway
