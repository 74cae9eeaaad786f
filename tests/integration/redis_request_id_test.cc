// The Redis mode's request ids past their records (issue 10): a request's
// record in Redis expires after --redis_record_ttl, or is lost (Redis
// restored an older state, restarted without its data). The id's answer must
// stay what PostgreSQL holds: a resent ISSUED id is ISSUED with its copy, and
// an id reused for another coupon or user is ALREADY_EXISTS, with nothing of
// the first user's copy and no stock taken. Real gateways, Redis, PostgreSQL
// and the outbox scheduler.

#include "absl/strings/str_cat.h"
#include "common/redis/redis.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "redis-issuer/records.h"
#include "tests/integration/issuance_stack.h"
#include "tests/integration/refused_copies.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

class RedisRequestIdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis::RedisConfig config;
    config.addr = RedisAddr();
    auto client = redis::Client::Create(config);
    ASSERT_TRUE(client.ok()) << client.status();
    redis_ = std::move(*client);
  }

  int AddGateway(absl::Duration record_ttl = absl::Hours(24)) {
    return stack_.AddGateway(absl::Minutes(1), "redis", [&](gateway::GatewayConfig& c) {
      c.redis_record_ttl = record_ttl;
    });
  }

  IssueCall Issue(int64_t coupon, const std::string& user, const std::string& id,
                  int gateway = 0) {
    std::vector<IssueCall> calls = {{user, id, {}, {}}};
    IssueConcurrently(stack_.stub(gateway), coupon, calls);
    return calls[0];
  }

  int64_t Copies(int64_t coupon) {
    return QueryInt(stack_.db(), "SELECT count(*) FROM user_coupons WHERE coupon_id = $1",
                    {absl::StrCat(coupon)});
  }

  // Redis forgets the request's record, as when it comes back from an older
  // snapshot or an AOF that lost its last second.
  void ForgetRecord(const std::string& request_id) {
    ASSERT_TRUE(redis_->Command({"DEL", redis_issuer::RequestKey(request_id)}).ok());
  }

  IssuanceStack stack_;
  std::unique_ptr<redis::Client> redis_;
};

// Before: after the TTL, alice's resend answered ALREADY_ISSUED (the script's
// marker) while GetIssueResult answered ISSUED from PostgreSQL; bob's reuse
// of her id was told ISSUED with her copy, and coupon 2's unit was lost.
TEST_F(RedisRequestIdTest, AnIssuedIdKeepsItsAnswerPastTheRecordTtl) {
  const int gw = AddGateway(absl::Minutes(1));
  const int64_t coupon = stack_.CreateCoupon(2, "ttl").coupon_id();
  const int64_t other_coupon = stack_.CreateCoupon(1, "ttl, other").coupon_id();
  const std::string id = absl::StrCat("ttl-", coupon);
  IssueCall won = Issue(coupon, "alice", id, gw);
  ASSERT_TRUE(won.status.ok()) << won.status.error_message();
  ASSERT_EQ(won.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);

  absl::SleepFor(absl::Seconds(62));  // past --redis_record_ttl=1m
  // A gateway started now knows nothing of the id either.
  const int fresh = AddGateway(absl::Minutes(1));
  for (int g : {gw, fresh}) {
    SCOPED_TRACE(absl::StrCat("gateway ", g));
    IssueCall resent = Issue(coupon, "alice", id, g);
    ASSERT_TRUE(resent.status.ok()) << resent.status.error_message();
    EXPECT_EQ(resent.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
    EXPECT_EQ(resent.response.user_coupon_id(), won.response.user_coupon_id());

    IssueCall reused = Issue(coupon, "bob", id, g);
    EXPECT_EQ(reused.status.error_code(), grpc::StatusCode::ALREADY_EXISTS)
        << "bob was answered " << v1::IssueOutcome_Name(reused.response.outcome())
        << " with user_coupon_id " << reused.response.user_coupon_id();
    IssueCall elsewhere = Issue(other_coupon, "bob", id, g);
    EXPECT_EQ(elsewhere.status.error_code(), grpc::StatusCode::ALREADY_EXISTS)
        << "bob was answered " << v1::IssueOutcome_Name(elsewhere.response.outcome())
        << " with user_coupon_id " << elsewhere.response.user_coupon_id();
  }
  EXPECT_EQ(Copies(coupon), 1);
  // Neither reuse took a unit: bob and carol get the coupons' last ones.
  IssueCall bob = Issue(coupon, "bob", absl::StrCat(id, "-bob"), gw);
  ASSERT_TRUE(bob.status.ok()) << bob.status.error_message();
  EXPECT_EQ(bob.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  IssueCall carol = Issue(other_coupon, "carol", absl::StrCat(id, "-carol"), gw);
  ASSERT_TRUE(carol.status.ok()) << carol.status.error_message();
  EXPECT_EQ(carol.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
}

// --redis_record_ttl=inf keeps every answer for good, the gateway's own
// (the coupon known sold out) and the decide script's (a fresh gateway).
// Before: inf was taken as 9223372036854775807 seconds, which Redis refuses
// for EX, and every answer other than ISSUED failed.
TEST_F(RedisRequestIdTest, AnInfiniteTtlKeepsEveryAnswer) {
  const int gw = AddGateway(absl::InfiniteDuration());
  const int64_t coupon = stack_.CreateCoupon(1, "kept").coupon_id();
  const std::string id = absl::StrCat("kept-", coupon);
  struct Call {
    std::string user, request_id;
    int gateway;
    v1::IssueOutcome outcome;
  };
  const std::vector<Call> calls = {
      {"alice", id + "-alice", gw, v1::ISSUE_OUTCOME_ISSUED},
      {"bob", id + "-bob", gw, v1::ISSUE_OUTCOME_SOLD_OUT},
      {"alice", id + "-alice-again", gw, v1::ISSUE_OUTCOME_ALREADY_ISSUED},
      {"carol", id + "-carol", AddGateway(absl::InfiniteDuration()), v1::ISSUE_OUTCOME_SOLD_OUT},
  };
  for (const Call& c : calls) {
    SCOPED_TRACE(c.request_id);
    IssueCall call = Issue(coupon, c.user, c.request_id, c.gateway);
    ASSERT_TRUE(call.status.ok()) << call.status.error_message();
    EXPECT_EQ(call.response.outcome(), c.outcome);
    auto ttl = redis_->Command({"TTL", redis_issuer::RequestKey(c.request_id)});
    ASSERT_TRUE(ttl.ok()) << ttl.status();
    EXPECT_EQ(ttl->integer, -1) << "-1: kept for good; -2: no record";
  }
}

// Before: bob's reuse of alice's id, once Redis forgot its record, was told
// ISSUED with alice's user_coupon_id, and bob's later request ALREADY_ISSUED;
// alice's resend was ALREADY_ISSUED.
TEST_F(RedisRequestIdTest, AnIdRedisForgotStaysItsOwners) {
  AddGateway();
  const int64_t coupon = stack_.CreateCoupon(2, "forgotten").coupon_id();
  const std::string id = absl::StrCat("forgotten-", coupon);
  IssueCall won = Issue(coupon, "alice", id);
  ASSERT_TRUE(won.status.ok()) << won.status.error_message();
  ASSERT_EQ(won.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);

  ForgetRecord(id);
  const int fresh = AddGateway();
  IssueCall reused = Issue(coupon, "bob", id, fresh);
  EXPECT_EQ(reused.status.error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << "bob was answered " << v1::IssueOutcome_Name(reused.response.outcome())
      << " with user_coupon_id " << reused.response.user_coupon_id();
  // The reservation bob's reuse made was released: he gets the last unit.
  IssueCall bob = Issue(coupon, "bob", absl::StrCat(id, "-bob"), fresh);
  ASSERT_TRUE(bob.status.ok()) << bob.status.error_message();
  EXPECT_EQ(bob.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);

  ForgetRecord(id);
  IssueCall resent = Issue(coupon, "alice", id, fresh);
  ASSERT_TRUE(resent.status.ok()) << resent.status.error_message();
  EXPECT_EQ(resent.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_EQ(resent.response.user_coupon_id(), won.response.user_coupon_id());
  EXPECT_EQ(Copies(coupon), 2);
  // Sold out now, for everyone else.
  IssueCall carol = Issue(coupon, "carol", absl::StrCat(id, "-carol"), fresh);
  ASSERT_TRUE(carol.status.ok()) << carol.status.error_message();
  EXPECT_EQ(carol.response.outcome(), v1::ISSUE_OUTCOME_SOLD_OUT);
}

// The reuse's reservation left to the outbox scheduler (its gateway could
// not write it). Before: the scheduler settled it ISSUED for bob with
// alice's copy, and bob's resend was told so.
TEST_F(RedisRequestIdTest, TheSchedulerReleasesAReservationWhoseIdIsAnothers) {
  AddGateway();
  const int64_t coupon = stack_.CreateCoupon(2, "reuse left over").coupon_id();
  const std::string id = absl::StrCat("left-over-", coupon);
  pg::Connection& db = stack_.db();
  IssueCall won = Issue(coupon, "alice", id);
  ASSERT_TRUE(won.status.ok()) << won.status.error_message();
  ASSERT_EQ(won.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  ForgetRecord(id);

  // PostgreSQL refuses this coupon's writes while bob reuses the id.
  ASSERT_TRUE(RefuseCopiesOf(db, coupon).ok());
  // Through a gateway that has not seen the id: the first one knows it is
  // alice's and answers ALREADY_EXISTS itself.
  IssueCall reused = Issue(coupon, "bob", id, AddGateway());
  ASSERT_EQ(reused.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << reused.status.error_message();
  ASSERT_TRUE(AllowCopiesOf(db, coupon).ok());

  absl::SleepFor(absl::Seconds(2));
  auto scheduler = ReconcilingScheduler({coupon});
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  auto pass = (*scheduler)->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->reconciled, 0) << "bob's reservation was settled as a copy";
  EXPECT_EQ(pass->reconciled_released, 1);

  IssueCall resent = Issue(coupon, "bob", id, AddGateway());
  EXPECT_EQ(resent.status.error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << "bob was answered " << v1::IssueOutcome_Name(resent.response.outcome())
      << " with user_coupon_id " << resent.response.user_coupon_id();
  IssueCall bob = Issue(coupon, "bob", absl::StrCat(id, "-bob"));
  ASSERT_TRUE(bob.status.ok()) << bob.status.error_message();
  EXPECT_EQ(bob.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_EQ(Copies(coupon), 2);
}

}  // namespace
}  // namespace coupon::testing
