#include "gateway/issue/issue_service.h"

#include "gateway/issue/kafka_issuer.h"

#include "common/wire/event_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_answer_store.h"
#include "tests/testing/fake_publisher.h"
#include "tests/testing/status_matchers.h"

namespace coupon::gateway {
namespace {

using ::coupon::testing::FakeAnswerStore;
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
        issuer_(&publisher_, &answers_, &hub_, "coupon-issue-request", "gw-1",
                [] { return kNow; }),
        service_(&coupons_, &hub_.cache(), &issuer_, nullptr, [] { return kNow; }) {
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
  FakeAnswerStore answers_;
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

TEST_F(IssueServiceTest, ASoldOutCouponIsAnsweredFromStoredFactsAndTheAnswerStored) {
  hub_.Publish(IssueResult{"r0", 7, "x", Outcome::kSoldOut, 0, 0, 1});
  auto reply = Issue({7, "u", "r1"});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->outcome, Outcome::kSoldOut);
  EXPECT_THAT(publisher_.sent(), SizeIs(0));
  // Stored before it was answered: the id's result, on every gateway.
  ASSERT_TRUE(answers_.Find("r1").has_value());
  EXPECT_EQ(answers_.Find("r1")->outcome, Outcome::kSoldOut);
  EXPECT_EQ(answers_.Find("r1")->user_id, "u");
  // And readable here at once.
  ASSERT_TRUE(hub_.cache().Find("r1").has_value());
  EXPECT_EQ(hub_.cache().Find("r1")->outcome, Outcome::kSoldOut);
}

TEST_F(IssueServiceTest, AnInferenceNeverContradictsWhatTheStoreHolds) {
  // A gateway that never saw r1 decided infers SOLD_OUT; the store holds
  // ISSUED for it (the worker decided it before the coupon ran out).
  answers_.Hold(IssueResult{"r1", 7, "u", Outcome::kIssued, 55, 0, 1});
  hub_.Publish(IssueResult{"r0", 7, "x", Outcome::kSoldOut, 0, 0, 2});
  auto reply = Issue({7, "u", "r1"});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->outcome, Outcome::kIssued);
  EXPECT_EQ(reply->user_coupon_id, 55);
  // The same user's new id: ALREADY_ISSUED, not SOLD_OUT.
  auto again = Issue({7, "u", "r2"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, Outcome::kAlreadyIssued);
  // Another user's request under r1: refused, and nothing of u's result.
  EXPECT_THAT(Issue({7, "v", "r1"}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("request_id")));
  EXPECT_THAT(publisher_.sent(), SizeIs(0));
}

TEST_F(IssueServiceTest, AnAnswerThatCannotBeStoredIsDecidedByTheWorker) {
  hub_.Publish(IssueResult{"r0", 7, "x", Outcome::kSoldOut, 0, 0, 1});
  answers_.set_status(absl::UnavailableError("postgres: down"));
  auto reply = Issue({7, "u", "r1"});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->outcome, Outcome::kAccepted);
  EXPECT_THAT(publisher_.sent(), SizeIs(1));
}

TEST_F(IssueServiceTest, AResendOfAQueuedRequestIsNotQueuedTwice) {
  ASSERT_EQ(Issue({7, "u", "r1"})->outcome, Outcome::kAccepted);
  ASSERT_EQ(Issue({7, "u", "r1"})->outcome, Outcome::kAccepted);
  EXPECT_THAT(publisher_.sent(), SizeIs(1));
  // Another caller's use of the queued id is refused.
  EXPECT_THAT(Issue({7, "v", "r1"}), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(IssueServiceTest, WithoutPrecheckEveryRequestInTheWindowGoesToTheIssuer) {
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

TEST_F(IssueServiceTest, TheWindowIsJudgedAtTheGatewayAndTheAnswerStored) {
  coupon_.starts_at = absl::ToUnixMicros(kNow + absl::Hours(1));
  auto reply = Issue({7, "u", "early"});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->outcome, Outcome::kNotStarted);
  EXPECT_THAT(publisher_.sent(), SizeIs(0));
  ASSERT_TRUE(answers_.Find("early").has_value());
  EXPECT_EQ(answers_.Find("early")->outcome, Outcome::kNotStarted);
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
  IssueService service(&failing, &hub_.cache(), &issuer_);
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
  IssueService service(&coupons_, &hub_.cache(), &issuer_, &limiter);
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
