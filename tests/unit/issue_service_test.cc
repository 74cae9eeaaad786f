#include "gateway/issue_service.h"

#include "gateway/kafka_issuer.h"

#include "common/events/event_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_publisher.h"
#include "tests/testing/status_matchers.h"

namespace coupon::gateway {
namespace {

using ::coupon::testing::FakePublisher;
using ::coupon::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

class IssueServiceTest : public ::testing::Test {
 protected:
  IssueServiceTest()
      : coupons_(
            [this](int64_t id) -> absl::StatusOr<CouponInfo> {
              ++loads_;
              if (id != 7) return absl::NotFoundError("coupon_id: no coupon");
              return coupon_;
            },
            absl::Seconds(1), 100, [] { return kNow; }),
        issuer_(&publisher_, "coupon-issue-request", "gw-1", [] { return kNow; }),
        service_(&coupons_, &hub_, &issuer_) {
    coupon_.coupon_id = 7;
    coupon_.total_quantity = 10;
    coupon_.remaining_quantity = 10;
  }

  absl::StatusOr<IssueReply> Issue(IssueCommand cmd) {
    absl::StatusOr<IssueReply> out = absl::InternalError("done not called");
    int calls = 0;
    service_.Issue(std::move(cmd), kNow + absl::Seconds(1),
                   [&](absl::StatusOr<IssueReply> r) {
                     out = std::move(r);
                     ++calls;
                   });
    EXPECT_EQ(calls, 1);
    return out;
  }

  CouponInfo coupon_;
  int loads_ = 0;
  CouponCache coupons_;
  ResultHub hub_;
  FakePublisher publisher_;
  KafkaIssuer issuer_;
  IssueService service_;
};

TEST_F(IssueServiceTest, AcceptsAfterTheBrokerAcknowledgedTheKeyedEvent) {
  auto reply = Issue({7, "user-1", "req-1"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->outcome, Outcome::kAccepted);
  EXPECT_EQ(reply->request_id, "req-1");
  ASSERT_THAT(publisher_.sent(), SizeIs(1));
  const FakePublisher::Sent sent = publisher_.sent()[0];
  EXPECT_EQ(sent.topic, "coupon-issue-request");
  EXPECT_EQ(sent.key, "7");
  auto event = DecodeIssueRequested(sent.payload);
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(event->user_id, "user-1");
  EXPECT_EQ(event->requested_at, absl::ToUnixMicros(kNow));
}

TEST_F(IssueServiceTest, MakesARequestIdWhenNoneIsGiven) {
  auto a = Issue({7, "user-1", ""});
  auto b = Issue({7, "user-1", ""});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_THAT(a->request_id, SizeIs(32));
  EXPECT_NE(a->request_id, b->request_id);
}

TEST_F(IssueServiceTest, BadFieldsAreNamed) {
  EXPECT_THAT(Issue({0, "u", ""}), StatusIs(absl::StatusCode::kInvalidArgument,
                                             StartsWith("coupon_id")));
  EXPECT_THAT(Issue({7, "", ""}), StatusIs(absl::StatusCode::kInvalidArgument,
                                            StartsWith("user_id")));
  EXPECT_THAT(Issue({7, "u", "bad id!"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("request_id")));
  EXPECT_THAT(publisher_.sent(), SizeIs(0));
}

TEST_F(IssueServiceTest, UnknownCouponIsNotFoundAndLookedUpOncePerTtl) {
  EXPECT_THAT(Issue({8, "u", ""}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Issue({8, "u", ""}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(loads_, 1);
  EXPECT_THAT(publisher_.sent(), SizeIs(0));
}

TEST_F(IssueServiceTest, KnownCouponCostsOneLookupOnly) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Issue({7, "u", ""}).ok());
  EXPECT_EQ(loads_, 1);
}

TEST_F(IssueServiceTest, KnownFactsAnswerWithoutAnEvent) {
  IssueResult sold{"r0", 7, "x", Outcome::kSoldOut, 0, 0, 1};
  hub_.Publish(sold);
  auto reply = Issue({7, "u", "r1"});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->outcome, Outcome::kSoldOut);
  EXPECT_THAT(publisher_.sent(), SizeIs(0));
}

TEST_F(IssueServiceTest, WithoutPrecheckEveryRequestGoesToTheIssuer) {
  hub_.Publish(IssueResult{"r0", 7, "x", Outcome::kSoldOut, 0, 0, 1});
  IssueService no_precheck(&coupons_, /*known=*/nullptr, &issuer_);
  absl::StatusOr<IssueReply> reply;
  no_precheck.Issue({7, "u", "r1"}, kNow + absl::Seconds(1),
                    [&](absl::StatusOr<IssueReply> r) { reply = std::move(r); });
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->outcome, Outcome::kAccepted);
  EXPECT_THAT(publisher_.sent(), SizeIs(1));
}

TEST_F(IssueServiceTest, ReusedRequestIdForAnotherUserIsRefused) {
  hub_.Publish(IssueResult{"r1", 7, "a", Outcome::kIssued, 5, 3, 1});
  EXPECT_THAT(Issue({7, "b", "r1"}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("request_id")));
}

TEST_F(IssueServiceTest, WindowIsCheckedAtTheGateway) {
  coupon_.starts_at = absl::ToUnixMicros(kNow + absl::Hours(1));
  auto reply = Issue({7, "u", ""});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->outcome, Outcome::kNotStarted);
  EXPECT_THAT(publisher_.sent(), SizeIs(0));
}

TEST_F(IssueServiceTest, BrokerDownIsUnavailableAtOnce) {
  publisher_.set_available(false);
  EXPECT_THAT(Issue({7, "u", ""}), StatusIs(absl::StatusCode::kUnavailable,
                                             HasSubstr("same request_id")));
  EXPECT_THAT(publisher_.sent(), SizeIs(0));
}

TEST_F(IssueServiceTest, FailedDeliveryIsUnavailable) {
  publisher_.set_delivery_status(absl::UnavailableError("kafka: timed out"));
  EXPECT_THAT(Issue({7, "u", ""}), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(IssueServiceTest, DatabaseDownIsUnavailableAndNotCached) {
  CouponCache failing(
      [&](int64_t) -> absl::StatusOr<CouponInfo> {
        ++loads_;
        return absl::UnavailableError("postgres: down");
      },
      absl::Seconds(1), 100, [] { return kNow; });
  IssueService service(&failing, &hub_, &issuer_);
  for (int i = 0; i < 2; ++i) {
    absl::Status status;
    service.Issue({7, "u", ""}, kNow,
                  [&](absl::StatusOr<IssueReply> r) { status = r.status(); });
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable));
  }
  EXPECT_EQ(loads_, 2);
}

TEST_F(IssueServiceTest, AUserOverTheLimitIsRefusedBeforeAnythingIsSent) {
  UserRateLimit limit;
  limit.per_second = 1;
  limit.burst = 2;
  int64_t now_ns = 0;  // the clock stands still: no token comes back
  UserRateLimiter limiter(limit, [&] { return now_ns; });
  IssueService service(&coupons_, &hub_, &issuer_, &limiter);
  auto issue = [&](const std::string& user, const std::string& id) {
    absl::StatusOr<IssueReply> out = absl::InternalError("done not called");
    service.Issue({7, user, id}, kNow + absl::Seconds(1),
                  [&](absl::StatusOr<IssueReply> r) { out = std::move(r); });
    return out;
  };
  EXPECT_TRUE(issue("bot", "b1").ok());
  EXPECT_TRUE(issue("bot", "b2").ok());
  // A resent request id counts too.
  EXPECT_THAT(issue("bot", "b1"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("2 IssueCoupon calls at once")));
  EXPECT_THAT(publisher_.sent(), SizeIs(2));
  EXPECT_TRUE(issue("alice", "a1").ok());
  // Invalid calls are refused for what they are and take no token.
  EXPECT_THAT(issue("", "x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace coupon::gateway
