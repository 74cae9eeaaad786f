#pragma once

// The wire form of the Kafka events, kept in one place. Decoding checks every
// field: a malformed event is rejected with the reason, which the worker sends
// to the dead-letter topic with the event.

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "common/domain/domain.h"

namespace coupon {

// Events larger than this are malformed without being parsed.
inline constexpr size_t kMaxEventBytes = 4096;

std::string EncodeIssueRequested(const IssueRequest& request);
absl::StatusOr<IssueRequest> DecodeIssueRequested(absl::string_view bytes);

std::string EncodeIssueResult(const IssueResult& result);
absl::StatusOr<IssueResult> DecodeIssueResult(absl::string_view bytes);

// The dead-letter topic's events. Decoding is for operators' tools and
// tests; the worker only writes them.
std::string EncodeDeadLetter(const DeadLetter& dead);
absl::StatusOr<DeadLetter> DecodeDeadLetter(absl::string_view bytes);

// The Kafka message key of both topics: the coupon id in decimal.
std::string CouponKey(int64_t coupon_id);

// A header of every result event: when it was published, every event of
// partition `partition` of the request topic up to `offset` was decided.
// Gateways count from it how many requests are ahead of one they queued
// (the place in line). Value: "<partition>:<offset>" in decimal.
inline constexpr char kDecidedThroughHeader[] = "coupon-decided-through";
struct DecidedThrough {
  int32_t partition = 0;
  int64_t offset = 0;
};
std::string EncodeDecidedThrough(const DecidedThrough& through);
// INVALID_ARGUMENT for anything but two non-negative decimal numbers.
absl::StatusOr<DecidedThrough> DecodeDecidedThrough(absl::string_view value);

}  // namespace coupon
