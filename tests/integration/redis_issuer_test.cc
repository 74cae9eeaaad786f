// The Redis issuer through a real gateway, Redis and PostgreSQL: replays,
// results of requests that were not issued, and Redis being down.

#include "absl/strings/str_cat.h"
#include "common/redis/redis.h"
#include "gateway/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"
#include "tests/testing/own_redis_clients.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

using ::testing::HasSubstr;

class RedisIssuerTest : public ::testing::Test {
 protected:
  void SetUp() override { stack_.AddGateway(absl::Minutes(1), "redis"); }

  IssueCall Issue(int64_t coupon, const std::string& user, const std::string& id,
                  int gateway = 0) {
    std::vector<IssueCall> calls = {{user, id, {}, {}}};
    IssueConcurrently(stack_.stub(gateway), coupon, calls);
    return calls[0];
  }

  int64_t Rows(const std::string& table, int64_t coupon) {
    return QueryInt(stack_.db(),
                    absl::StrCat("SELECT count(*) FROM ", table, " WHERE coupon_id = $1"),
                    {absl::StrCat(coupon)});
  }

  IssuanceStack stack_;
};

TEST_F(RedisIssuerTest, SameRequestIdIsOneRequest) {
  const int64_t coupon = stack_.CreateCoupon(5).coupon_id();
  const std::string id = absl::StrCat("redis-idem-", coupon);
  IssueCall first = Issue(coupon, "u1", id);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_EQ(first.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_GT(first.response.user_coupon_id(), 0);

  IssueCall again = Issue(coupon, "u1", id);
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_EQ(again.response.user_coupon_id(), first.response.user_coupon_id());
  EXPECT_EQ(Rows("user_coupons", coupon), 1);
  EXPECT_EQ(Rows("coupon_outbox", coupon), 1);

  IssueCall other_user = Issue(coupon, "u2", id);
  EXPECT_EQ(other_user.status.error_code(), grpc::StatusCode::ALREADY_EXISTS);

  IssueCall second_ask = Issue(coupon, "u1", absl::StrCat(id, "-2"));
  ASSERT_TRUE(second_ask.status.ok());
  EXPECT_EQ(second_ask.response.outcome(), v1::ISSUE_OUTCOME_ALREADY_ISSUED);
  EXPECT_EQ(Rows("user_coupons", coupon), 1);
}

// Gateways learn each other's decisions over pub/sub, which loses messages
// while a subscriber reconnects. A request id answered from one gateway's
// pre-check must get the same answer on another gateway that knows less.
TEST_F(RedisIssuerTest, OneRequestIdGetsOneAnswerOnEveryGateway) {
  const int other = stack_.AddGateway(absl::Minutes(1), "redis");
  const int64_t coupon = stack_.CreateCoupon(1).coupon_id();
  const std::string run = absl::StrCat("redis-one-answer-", coupon);
  redis::RedisConfig config;
  config.addr = RedisAddr();
  auto redis = redis::Client::Create(config);
  ASSERT_TRUE(redis.ok()) << redis.status();
  // The gateways' subscriptions drop: the other gateway misses what comes
  // next. Only this process's pub/sub clients: a gateway that
  // scripts/services runs on the same Redis keeps its subscription.
  absl::StatusOr<int> killed = KillOwnRedisClients(**redis, "pubsub");
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_GE(*killed, 2) << "both gateways' subscriptions were to be dropped";

  IssueCall won = Issue(coupon, "u", absl::StrCat(run, "-r2"));
  ASSERT_TRUE(won.status.ok()) << won.status.error_message();
  ASSERT_EQ(won.response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  // The other gateway learns "sold out" from its own decision, not that u
  // holds the copy.
  IssueCall late = Issue(coupon, "w", absl::StrCat(run, "-r4"), other);
  ASSERT_TRUE(late.status.ok()) << late.status.error_message();
  ASSERT_EQ(late.response.outcome(), v1::ISSUE_OUTCOME_SOLD_OUT);

  // u asks again with a new id: this gateway knows u holds a copy.
  IssueCall again = Issue(coupon, "u", absl::StrCat(run, "-r1"));
  ASSERT_TRUE(again.status.ok()) << again.status.error_message();
  ASSERT_EQ(again.response.outcome(), v1::ISSUE_OUTCOME_ALREADY_ISSUED);
  // The same id resent to the other gateway gets the same answer.
  IssueCall resent = Issue(coupon, "u", absl::StrCat(run, "-r1"), other);
  ASSERT_TRUE(resent.status.ok()) << resent.status.error_message();
  EXPECT_EQ(resent.response.outcome(), v1::ISSUE_OUTCOME_ALREADY_ISSUED);
}

TEST_F(RedisIssuerTest, ResultsOfEveryOutcomeCanBeWatchedAndPolled) {
  const int64_t coupon = stack_.CreateCoupon(1).coupon_id();
  const std::string won = absl::StrCat("redis-won-", coupon);
  const std::string lost = absl::StrCat("redis-lost-", coupon);
  ASSERT_EQ(Issue(coupon, "a", won).response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  // Through a second gateway, which has not learned the coupon is gone, so
  // Redis decides: the first gateway must then find that result in Redis.
  const int other = stack_.AddGateway(absl::Minutes(1), "redis");
  ASSERT_EQ(Issue(coupon, "b", lost, other).response.outcome(),
            v1::ISSUE_OUTCOME_SOLD_OUT);

  WatchOutcome w = WatchToEnd(stack_.stub(), {won, lost});
  ASSERT_TRUE(w.status.ok()) << w.status.error_message();
  ASSERT_EQ(w.results.size(), 2u);
  for (const auto& r : w.results) {
    EXPECT_EQ(r.outcome(), r.request_id() == won ? v1::ISSUE_OUTCOME_ISSUED
                                                 : v1::ISSUE_OUTCOME_SOLD_OUT);
    EXPECT_EQ(r.coupon_id(), coupon);
  }
  grpc::ClientContext ctx;
  v1::GetIssueResultRequest get;
  get.set_request_id(lost);
  v1::IssueResult polled;
  ASSERT_TRUE(stack_.stub().GetIssueResult(&ctx, get, &polled).ok());
  EXPECT_EQ(polled.outcome(), v1::ISSUE_OUTCOME_SOLD_OUT);
  EXPECT_EQ(polled.user_id(), "b");
}

TEST_F(RedisIssuerTest, CouponWatchSeesDecisionsOfOtherGateways) {
  const int64_t coupon = stack_.CreateCoupon(2).coupon_id();
  const int other = stack_.AddGateway(absl::Minutes(1), "redis");
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::WatchIssueResultsRequest by_coupon;
  by_coupon.set_coupon_id(coupon);
  auto reader = stack_.stub(0).WatchIssueResults(&ctx, by_coupon);
  reader->WaitForInitialMetadata();

  const std::string id = absl::StrCat("redis-fanout-", coupon);
  ASSERT_EQ(Issue(coupon, "fan", id, other).response.outcome(),
            v1::ISSUE_OUTCOME_ISSUED);
  v1::IssueResult seen;
  ASSERT_TRUE(reader->Read(&seen)) << "no result reached the first gateway";
  EXPECT_EQ(seen.request_id(), id);
  EXPECT_EQ(seen.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_GT(seen.user_coupon_id(), 0);
  ctx.TryCancel();
  reader->Finish();
}

TEST(RedisDownTest, IssueFailsUnavailableAndWritesNothing) {
  // A gateway whose Redis does not answer (nothing listens on port 1).
  gateway::GatewayConfig config;
  config.issuer = "redis";
  config.listen = "127.0.0.1:0";
  config.redis_addr = "127.0.0.1:1";
  config.pg_dsn = PgDsn();
  config.admin.tokens_file = AdminTokensFile();
  auto gw = gateway::GatewayServer::Start(config);
  ASSERT_TRUE(gw.ok()) << gw.status();
  auto stub = v1::CouponService::NewStub(
      AdminChannel(absl::StrCat("127.0.0.1:", (*gw)->port())));

  grpc::ClientContext create_ctx;
  v1::CreateCouponRequest create;
  create.set_name("redis down");
  create.set_total_quantity(3);
  v1::Coupon coupon;
  ASSERT_TRUE(stub->CreateCoupon(&create_ctx, create, &coupon).ok());

  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::IssueCouponRequest req;
  req.set_coupon_id(coupon.coupon_id());
  req.set_user_id("u");
  v1::IssueCouponResponse resp;
  grpc::Status s = stub->IssueCoupon(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("redis"));
  EXPECT_THAT(s.error_message(), HasSubstr("127.0.0.1:1"));

  auto db = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(QueryInt(**db, "SELECT count(*) FROM user_coupons WHERE coupon_id = $1",
                     {absl::StrCat(coupon.coupon_id())}),
            0);
}

}  // namespace
}  // namespace coupon::testing
