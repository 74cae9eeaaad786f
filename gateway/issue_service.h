#pragma once

// The IssueCoupon front end, the same for every issuer: validate the fields,
// hold back a user over their rate limit, find the coupon (cached), make a request id when the caller gave none,
// answer from what this gateway already knows (the request's earlier result,
// a user who holds a copy, a sold-out coupon), else let the configured Issuer
// answer. No gRPC here: the handler converts and calls Issue; tests call it
// with fakes.

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/coupon_cache.h"
#include "gateway/issuer.h"
#include "gateway/rate_limiter.h"
#include "gateway/result_hub.h"

namespace coupon::gateway {

/// Thread-safe; holds no state of its own. The cache and issuer must outlive it.
class IssueService {
 public:
  // `known` may be null: every request then goes to the issuer. `limiter`
  // may be null: no per-user limit.
  IssueService(CouponCache* coupons, const ResultHub* known, Issuer* issuer,
               UserRateLimiter* limiter = nullptr)
      : coupons_(coupons), known_(known), issuer_(issuer), limiter_(limiter) {}

  // Calls `done` exactly once (see Issuer::Issue).
  void Issue(IssueCommand command, absl::Time deadline, IssueDone done);

  // A fresh request id: 32 random hex digits.
  static std::string NewRequestId();

 private:
  CouponCache* coupons_;
  const ResultHub* known_;
  Issuer* issuer_;
  UserRateLimiter* limiter_;
};

}  // namespace coupon::gateway
