#pragma once

// Where an IssueCoupon request is decided. The gateway's front end
// (IssueService) validates, finds the coupon and answers what the store
// already holds; an Issuer then answers:
//   KafkaIssuer  queues the request for the issuer-worker (the design's
//                improved system) and answers ACCEPTED;
//   RedisIssuer  decides on the spot in Redis and writes the copy to
//                PostgreSQL (the design's existing system).
// Both store what the front end inferred before answering it.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/domain/domain.h"
#include "common/domain/validation.h"

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
  // Where the request stands in line, when the issuer knows.
  std::optional<QueuePosition> position;
};

using IssueDone = std::function<void(absl::StatusOr<IssueReply>)>;

class Issuer {
 public:
  virtual ~Issuer() = default;

  // `command` is valid, with its request id set, inside `coupon`'s window;
  // `coupon` exists; the front end knows no result for the request id. Calls
  // `done` exactly once, on this thread or another. `deadline` bounds the
  // waiting.
  virtual void Issue(IssueCommand command, const CouponInfo& coupon,
                     absl::Time deadline, IssueDone done) = 0;

  // The front end inferred `proposed`, a final outcome, without the issuer:
  // outside the coupon's window, or from stored facts (the user holds a copy,
  // the coupon is sold out). Calls `done` once with the answer the request
  // id keeps for good: `proposed`, once it is stored as the id's result, or
  // the result the id held already; ALREADY_EXISTS when that belongs to
  // another coupon or user. Nothing is answered that the store does not
  // hold: when `proposed` cannot be stored, the issuer decides the request.
  virtual void AnswerKnown(IssueCommand command, const CouponInfo& coupon,
                           IssueResult proposed, absl::Time deadline,
                           IssueDone done) = 0;
};

}  // namespace coupon::gateway
