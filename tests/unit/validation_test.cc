#include "common/domain/validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace coupon {
namespace {

using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(Validation, UserIdAcceptsNumbersUuidsAndUnicode) {
  EXPECT_THAT(ValidateUserId("user_id", "12345"), IsOk());
  EXPECT_THAT(ValidateUserId("user_id", "3f2b8c1e-9d4a-4e7b-a1c2-0d9e8f7a6b5c"),
              IsOk());
  EXPECT_THAT(ValidateUserId("user_id", "사용자-1"), IsOk());
  EXPECT_THAT(ValidateUserId("user_id", std::string(128, 'x')), IsOk());
}

TEST(Validation, UserIdErrorsNameTheField) {
  for (const std::string& bad :
       {std::string(), std::string(129, 'x'), std::string("a\nb"),
        std::string("\xff\xfe"), std::string("\xc0\xaf"),  // overlong '/'
        std::string("\xed\xa0\x80")}) {                    // surrogate
    EXPECT_THAT(ValidateUserId("user_id", bad),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         StartsWith("user_id: ")))
        << bad;
  }
}

TEST(Validation, RequestIdAllowsAFixedAlphabet) {
  EXPECT_THAT(ValidateRequestId("request_id", "order-17:retry_2.a"), IsOk());
  EXPECT_THAT(ValidateRequestId("request_id", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("required")));
  EXPECT_THAT(ValidateRequestId("request_id", "has space"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("request_id: ")));
  EXPECT_THAT(ValidateRequestId("request_id", std::string(129, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("128")));
}

TEST(Validation, CouponFields) {
  EXPECT_THAT(ValidateCouponId("coupon_id", 1), IsOk());
  EXPECT_THAT(ValidateCouponId("coupon_id", 0),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("coupon_id")));
  EXPECT_THAT(ValidateCouponId("coupon_id", -5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-5")));
  EXPECT_THAT(ValidateTotalQuantity("total_quantity", 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateTotalQuantity("total_quantity", kMaxTotalQuantity + 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateCouponName("name", "봄 세일"), IsOk());
  EXPECT_THAT(ValidateCouponName("name", std::string(200, 'n')), IsOk());
  EXPECT_THAT(ValidateCouponName("name", std::string(201, 'n')),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("name")));
  EXPECT_THAT(ValidateCouponName("name", "\xff"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
}

TEST(Validation, CouponNameRefusesControlCharacters) {
  for (const std::string& bad :
       {std::string("new\nline"), std::string("tab\there"),
        std::string("nul\0", 4), std::string("del\x7f"),
        std::string("c1 \xc2\x85")}) {
    EXPECT_THAT(ValidateCouponName("name", bad),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         StartsWith("name: has a control character")))
        << bad;
  }
  EXPECT_THAT(ValidateCouponName("name", "ok \xf0\x9f\x8e\x9f"),
              IsOk());  // emoji
}

// Found by tests/fuzz/fuzz_validation: converting a Timestamp outside this
// range to microseconds overflowed int64.
TEST(Validation, TimestampRange) {
  EXPECT_THAT(ValidateTimestamp("starts_at", 0, 0), IsOk());
  EXPECT_THAT(ValidateTimestamp("starts_at", -62'135'596'800, 0), IsOk());
  EXPECT_THAT(ValidateTimestamp("starts_at", 253'402'300'799, 999'999'999),
              IsOk());
  EXPECT_THAT(ValidateTimestamp("starts_at", 253'402'300'800, 0),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("starts_at: seconds must be between")));
  EXPECT_THAT(
      ValidateTimestamp("ends_at", INT64_MIN, 0),
      StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("ends_at: ")));
  EXPECT_THAT(ValidateTimestamp("ends_at", 1, -1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("ends_at: nanos must be")));
  EXPECT_THAT(ValidateTimestamp("ends_at", 1, 1'000'000'000),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nanos")));
}

}  // namespace
}  // namespace coupon
