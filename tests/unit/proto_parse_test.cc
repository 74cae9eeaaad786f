#include "common/wire/proto_parse.h"

#include <string>

#include "coupon/v1/coupon_service.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/raw_message.h"
#include "tests/testing/status_matchers.h"

namespace coupon {
namespace {

using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using Wire = ::coupon::testing::RawMessage;

TEST(ParseProto, ParsesAWellFormedRequest) {
  v1::IssueCouponRequest req;
  ASSERT_THAT(
      ParseProto(
          Wire().Int(1, 7).Bytes(2, "사용자").Bytes(3, "r-1").Serialize(),
          &req),
      IsOk());
  EXPECT_EQ(req.coupon_id(), 7);
  EXPECT_EQ(req.user_id(), "사용자");
  EXPECT_EQ(req.request_id(), "r-1");
}

TEST(ParseProto, NamesTheStringFieldThatIsNotUtf8) {
  v1::IssueCouponRequest issue;
  EXPECT_THAT(
      ParseProto(Wire().Int(1, 7).Bytes(2, "ok").Bytes(3, "\xff").Serialize(),
                 &issue),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "request_id: is not valid UTF-8"));
  v1::WatchIssueResultsRequest watch;
  EXPECT_THAT(
      ParseProto(
          Wire().Bytes(1, "a").Bytes(1, "b").Bytes(1, "\xc0\xaf").Serialize(),
          &watch),
      StatusIs(absl::StatusCode::kInvalidArgument,
               StartsWith("request_ids[2]: ")));
  // Inside a nested message, with the path to it.
  v1::ListUserCouponsResponse list;
  const std::string good_coupon = Wire().Bytes(3, "u").Serialize();
  const std::string bad_coupon =
      Wire().Bytes(3, "\xed\xa0\x80").Serialize();  // a surrogate
  EXPECT_THAT(
      ParseProto(Wire().Bytes(1, good_coupon).Bytes(1, bad_coupon).Serialize(),
                 &list),
      StatusIs(absl::StatusCode::kInvalidArgument,
               StartsWith("coupons[1].user_id: ")));
}

TEST(ParseProto, NamesAKnownFieldSentWithTheWrongWireType) {
  // Protobuf alone accepts these and leaves the field unset.
  v1::IssueCouponRequest issue;
  EXPECT_THAT(
      ParseProto(Wire().Bytes(1, "7").Bytes(2, "u").Serialize(), &issue),
      StatusIs(absl::StatusCode::kInvalidArgument,
               StartsWith("coupon_id: has the wrong wire type")));
  EXPECT_EQ(issue.user_id(), "");  // cleared on error
  v1::CreateCouponRequest create;
  EXPECT_THAT(
      ParseProto(Wire()
                     .Bytes(1, "n")
                     .Bytes(3, Wire().Bytes(2, "x").Serialize())
                     .Serialize(),
                 &create),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("starts_at.nanos: has the wrong wire type (a "
                         "length-delimited value where a varint belongs)")));
}

TEST(ParseProto, KeepsFieldsItDoesNotKnow) {
  v1::GetCouponRequest get;
  ASSERT_THAT(
      ParseProto(Wire().Int(1, 5).Bytes(99, "\xff new").Serialize(), &get),
      IsOk());
  EXPECT_EQ(get.coupon_id(), 5);
}

TEST(ParseProto, NamesTheMessageWhenTheBytesAreNotProtobuf) {
  v1::GetCouponRequest get;
  EXPECT_THAT(
      ParseProto(std::string("\x0a\x05"
                             "ab"),
                 &get),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "coupon.v1.GetCouponRequest: is not valid protobuf wire data"));
  EXPECT_THAT(ParseProto("", &get), IsOk());  // proto3: all fields default
}

}  // namespace
}  // namespace coupon
