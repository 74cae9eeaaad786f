// The Redis mode when PostgreSQL refuses the write of a copy Redis already
// counted (issue 10, item 5): the caller hears UNAVAILABLE, the id has no
// result while the copy is only reserved, and if nobody retries, the outbox
// scheduler writes the copy: exactly one final result, ISSUED with a real
// copy, readable by id, and the stock synced. Real gateway, Redis and
// PostgreSQL; the refusal is a trigger on user_coupons for this test's coupon.

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"
#include "tests/integration/refused_copies.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

using ::testing::HasSubstr;

grpc::Status Get(v1::CouponService::Stub& stub, const std::string& request_id,
                 v1::IssueResult* out) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetIssueResultRequest req;
  req.set_request_id(request_id);
  return stub.GetIssueResult(&ctx, req, out);
}

TEST(RedisReservationTest, ACopyPostgreSQLRefusedIsWrittenByTheSchedulerAndReadable) {
  IssuanceStack stack;
  stack.AddGateway(absl::Minutes(1), "redis");
  const int64_t coupon = stack.CreateCoupon(5, "refused once").coupon_id();
  const std::string c = absl::StrCat(coupon);
  const std::string id = absl::StrCat("reserved-", coupon);
  pg::Connection& db = stack.db();
  // PostgreSQL refuses this coupon's copies until the trigger is dropped.
  ASSERT_TRUE(RefuseCopiesOf(db, coupon).ok());

  std::vector<IssueCall> calls = {{"alice", id, {}, {}}};
  IssueConcurrently(stack.stub(), coupon, calls);
  ASSERT_EQ(calls[0].status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << calls[0].status.error_message();
  EXPECT_THAT(calls[0].status.error_message(), HasSubstr("same request_id"));

  // Reserved, not issued: no result for the id yet, and none that says
  // ISSUED without a copy behind it.
  v1::IssueResult r;
  grpc::Status got = Get(stack.stub(), id, &r);
  EXPECT_EQ(got.error_code(), grpc::StatusCode::NOT_FOUND)
      << "the id answers " << v1::IssueOutcome_Name(r.outcome()) << " with user_coupon_id "
      << r.user_coupon_id() << " while PostgreSQL holds no copy for it";
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM user_coupons WHERE request_id = $1", {id}), 0);

  // Nobody retries. PostgreSQL takes writes again; the scheduler's pass
  // finds the reservation older than its grace and writes the copy.
  ASSERT_TRUE(AllowCopiesOf(db, coupon).ok());
  absl::SleepFor(absl::Seconds(2));
  auto scheduler = ReconcilingScheduler({coupon});
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  auto pass = (*scheduler)->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->reconciled, 1);
  EXPECT_EQ(pass->done, 1) << "the written copy reached the stock in the same pass";

  const int64_t copy =
      QueryInt(db, "SELECT user_coupon_id FROM user_coupons WHERE request_id = $1", {id});
  ASSERT_TRUE(Get(stack.stub(), id, &r).ok());
  EXPECT_EQ(r.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_EQ(r.user_coupon_id(), copy);
  EXPECT_EQ(r.user_id(), "alice");
  EXPECT_EQ(QueryInt(db, "SELECT remaining_quantity FROM coupons WHERE coupon_id = $1", {c}), 4);

  // The same request sent again: the same copy.
  std::vector<IssueCall> again = {{"alice", id, {}, {}}};
  IssueConcurrently(stack.stub(), coupon, again);
  ASSERT_TRUE(again[0].status.ok()) << again[0].status.error_message();
  EXPECT_EQ(again[0].response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_EQ(again[0].response.user_coupon_id(), copy);
  // A second pass finds nothing left to settle.
  auto second = (*scheduler)->RunOnce();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->reconciled, 0);
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM user_coupons WHERE coupon_id = $1", {c}), 1);
}

// A reserved copy PostgreSQL keeps refusing (here a trigger; in the wild a
// coupon row deleted by hand) must not hold up the copies reserved after it:
// the scheduler's pass used to stop at the oldest copy's error, every pass.
TEST(RedisReservationTest, ACopyThatCannotBeWrittenDoesNotHoldUpTheOthers) {
  IssuanceStack stack;
  stack.AddGateway(absl::Minutes(1), "redis");
  const int64_t stuck = stack.CreateCoupon(5, "refused for good").coupon_id();
  const int64_t fine = stack.CreateCoupon(5, "refused once").coupon_id();
  pg::Connection& db = stack.db();
  for (int64_t coupon : {stuck, fine}) ASSERT_TRUE(RefuseCopiesOf(db, coupon).ok());
  // The stuck copy is reserved first: the oldest, where a pass begins.
  for (int64_t coupon : {stuck, fine}) {
    std::vector<IssueCall> calls = {{"carol", absl::StrCat("held-up-", coupon), {}, {}}};
    IssueConcurrently(stack.stub(), coupon, calls);
    ASSERT_EQ(calls[0].status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << calls[0].status.error_message();
  }
  ASSERT_TRUE(AllowCopiesOf(db, fine).ok());
  absl::SleepFor(absl::Seconds(2));
  auto scheduler = ReconcilingScheduler({stuck, fine});
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  auto pass = (*scheduler)->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->reconciled, 1) << "the writable copy waited behind the refused one";
  EXPECT_EQ(pass->reconcile_failures, 1);
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM user_coupons WHERE request_id = $1",
                     {absl::StrCat("held-up-", fine)}),
            1);
  // The refused copy stays reserved, and is tried again once PostgreSQL
  // takes it: exactly one copy in the end.
  ASSERT_TRUE(AllowCopiesOf(db, stuck).ok());
  absl::SleepFor(absl::Seconds(2));
  auto again = (*scheduler)->RunOnce();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->reconciled, 1);
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM user_coupons WHERE request_id = $1",
                     {absl::StrCat("held-up-", stuck)}),
            1);
}

TEST(RedisReservationTest, ARetryFinishesTheWriteItself) {
  IssuanceStack stack;
  stack.AddGateway(absl::Minutes(1), "redis");
  const int64_t coupon = stack.CreateCoupon(5, "refused, then retried").coupon_id();
  const std::string id = absl::StrCat("retried-", coupon);
  pg::Connection& db = stack.db();
  ASSERT_TRUE(db.Exec("CREATE OR REPLACE FUNCTION coupon_test_refuse() RETURNS trigger "
                      "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by "
                      "the test'; END $$")
                  .ok());
  const std::string trigger = absl::StrCat("coupon_test_refuse_", coupon);
  ASSERT_TRUE(db.Exec(absl::StrCat("CREATE TRIGGER ", trigger,
                                   " BEFORE INSERT ON user_coupons FOR EACH ROW WHEN "
                                   "(NEW.coupon_id = ", coupon,
                                   ") EXECUTE FUNCTION coupon_test_refuse()"))
                  .ok());
  std::vector<IssueCall> calls = {{"bob", id, {}, {}}};
  IssueConcurrently(stack.stub(), coupon, calls);
  ASSERT_EQ(calls[0].status.error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(db.Exec(absl::StrCat("DROP TRIGGER ", trigger, " ON user_coupons")).ok());
  IssueConcurrently(stack.stub(), coupon, calls);
  ASSERT_TRUE(calls[0].status.ok()) << calls[0].status.error_message();
  EXPECT_EQ(calls[0].response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  v1::IssueResult r;
  ASSERT_TRUE(Get(stack.stub(), id, &r).ok());
  EXPECT_EQ(r.user_coupon_id(), calls[0].response.user_coupon_id());
  EXPECT_GT(r.user_coupon_id(), 0);
}

}  // namespace
}  // namespace coupon::testing
