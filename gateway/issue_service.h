#pragma once

// The IssueCoupon decision at the gateway: validate, answer from what is
// already known, or queue the request for the issuer-worker. No gRPC here:
// the handler converts and calls Issue; tests call it with fakes.

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/domain.h"
#include "common/event_publisher.h"
#include "gateway/coupon_cache.h"
#include "gateway/result_hub.h"

namespace coupon::gateway {

struct IssueCommand {
  int64_t coupon_id = 0;
  std::string user_id;
  std::string request_id;  // empty: the service makes one
};

struct IssueReply {
  std::string request_id;
  Outcome outcome = Outcome::kAccepted;
  int64_t user_coupon_id = 0;
};

/// Thread-safe; holds no state of its own beyond its collaborators, which it
/// does not own and which must outlive it.
class IssueService {
 public:
  using Done = std::function<void(absl::StatusOr<IssueReply>)>;
  using Clock = std::function<absl::Time()>;

  IssueService(CouponCache* coupons, ResultHub* hub, EventPublisher* publisher,
               std::string request_topic, std::string gateway_id,
               Clock clock = absl::Now);

  // Calls `done` exactly once: at once for an answer known here, or from the
  // publisher's thread once the broker acknowledged (ACCEPTED) or refused
  // (UNAVAILABLE) the event. `deadline` bounds waiting for producer room.
  void Issue(IssueCommand command, absl::Time deadline, Done done);

  // A fresh request id: 32 random hex digits.
  static std::string NewRequestId();

 private:
  CouponCache* coupons_;
  ResultHub* hub_;
  EventPublisher* publisher_;
  const std::string request_topic_;
  const std::string gateway_id_;
  const Clock clock_;
};

}  // namespace coupon::gateway
