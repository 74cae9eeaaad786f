#pragma once

// Domain <-> protobuf conversions, shared by the gRPC handlers and the event
// codec, so an outcome maps to the wire in exactly one switch.

#include "absl/status/statusor.h"
#include "common/domain/domain.h"
#include "coupon/v1/coupon.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace coupon {

google::protobuf::Timestamp ToProtoTime(UnixMicros micros);
// INVALID_ARGUMENT naming `field` when `ts` is outside the range a Timestamp
// allows; the nanoseconds below a microsecond are dropped.
absl::StatusOr<UnixMicros> FromProtoTime(absl::string_view field,
                                         const google::protobuf::Timestamp& ts);

v1::IssueOutcome ToProto(Outcome outcome);
absl::StatusOr<Outcome> FromProto(v1::IssueOutcome outcome);

v1::IssueResult ToProto(const IssueResult& result);
v1::QueuePosition ToProto(const QueuePosition& position);
// Checks every field, as for an event from outside: INVALID_ARGUMENT naming
// the first bad one.
absl::StatusOr<IssueResult> FromProto(const v1::IssueResult& proto);

v1::Coupon ToProto(const CouponInfo& coupon);
v1::UserCoupon ToProto(const UserCouponRow& row);

}  // namespace coupon
