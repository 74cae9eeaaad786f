#include "common/wire/event_codec.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/wire/proto_convert.h"
#include "common/wire/proto_parse.h"
#include "common/domain/status_macros.h"
#include "common/domain/validation.h"
#include "coupon/v1/coupon.pb.h"
#include "coupon/v1/events.pb.h"

namespace coupon {

std::string EncodeIssueRequested(const IssueRequest& request) {
  v1::IssueRequested event;
  event.set_request_id(request.request_id);
  event.set_coupon_id(request.coupon_id);
  event.set_user_id(request.user_id);
  *event.mutable_requested_at() = ToProtoTime(request.requested_at);
  event.set_gateway_id(request.gateway_id);
  return event.SerializeAsString();
}

absl::StatusOr<IssueRequest> DecodeIssueRequested(absl::string_view bytes) {
  if (bytes.size() > kMaxEventBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "event is ", bytes.size(), " bytes; at most ", kMaxEventBytes));
  }
  v1::IssueRequested event;
  RETURN_IF_ERROR(ParseProto(bytes, &event));
  RETURN_IF_ERROR(ValidateRequestId("request_id", event.request_id()));
  RETURN_IF_ERROR(ValidateCouponId("coupon_id", event.coupon_id()));
  RETURN_IF_ERROR(ValidateUserId("user_id", event.user_id()));
  if (!event.has_requested_at()) {
    return absl::InvalidArgumentError("requested_at: is required");
  }
  IssueRequest request;
  ASSIGN_OR_RETURN(request.requested_at,
                   FromProtoTime("requested_at", event.requested_at()));
  request.request_id = event.request_id();
  request.coupon_id = event.coupon_id();
  request.user_id = event.user_id();
  request.gateway_id = event.gateway_id();
  return request;
}

std::string EncodeIssueResult(const IssueResult& result) {
  return ToProto(result).SerializeAsString();
}

absl::StatusOr<IssueResult> DecodeIssueResult(absl::string_view bytes) {
  if (bytes.size() > kMaxEventBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "event is ", bytes.size(), " bytes; at most ", kMaxEventBytes));
  }
  v1::IssueResult proto;
  RETURN_IF_ERROR(ParseProto(bytes, &proto));
  ASSIGN_OR_RETURN(IssueResult result, FromProto(proto));
  if (result.outcome == Outcome::kAccepted) {
    return absl::InvalidArgumentError("outcome: a result must be final");
  }
  return result;
}

std::string EncodeDeadLetter(const DeadLetter& d) {
  v1::DeadLetter proto;
  proto.set_payload(d.payload);
  proto.set_key(d.key);
  proto.set_reason(d.reason);
  proto.set_topic(d.topic);
  proto.set_partition(d.partition);
  proto.set_offset(d.offset);
  *proto.mutable_dead_at() = ToProtoTime(d.dead_at);
  return proto.SerializeAsString();
}

absl::StatusOr<DeadLetter> DecodeDeadLetter(absl::string_view bytes) {
  v1::DeadLetter proto;
  RETURN_IF_ERROR(ParseProto(bytes, &proto));
  DeadLetter d;
  ASSIGN_OR_RETURN(d.dead_at, FromProtoTime("dead_at", proto.dead_at()));
  d.payload = proto.payload();
  d.key = proto.key();
  d.reason = proto.reason();
  d.topic = proto.topic();
  d.partition = proto.partition();
  d.offset = proto.offset();
  return d;
}

std::string CouponKey(int64_t coupon_id) { return absl::StrCat(coupon_id); }

std::string EncodeDecidedThrough(const DecidedThrough& through) {
  return absl::StrCat(through.partition, ":", through.offset);
}

absl::StatusOr<DecidedThrough> DecodeDecidedThrough(absl::string_view value) {
  const size_t colon = value.find(':');
  DecidedThrough through;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(value.substr(0, colon), &through.partition) ||
      !absl::SimpleAtoi(value.substr(colon + 1), &through.offset) ||
      through.partition < 0 || through.offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kDecidedThroughHeader, ": want <partition>:<offset>, got \"",
                     absl::CHexEscape(value), "\""));
  }
  return through;
}

}  // namespace coupon
