// Compare's rules on hand-made runs: no server, no database.

#include "bench/flashsale/verify.h"

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coupon::bench {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Four users, one request each, one coupon of stock 2: users 0 and 1 win.
class CompareTest : public ::testing::Test {
 protected:
  CompareTest() : plan_(MakePlan("run", {7}, 4, 4, 1, 1)), ledger_(&plan_) {}

  // Every call ACCEPTED; the first two requests (by number) win.
  void AcceptAllAndDecide() {
    for (size_t n = 0; n < plan_.size(); ++n) {
      ledger_.RecordSent(n, 1);
      ledger_.RecordAnswer(n, 2, 0, v1::ISSUE_OUTCOME_ACCEPTED, 0);
      v1::IssueResult r;
      r.set_request_id(plan_.RequestId(n));
      r.set_coupon_id(7);
      r.set_user_id(Plan::UserId(plan_.user_of[n]));
      const bool wins = n < 2;
      r.set_outcome(wins ? v1::ISSUE_OUTCOME_ISSUED : v1::ISSUE_OUTCOME_SOLD_OUT);
      r.set_user_coupon_id(wins ? 100 + n : 0);
      ledger_.RecordResult(r, Via::kLive, 3);
      db_.results[r.request_id()] = {7, r.outcome(), r.user_coupon_id()};
      if (wins) {
        db_.holders.push_back({7, r.user_id(), r.request_id(),
                               static_cast<int64_t>(100 + n)});
      }
    }
    db_.coupons[7] = {2, 0, 2, 2};
  }

  std::string Violations(const Verification& v) {
    return absl::StrJoin(v.violations, "\n");
  }

  Plan plan_;
  Ledger ledger_;
  DbSnapshot db_;
};

TEST_F(CompareTest, ConsistentRunPasses) {
  AcceptAllAndDecide();
  Verification v = Compare(plan_, ledger_, 2, db_);
  EXPECT_THAT(v.violations, IsEmpty());
  ASSERT_EQ(v.coupons.size(), 1u);
  EXPECT_EQ(v.coupons[0].issued, 2);
  EXPECT_EQ(v.coupons[0].expected_min, 2);
  EXPECT_EQ(v.issued_seen, 2);
}

TEST_F(CompareTest, TwoCopiesForOneUserFail) {
  AcceptAllAndDecide();
  db_.coupons[7].distinct_users = 1;
  EXPECT_THAT(Violations(Compare(plan_, ledger_, 2, db_)),
              HasSubstr("a user holds two copies"));
}

TEST_F(CompareTest, StockDriftFails) {
  AcceptAllAndDecide();
  db_.coupons[7].remaining_quantity = 1;
  const std::string v = Violations(Compare(plan_, ledger_, 2, db_));
  EXPECT_THAT(v, HasSubstr("remaining_quantity != stock - issued"));
  EXPECT_THAT(v, HasSubstr("SOLD_OUT while copies remain"));
}

TEST_F(CompareTest, IssuedRowWithoutResultFails) {
  AcceptAllAndDecide();
  db_.holders.push_back({7, "user-9", "run-3", 999});
  db_.coupons[7] = {2, 0, 3, 3};
  const std::string v = Violations(Compare(plan_, ledger_, 2, db_));
  EXPECT_THAT(v, HasSubstr("user_coupons row whose ISSUED result was never seen"));
  EXPECT_THAT(v, HasSubstr("issued != min(stock, users who asked)"));
}

TEST_F(CompareTest, AcceptedWithoutResultFails) {
  ledger_.RecordSent(0, 1);
  ledger_.RecordAnswer(0, 2, 0, v1::ISSUE_OUTCOME_ACCEPTED, 0);
  EXPECT_EQ(ledger_.counters().accepted_pending, 1);
  EXPECT_THAT(Violations(Compare(plan_, ledger_, 2, db_)),
              HasSubstr("ACCEPTED without a result on any stream"));
}

TEST_F(CompareTest, ConflictingSecondResultFails) {
  AcceptAllAndDecide();
  v1::IssueResult r;
  r.set_request_id(plan_.RequestId(3));
  r.set_coupon_id(7);
  r.set_user_id(Plan::UserId(plan_.user_of[3]));
  r.set_outcome(v1::ISSUE_OUTCOME_ISSUED);
  ledger_.RecordResult(r, Via::kLive, 4);
  EXPECT_THAT(Violations(Compare(plan_, ledger_, 2, db_)),
              HasSubstr("two different results for one request"));
}

TEST(PlanTest, RequestIdsRoundTripAndRepeatsStayOnOneCoupon) {
  Plan plan = MakePlan("fs-1-ab", {1, 2, 3}, 10, 25, 2, 7);
  EXPECT_EQ(plan.users, 10u);
  EXPECT_EQ(plan.RequestNumber(plan.RequestId(24)), 24u);
  EXPECT_EQ(plan.RequestNumber("fs-1-ab-25"), std::nullopt);
  EXPECT_EQ(plan.RequestNumber("fs-1-abc-1"), std::nullopt);
  EXPECT_EQ(plan.RequestNumber("other-1"), std::nullopt);
  std::vector<int> sends(plan.users, 0);
  for (size_t n = 0; n < plan.size(); ++n) ++sends[plan.user_of[n]];
  for (int s : sends) EXPECT_GE(s, 2);
}

}  // namespace
}  // namespace coupon::bench
