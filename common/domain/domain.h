#pragma once

// Domain types shared by the gateway and the issuer-worker. Plain structs: no
// protobuf, gRPC, Kafka or PostgreSQL here.

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

namespace coupon {

// Microseconds since the Unix epoch.
using UnixMicros = int64_t;

enum class Outcome {
  kAccepted,  // queued, not decided yet (never stored)
  kIssued,
  kSoldOut,
  kAlreadyIssued,
  kNotStarted,
  kExpired,
  // The request id belongs to another (coupon, user): this request was not
  // decided. Never stored under the id (the first use owns it).
  kRequestIdReused,
  // Not decided yet, with the place in line: what a caller asking for
  // positions reads of a queued request. Never stored, never an event.
  kQueued,
};

// True for the outcomes a request id's stored result can hold.
inline bool IsStoredOutcome(Outcome o) {
  return o != Outcome::kAccepted && o != Outcome::kRequestIdReused &&
         o != Outcome::kQueued;
}

// Where a request stands in line: how many requests are ahead of it, and
// what that counts (coupon.v1.QueuePosition).
struct QueuePosition {
  enum class Scope {
    kCoupon,     // exactly the coupon's requests ahead (the Redis issuer)
    kPartition,  // the undecided requests ahead in its partition: an upper
                 // bound on those ahead for its coupon (the Kafka issuer)
  };
  int64_t requests_ahead = 0;
  Scope scope = Scope::kPartition;

  bool operator==(const QueuePosition& o) const {
    return requests_ahead == o.requests_ahead && scope == o.scope;
  }
  bool operator!=(const QueuePosition& o) const { return !(*this == o); }
};

// The names used in the database and in logs.
absl::string_view OutcomeName(Outcome outcome);
std::optional<Outcome> OutcomeFromName(absl::string_view name);

struct CouponInfo {
  int64_t coupon_id = 0;
  std::string name;
  int64_t total_quantity = 0;
  int64_t remaining_quantity = 0;
  std::optional<UnixMicros> starts_at;
  std::optional<UnixMicros> ends_at;
  UnixMicros created_at = 0;
};

// The outcome of a request at `at` outside the coupon's validity window
// (kNotStarted or kExpired); nullopt inside it.
std::optional<Outcome> OutsideWindow(const CouponInfo& coupon, UnixMicros at);

// One issue request as it travels on `coupon-issue-request`.
struct IssueRequest {
  std::string request_id;
  int64_t coupon_id = 0;
  std::string user_id;
  UnixMicros requested_at = 0;
  std::string gateway_id;
};

// The final, stored result of one request.
struct IssueResult {
  std::string request_id;
  int64_t coupon_id = 0;
  std::string user_id;
  Outcome outcome = Outcome::kSoldOut;
  int64_t user_coupon_id = 0;  // when kIssued
  int64_t remaining_quantity = 0;
  UnixMicros decided_at = 0;
  // With kQueued: the place in line. Never stored, never an event.
  std::optional<QueuePosition> position;

  // Whether this result is the answer to a request of (coupon, user).
  bool BelongsTo(int64_t coupon, const std::string& user) const {
    return coupon_id == coupon && user_id == user;
  }

  bool operator==(const IssueResult& o) const {
    return request_id == o.request_id && coupon_id == o.coupon_id &&
           user_id == o.user_id && outcome == o.outcome &&
           user_coupon_id == o.user_coupon_id &&
           remaining_quantity == o.remaining_quantity &&
           decided_at == o.decided_at && position == o.position;
  }
};

// An event the worker could not decide, as it goes to the dead-letter topic:
// the event's bytes and where they were, and why.
struct DeadLetter {
  std::string payload;
  std::string key;
  std::string reason;
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  UnixMicros dead_at = 0;
};

struct UserCouponRow {
  int64_t user_coupon_id = 0;
  int64_t coupon_id = 0;
  std::string user_id;
  std::string request_id;
  UnixMicros issued_at = 0;
};

}  // namespace coupon
