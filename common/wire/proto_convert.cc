#include "common/wire/proto_convert.h"

#include "absl/strings/str_cat.h"
#include "common/domain/status_macros.h"
#include "common/domain/validation.h"

namespace coupon {

google::protobuf::Timestamp ToProtoTime(UnixMicros micros) {
  google::protobuf::Timestamp ts;
  int64_t seconds = micros / 1'000'000;
  int64_t rest = micros % 1'000'000;
  if (rest < 0) {
    rest += 1'000'000;
    seconds -= 1;
  }
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(rest * 1000));
  return ts;
}

absl::StatusOr<UnixMicros> FromProtoTime(
    absl::string_view field, const google::protobuf::Timestamp& ts) {
  RETURN_IF_ERROR(ValidateTimestamp(field, ts.seconds(), ts.nanos()));
  return ts.seconds() * 1'000'000 + ts.nanos() / 1000;
}

v1::IssueOutcome ToProto(Outcome outcome) {
  switch (outcome) {
    case Outcome::kAccepted:
      return v1::ISSUE_OUTCOME_ACCEPTED;
    case Outcome::kIssued:
      return v1::ISSUE_OUTCOME_ISSUED;
    case Outcome::kSoldOut:
      return v1::ISSUE_OUTCOME_SOLD_OUT;
    case Outcome::kAlreadyIssued:
      return v1::ISSUE_OUTCOME_ALREADY_ISSUED;
    case Outcome::kNotStarted:
      return v1::ISSUE_OUTCOME_NOT_STARTED;
    case Outcome::kExpired:
      return v1::ISSUE_OUTCOME_EXPIRED;
    case Outcome::kRequestIdReused:
      return v1::ISSUE_OUTCOME_REQUEST_ID_REUSED;
    case Outcome::kQueued:
      return v1::ISSUE_OUTCOME_QUEUED;
  }
  return v1::ISSUE_OUTCOME_UNSPECIFIED;
}

absl::StatusOr<Outcome> FromProto(v1::IssueOutcome outcome) {
  switch (outcome) {
    case v1::ISSUE_OUTCOME_ACCEPTED:
      return Outcome::kAccepted;
    case v1::ISSUE_OUTCOME_ISSUED:
      return Outcome::kIssued;
    case v1::ISSUE_OUTCOME_SOLD_OUT:
      return Outcome::kSoldOut;
    case v1::ISSUE_OUTCOME_ALREADY_ISSUED:
      return Outcome::kAlreadyIssued;
    case v1::ISSUE_OUTCOME_NOT_STARTED:
      return Outcome::kNotStarted;
    case v1::ISSUE_OUTCOME_EXPIRED:
      return Outcome::kExpired;
    case v1::ISSUE_OUTCOME_REQUEST_ID_REUSED:
      return Outcome::kRequestIdReused;
    case v1::ISSUE_OUTCOME_QUEUED:
      return Outcome::kQueued;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("outcome: unknown value ", static_cast<int>(outcome)));
  }
}

v1::IssueResult ToProto(const IssueResult& result) {
  v1::IssueResult proto;
  proto.set_request_id(result.request_id);
  proto.set_coupon_id(result.coupon_id);
  proto.set_user_id(result.user_id);
  proto.set_outcome(ToProto(result.outcome));
  proto.set_user_coupon_id(result.user_coupon_id);
  proto.set_remaining_quantity(result.remaining_quantity);
  *proto.mutable_decided_at() = ToProtoTime(result.decided_at);
  if (result.position) *proto.mutable_position() = ToProto(*result.position);
  return proto;
}

v1::QueuePosition ToProto(const QueuePosition& position) {
  v1::QueuePosition proto;
  proto.set_requests_ahead(position.requests_ahead);
  proto.set_scope(position.scope == QueuePosition::Scope::kCoupon
                      ? v1::QueuePosition::SCOPE_COUPON
                      : v1::QueuePosition::SCOPE_PARTITION);
  return proto;
}

absl::StatusOr<IssueResult> FromProto(const v1::IssueResult& proto) {
  IssueResult result;
  RETURN_IF_ERROR(ValidateRequestId("request_id", proto.request_id()));
  RETURN_IF_ERROR(ValidateCouponId("coupon_id", proto.coupon_id()));
  RETURN_IF_ERROR(ValidateUserId("user_id", proto.user_id()));
  ASSIGN_OR_RETURN(result.outcome, FromProto(proto.outcome()));
  if (proto.user_coupon_id() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "user_coupon_id: must not be negative, got ", proto.user_coupon_id()));
  }
  if (proto.remaining_quantity() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("remaining_quantity: must not be negative, got ",
                     proto.remaining_quantity()));
  }
  ASSIGN_OR_RETURN(result.decided_at,
                   FromProtoTime("decided_at", proto.decided_at()));
  result.request_id = proto.request_id();
  result.coupon_id = proto.coupon_id();
  result.user_id = proto.user_id();
  result.user_coupon_id = proto.user_coupon_id();
  result.remaining_quantity = proto.remaining_quantity();
  return result;
}

v1::Coupon ToProto(const CouponInfo& coupon) {
  v1::Coupon proto;
  proto.set_coupon_id(coupon.coupon_id);
  proto.set_name(coupon.name);
  proto.set_total_quantity(coupon.total_quantity);
  proto.set_remaining_quantity(coupon.remaining_quantity);
  proto.set_issued_quantity(coupon.total_quantity - coupon.remaining_quantity);
  if (coupon.starts_at) *proto.mutable_starts_at() = ToProtoTime(*coupon.starts_at);
  if (coupon.ends_at) *proto.mutable_ends_at() = ToProtoTime(*coupon.ends_at);
  *proto.mutable_created_at() = ToProtoTime(coupon.created_at);
  return proto;
}

v1::UserCoupon ToProto(const UserCouponRow& row) {
  v1::UserCoupon proto;
  proto.set_user_coupon_id(row.user_coupon_id);
  proto.set_coupon_id(row.coupon_id);
  proto.set_user_id(row.user_id);
  proto.set_request_id(row.request_id);
  *proto.mutable_issued_at() = ToProtoTime(row.issued_at);
  return proto;
}

}  // namespace coupon
