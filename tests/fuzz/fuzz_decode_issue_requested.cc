// DecodeIssueRequested on any bytes, as the worker gets them from
// coupon-issue-request: it never crashes, it only refuses with
// INVALID_ARGUMENT, and what it accepts is a valid request that encodes and
// decodes back to itself.

#include <cstddef>
#include <cstdint>

#include "common/wire/event_codec.h"
#include "common/domain/validation.h"
#include "glog/logging.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coupon;
  absl::StatusOr<IssueRequest> decoded = DecodeIssueRequested(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!decoded.ok()) {
    CHECK(absl::IsInvalidArgument(decoded.status())) << decoded.status();
    return 0;
  }
  CHECK(ValidateRequestId("request_id", decoded->request_id).ok());
  CHECK(ValidateCouponId("coupon_id", decoded->coupon_id).ok());
  CHECK(ValidateUserId("user_id", decoded->user_id).ok());

  absl::StatusOr<IssueRequest> again =
      DecodeIssueRequested(EncodeIssueRequested(*decoded));
  CHECK(again.ok()) << again.status();
  CHECK_EQ(again->request_id, decoded->request_id);
  CHECK_EQ(again->coupon_id, decoded->coupon_id);
  CHECK_EQ(again->user_id, decoded->user_id);
  CHECK_EQ(again->requested_at, decoded->requested_at);
  CHECK_EQ(again->gateway_id, decoded->gateway_id);
  return 0;
}
