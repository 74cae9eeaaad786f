#pragma once

// Where an IssueCoupon request is decided. The gateway's front end
// (IssueService) validates and finds the coupon; an Issuer then answers:
//   KafkaIssuer  queues the request for the issuer-worker (the design's
//                improved system) and answers ACCEPTED;
//   RedisIssuer  decides on the spot in Redis and writes the copy to
//                PostgreSQL (the design's existing system).
// Both answer a final outcome at once when they already know it.

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/domain.h"

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

using IssueDone = std::function<void(absl::StatusOr<IssueReply>)>;

class Issuer {
 public:
  virtual ~Issuer() = default;

  // `command` is valid, with its request id set; `coupon` exists. Calls `done`
  // exactly once, on this thread or another. `deadline` bounds the waiting.
  virtual void Issue(IssueCommand command, const CouponInfo& coupon,
                     absl::Time deadline, IssueDone done) = 0;

  // The gateway's pre-check inferred `inferred` (sold out, the user holds a
  // copy, or the request's known result) without asking the issuer. Calls
  // `done` once with the answer this request id keeps for good. By default
  // that is `inferred`: the Kafka path's gateways learn results in partition
  // order, so what they infer never contradicts a decision.
  virtual void AnswerKnown(IssueCommand command, const CouponInfo& coupon,
                           IssueReply inferred, absl::Time deadline,
                           IssueDone done) {
    done(std::move(inferred));
  }
};

// The message for a request id reused for another coupon or user.
absl::Status RequestIdReused(const std::string& request_id);

}  // namespace coupon::gateway
