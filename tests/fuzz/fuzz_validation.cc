// The field checks of common/domain/validation.h, and the Timestamp conversion of
// common/wire/proto_convert.h, on any input. Each check names its field when it
// refuses, and what it accepts really has the documented shape. IsValidUtf8
// agrees with protobuf's own UTF-8 check, which decides what a gateway can
// parse at all.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/wire/proto_convert.h"
#include "common/domain/validation.h"
#include "glog/logging.h"
#include "google/protobuf/stubs/common.h"

namespace coupon {
namespace {

void CheckNamesField(const absl::Status& status, absl::string_view field) {
  CHECK(absl::IsInvalidArgument(status)) << status;
  CHECK(absl::StartsWith(status.message(), absl::StrCat(field, ": ")))
      << status;
}

// C0 and DEL bytes, or a C1 control (U+0080..U+009F, encoded C2 80..C2 9F).
bool HasControl(absl::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x20 || b == 0x7F) return true;
    if (b == 0xC2 && i + 1 < s.size() &&
        static_cast<uint8_t>(s[i + 1]) >= 0x80 &&
        static_cast<uint8_t>(s[i + 1]) <= 0x9F) {
      return true;
    }
  }
  return false;
}

void CheckText(absl::string_view s) {
  const bool utf8 = IsValidUtf8(s);
  CHECK_EQ(utf8, google::protobuf::internal::IsStructurallyValidUTF8(
                     s.data(), static_cast<int>(s.size())))
      << "IsValidUtf8 and protobuf disagree";

  absl::Status user = ValidateUserId("user_id", s);
  if (user.ok()) {
    CHECK(!s.empty() && s.size() <= kMaxUserIdBytes && utf8 && !HasControl(s));
  } else {
    CheckNamesField(user, "user_id");
  }

  absl::Status request = ValidateRequestId("request_id", s);
  if (request.ok()) {
    CHECK(!s.empty() && s.size() <= kMaxRequestIdBytes);
    for (char c : s) {
      CHECK(absl::ascii_isalnum(c) || c == '.' || c == '_' || c == ':' ||
            c == '-');
    }
  } else {
    CheckNamesField(request, "request_id");
  }

  absl::Status name = ValidateCouponName("name", s);
  if (name.ok()) {
    CHECK(!s.empty() && utf8 && !HasControl(s));
    size_t chars = 0;
    for (char c : s) chars += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    CHECK_LE(chars, kMaxCouponNameChars);
  } else {
    CheckNamesField(name, "name");
  }
}

void CheckNumbers(FuzzedDataProvider& in) {
  const int64_t n = in.ConsumeIntegral<int64_t>();
  absl::Status coupon = ValidateCouponId("coupon_id", n);
  CHECK_EQ(coupon.ok(), n > 0);
  if (!coupon.ok()) CheckNamesField(coupon, "coupon_id");
  absl::Status quantity = ValidateTotalQuantity("total_quantity", n);
  CHECK_EQ(quantity.ok(), n >= 1 && n <= kMaxTotalQuantity);
  if (!quantity.ok()) CheckNamesField(quantity, "total_quantity");

  google::protobuf::Timestamp ts;
  ts.set_seconds(in.ConsumeIntegral<int64_t>());
  ts.set_nanos(in.ConsumeIntegral<int32_t>());
  absl::StatusOr<UnixMicros> micros = FromProtoTime("starts_at", ts);
  CHECK_EQ(micros.ok(),
           ValidateTimestamp("starts_at", ts.seconds(), ts.nanos()).ok());
  if (!micros.ok()) {
    CheckNamesField(micros.status(), "starts_at");
    return;
  }
  google::protobuf::Timestamp back = ToProtoTime(*micros);
  CHECK_EQ(back.seconds(), ts.seconds());
  CHECK_EQ(back.nanos(), ts.nanos() / 1000 * 1000);
}

}  // namespace
}  // namespace coupon

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool()) {
    coupon::CheckNumbers(in);
  } else {
    coupon::CheckText(in.ConsumeRemainingBytesAsString());
  }
  return 0;
}
