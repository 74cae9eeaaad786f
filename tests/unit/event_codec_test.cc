#include "common/wire/event_codec.h"

#include "common/wire/proto_convert.h"
#include "coupon/v1/events.pb.h"
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

// Found by tests/fuzz: a requested_at far from now made the decoder
// overflow int64 (undefined behaviour) instead of refusing the event.
TEST(EventCodec, OutOfRangeTimesAreRefused) {
  v1::IssueRequested event;
  event.set_request_id("req-1");
  event.set_coupon_id(42);
  event.set_user_id("u");
  event.mutable_requested_at()->set_seconds(int64_t{1} << 62);
  EXPECT_THAT(DecodeIssueRequested(event.SerializeAsString()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("requested_at: seconds")));
  event.mutable_requested_at()->set_seconds(1);
  event.mutable_requested_at()->set_nanos(-1);
  EXPECT_THAT(DecodeIssueRequested(event.SerializeAsString()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("requested_at: nanos")));

  v1::IssueResult result =
      ToProto(IssueResult{"req-1", 42, "u", Outcome::kSoldOut, 0, 0, 1});
  result.mutable_decided_at()->set_seconds(INT64_MIN);
  EXPECT_THAT(DecodeIssueResult(result.SerializeAsString()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("decided_at: seconds")));
}

TEST(EventCodec, MalformedEventsNameTheField) {
  // Protobuf refuses the whole event; the reason names the field for the DLQ.
  v1::IssueRequested event;
  event.set_request_id("req-1");
  event.set_coupon_id(42);
  event.set_user_id("ok");
  *event.mutable_requested_at() = ToProtoTime(1);
  std::string bytes = event.SerializeAsString();
  bytes.replace(bytes.find("ok"), 2, "\xff\xfe");
  EXPECT_THAT(DecodeIssueRequested(bytes),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "user_id: is not valid UTF-8"));

  const IssueResult good{"req-1", 42, "u", Outcome::kIssued, 9, 3, 1};
  auto with = [&](auto change) {
    v1::IssueResult proto = ToProto(good);
    change(proto);
    return DecodeIssueResult(proto.SerializeAsString()).status();
  };
  EXPECT_THAT(
      with([](v1::IssueResult& p) { p.set_request_id("has space"); }),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("request_id")));
  EXPECT_THAT(
      with([](v1::IssueResult& p) { p.set_coupon_id(0); }),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("coupon_id")));
  EXPECT_THAT(
      with([](v1::IssueResult& p) { p.set_user_id(""); }),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("user_id")));
  EXPECT_THAT(with([](v1::IssueResult& p) { p.set_remaining_quantity(-1); }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("remaining_quantity")));
  EXPECT_THAT(with([](v1::IssueResult& p) { p.set_user_coupon_id(-1); }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("user_coupon_id")));
  EXPECT_THAT(with([](v1::IssueResult& p) {
                p.set_outcome(v1::ISSUE_OUTCOME_ACCEPTED);
              }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("final")));
  EXPECT_THAT(with([](v1::IssueResult&) {}), coupon::testing::IsOk());
}

TEST(EventCodec, KeyIsTheDecimalCouponId) { EXPECT_EQ(CouponKey(1234), "1234"); }

TEST(EventCodec, DecidedThroughRoundTripsAndRefusesGarbage) {
  absl::StatusOr<DecidedThrough> t =
      DecodeDecidedThrough(EncodeDecidedThrough(DecidedThrough{7, 123456789012}));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->partition, 7);
  EXPECT_EQ(t->offset, 123456789012);
  for (const char* bad : {"", "7", "7:", ":5", "-1:5", "7:-5", "a:b", "7:5:1", "7 :5x"}) {
    EXPECT_FALSE(DecodeDecidedThrough(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace coupon
