#pragma once

// The IssueCoupon front end, the same for every issuer: validate the fields,
// hold back a user over their rate limit, find the coupon (cached), make a
// request id when the caller gave none, answer what the store already holds
// for the id (its result, as this gateway knows it), refuse an id that
// belongs to another caller, judge the coupon's window, infer what stored
// facts imply (the user holds a copy, the coupon is sold out), and let the
// configured Issuer store such an inference before it is answered, or decide.
// No gRPC here: the handler converts and calls Issue; tests call it with
// fakes.

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/issue/coupon_cache.h"
#include "gateway/issue/issuer.h"
#include "gateway/issue/rate_limiter.h"
#include "gateway/results/result_cache.h"

namespace coupon::gateway {

/// Thread-safe; holds no state of its own. The caches and issuer must
/// outlive it.
class IssueService {
 public:
  using Clock = std::function<absl::Time()>;

  // `known` may be null: every request inside the window then goes to the
  // issuer. `limiter` may be null: no per-user limit.
  IssueService(CouponCache* coupons, const ResultCache* known, Issuer* issuer,
               UserRateLimiter* limiter = nullptr, Clock clock = absl::Now)
      : coupons_(coupons),
        known_(known),
        issuer_(issuer),
        limiter_(limiter),
        clock_(std::move(clock)) {}

  // Calls `done` exactly once (see Issuer::Issue).
  void Issue(IssueCommand command, absl::Time deadline, IssueDone done);

  // A fresh request id: 32 random hex digits.
  static std::string NewRequestId();

 private:
  CouponCache* coupons_;
  const ResultCache* known_;
  Issuer* issuer_;
  UserRateLimiter* limiter_;
  const Clock clock_;
};

}  // namespace coupon::gateway
