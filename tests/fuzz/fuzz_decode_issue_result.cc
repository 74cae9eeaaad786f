// DecodeIssueResult on any bytes, as a gateway gets them from
// coupon-issue-result and from the Redis mode's results channel: it never
// crashes, it only refuses with INVALID_ARGUMENT, and what it accepts is a
// final result with valid fields that encodes and decodes back to itself.

#include <cstddef>
#include <cstdint>

#include "common/wire/event_codec.h"
#include "common/domain/validation.h"
#include "glog/logging.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coupon;
  absl::StatusOr<IssueResult> decoded = DecodeIssueResult(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!decoded.ok()) {
    CHECK(absl::IsInvalidArgument(decoded.status())) << decoded.status();
    return 0;
  }
  CHECK(decoded->outcome != Outcome::kAccepted);
  CHECK(ValidateRequestId("request_id", decoded->request_id).ok());
  CHECK(ValidateCouponId("coupon_id", decoded->coupon_id).ok());
  CHECK(ValidateUserId("user_id", decoded->user_id).ok());
  CHECK_GE(decoded->user_coupon_id, 0);
  CHECK_GE(decoded->remaining_quantity, 0);

  absl::StatusOr<IssueResult> again =
      DecodeIssueResult(EncodeIssueResult(*decoded));
  CHECK(again.ok()) << again.status();
  CHECK(*again == *decoded);
  return 0;
}
