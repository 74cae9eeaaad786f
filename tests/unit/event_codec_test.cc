#include "common/events/event_codec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace coupon {
namespace {

using ::coupon::testing::StatusIs;
using ::testing::HasSubstr;

TEST(EventCodec, IssueRequestedRoundTrips) {
  IssueRequest in{"req-1", 42, "user-7", 1'700'000'000'123'456, "gw-1"};
  auto out = DecodeIssueRequested(EncodeIssueRequested(in));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->request_id, in.request_id);
  EXPECT_EQ(out->coupon_id, in.coupon_id);
  EXPECT_EQ(out->user_id, in.user_id);
  EXPECT_EQ(out->requested_at, in.requested_at);
  EXPECT_EQ(out->gateway_id, in.gateway_id);
}

TEST(EventCodec, IssueResultRoundTrips) {
  IssueResult in{"req-1", 42, "u", Outcome::kIssued, 9, 3, 1'700'000'000'000'001};
  auto out = DecodeIssueResult(EncodeIssueResult(in));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, in);
}

TEST(EventCodec, MalformedRequestsSayWhy) {
  EXPECT_THAT(DecodeIssueRequested("\xff\xff\xff garbage"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeIssueRequested(std::string(kMaxEventBytes + 1, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bytes")));
  IssueRequest no_user{"req-1", 42, "", 1, "gw"};
  EXPECT_THAT(DecodeIssueRequested(EncodeIssueRequested(no_user)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("user_id")));
  IssueRequest bad_coupon{"req-1", -1, "u", 1, "gw"};
  EXPECT_THAT(DecodeIssueRequested(EncodeIssueRequested(bad_coupon)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("coupon_id")));
  // An empty payload decodes to all-default fields: still malformed.
  EXPECT_THAT(DecodeIssueRequested(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(EventCodec, KeyIsTheDecimalCouponId) { EXPECT_EQ(CouponKey(1234), "1234"); }

}  // namespace
}  // namespace coupon
