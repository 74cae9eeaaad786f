// Compare's rules on hand-made runs: no server, no database.

#include "bench/flashsale/verify.h"

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coupon::bench {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

PlanSpec Spec(uint32_t users, uint64_t calls, uint32_t repeat, uint32_t resend) {
  PlanSpec spec;
  spec.users = users;
  spec.calls = calls;
  spec.repeat = repeat;
  spec.resend = resend;
  return spec;
}

// Four users, one request each, one coupon of stock 2: users 0 and 1 win.
class CompareTest : public ::testing::Test {
 protected:
  CompareTest() : plan_(MakePlan("run", {7}, Spec(4, 4, 1, 0))), ledger_(&plan_) {}


  // Every call ACCEPTED; the first two requests (by number) win.
  void AcceptAllAndDecide() {
    for (size_t c = 0; c < plan_.calls(); ++c) {
      const size_t n = plan_.call_request[c];
      ledger_.RecordSent(c, 1);
      ledger_.RecordAnswer(c, 2, 0, v1::ISSUE_OUTCOME_ACCEPTED, 0);
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

TEST_F(CompareTest, UnansweredCallFails) {
  AcceptAllAndDecide();
  Plan plan = plan_;
  plan.call_request.push_back(0);  // a resend of request 0, never answered
  Ledger ledger(&plan);
  for (size_t c = 0; c + 1 < plan.calls(); ++c) {
    ledger.RecordSent(c, 1);
    ledger.RecordAnswer(c, 2, 0, v1::ISSUE_OUTCOME_SOLD_OUT, 0);
  }
  ledger.RecordSent(plan.calls() - 1, 1);
  EXPECT_THAT(Violations(Compare(plan, ledger, 2, db_)),
              HasSubstr("call never answered"));
}

// Request 0's only call queued it, but its gateway died before answering;
// the resend on another gateway was answered with the decided result.
TEST_F(CompareTest, ResentRequestAnsweredWithItsDecidedResultPasses) {
  AcceptAllAndDecide();
  Plan plan = plan_;
  Ledger ledger(&plan);
  for (size_t c = 0; c < plan.calls(); ++c) {
    const size_t n = plan.call_request[c];
    ledger.RecordSent(c, 1);
    if (n == 0) {
      ledger.RecordAnswer(c, 2, 0, v1::ISSUE_OUTCOME_ISSUED, 100);
    } else {
      ledger.RecordAnswer(c, 2, 0, v1::ISSUE_OUTCOME_ACCEPTED, 0);
    }
    v1::IssueResult r;
    r.set_request_id(plan.RequestId(n));
    r.set_coupon_id(7);
    r.set_user_id(Plan::UserId(plan.user_of[n]));
    r.set_outcome(n < 2 ? v1::ISSUE_OUTCOME_ISSUED : v1::ISSUE_OUTCOME_SOLD_OUT);
    r.set_user_coupon_id(n < 2 ? 100 + n : 0);
    ledger.RecordResult(r, Via::kLive, 3);
  }
  EXPECT_THAT(Compare(plan, ledger, 2, db_).violations, IsEmpty());

  // The same resend answered otherwise than it was decided.
  Ledger other(&plan);
  for (size_t c = 0; c < plan.calls(); ++c) {
    const size_t n = plan.call_request[c];
    other.RecordSent(c, 1);
    other.RecordAnswer(c, 2, 0,
                       n == 0 ? v1::ISSUE_OUTCOME_SOLD_OUT : v1::ISSUE_OUTCOME_ACCEPTED, 0);
  }
  EXPECT_THAT(Violations(Compare(plan, other, 2, db_)),
              HasSubstr("a resent request's answer differs from its decided result"));
}

TEST_F(CompareTest, AcceptedWithoutResultFails) {
  ledger_.RecordSent(0, 1);
  ledger_.RecordAnswer(0, 2, 0, v1::ISSUE_OUTCOME_ACCEPTED, 0);
  EXPECT_EQ(ledger_.counters().accepted_pending, 1);
  EXPECT_THAT(Violations(Compare(plan_, ledger_, 2, db_)),
              HasSubstr("ACCEPTED without a result on any stream"));
}

// A failover to a standby that had not received the last commits: the
// users were told ISSUED (and the others ACCEPTED), the rows are gone.
TEST_F(CompareTest, CommitsLostInAFailoverAreCountedApart) {
  AcceptAllAndDecide();
  const std::string lost = db_.holders[0].request_id;
  db_.holders.erase(db_.holders.begin());
  db_.results.erase(lost);
  db_.results.erase(plan_.RequestId(3));
  db_.coupons[7] = {2, 1, 1, 1};
  Verification v = Compare(plan_, ledger_, 2, db_);
  EXPECT_EQ(v.told_issued_missing, 1);
  EXPECT_EQ(v.accepted_lost, 2);
  const std::string text = Violations(v);
  EXPECT_THAT(text, HasSubstr("ISSUED seen without a user_coupons row"));
  EXPECT_THAT(text, HasSubstr("ACCEPTED without an issue_results row"));
}

TEST_F(CompareTest, ConsistentRunCountsNoLoss) {
  AcceptAllAndDecide();
  Verification v = Compare(plan_, ledger_, 2, db_);
  EXPECT_EQ(v.told_issued_missing, 0);
  EXPECT_EQ(v.accepted_lost, 0);
  EXPECT_EQ(v.sold_out_to_holders, 0);
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

// One user, one coupon of stock 1: request 0 sent twice (a client retry with
// its idempotency key), then a new request id.
class ResendTest : public ::testing::Test {
 protected:
  ResendTest() : plan_(MakePlan("run", {7}, Spec(1, 3, 2, 1))), ledger_(&plan_) {
    db_.coupons[7] = {1, 0, 1, 1};
  }

  // Answers call c of request n (sent with `outcome`); returns n.
  size_t Answer(size_t c, int outcome) {
    ledger_.RecordSent(c, 1);
    ledger_.RecordAnswer(c, 2, 0, outcome, 0);
    return plan_.call_request[c];
  }
  void Result(size_t n, int outcome) {
    v1::IssueResult r;
    r.set_request_id(plan_.RequestId(n));
    r.set_coupon_id(7);
    r.set_user_id(Plan::UserId(0));
    r.set_outcome(static_cast<v1::IssueOutcome>(outcome));
    r.set_user_coupon_id(outcome == v1::ISSUE_OUTCOME_ISSUED ? 50 : 0);
    ledger_.RecordResult(r, Via::kLive, 3);
    db_.results[r.request_id()] = {7, r.outcome(), r.user_coupon_id()};
    if (outcome == v1::ISSUE_OUTCOME_ISSUED) {
      db_.holders.push_back({7, r.user_id(), r.request_id(), 50});
    }
  }
  // The calls of the first request id, and the call of the second.
  std::vector<size_t> CallsOf(size_t n) {
    std::vector<size_t> calls;
    for (size_t c = 0; c < plan_.calls(); ++c) {
      if (plan_.call_request[c] == n) calls.push_back(c);
    }
    return calls;
  }

  Plan plan_;
  Ledger ledger_;
  DbSnapshot db_;
};

TEST_F(ResendTest, AcceptedTwiceThenIssuedOnceCountsOnce) {
  ASSERT_EQ(plan_.size(), 2u);
  ASSERT_EQ(CallsOf(0).size(), 2u);
  Answer(CallsOf(0)[0], v1::ISSUE_OUTCOME_ACCEPTED);
  Answer(CallsOf(0)[1], v1::ISSUE_OUTCOME_ACCEPTED);
  Result(0, v1::ISSUE_OUTCOME_ISSUED);
  Answer(CallsOf(1)[0], v1::ISSUE_OUTCOME_ALREADY_ISSUED);
  EXPECT_EQ(ledger_.counters().accepted, 1);
  EXPECT_EQ(ledger_.counters().accepted_pending, 0);
  EXPECT_THAT(Compare(plan_, ledger_, 1, db_).violations, IsEmpty());
}

TEST_F(ResendTest, ResendAnsweredWithTheResultPasses) {
  Answer(CallsOf(0)[0], v1::ISSUE_OUTCOME_ACCEPTED);
  Result(0, v1::ISSUE_OUTCOME_ISSUED);
  Answer(CallsOf(0)[1], v1::ISSUE_OUTCOME_ISSUED);
  Answer(CallsOf(1)[0], v1::ISSUE_OUTCOME_ALREADY_ISSUED);
  EXPECT_THAT(Compare(plan_, ledger_, 1, db_).violations, IsEmpty());
}

TEST_F(ResendTest, ResendAnsweredOtherwiseThanTheResultFails) {
  Answer(CallsOf(0)[0], v1::ISSUE_OUTCOME_ACCEPTED);
  Result(0, v1::ISSUE_OUTCOME_ISSUED);
  Answer(CallsOf(0)[1], v1::ISSUE_OUTCOME_SOLD_OUT);
  Answer(CallsOf(1)[0], v1::ISSUE_OUTCOME_ALREADY_ISSUED);
  EXPECT_THAT(absl::StrJoin(Compare(plan_, ledger_, 1, db_).violations, "\n"),
              HasSubstr("a call's final answer differs from its request's result"));
}

// Issue 10: a gateway that forgot the holders answers her new id SOLD_OUT.
TEST_F(ResendTest, HolderAnsweredSoldOutFails) {
  Answer(CallsOf(0)[0], v1::ISSUE_OUTCOME_ACCEPTED);
  Answer(CallsOf(0)[1], v1::ISSUE_OUTCOME_ACCEPTED);
  Result(0, v1::ISSUE_OUTCOME_ISSUED);
  Answer(CallsOf(1)[0], v1::ISSUE_OUTCOME_SOLD_OUT);
  Verification v = Compare(plan_, ledger_, 1, db_);
  EXPECT_EQ(v.sold_out_to_holders, 1);
  EXPECT_THAT(absl::StrJoin(v.violations, "\n"),
              HasSubstr("SOLD_OUT for a user holding a copy"));
}

TEST_F(ResendTest, TwoDifferentFinalAnswersConflict) {
  Answer(CallsOf(0)[0], v1::ISSUE_OUTCOME_SOLD_OUT);
  Answer(CallsOf(0)[1], v1::ISSUE_OUTCOME_ALREADY_ISSUED);
  EXPECT_EQ(ledger_.counters().conflicting, 1);
}

TEST(PlanTest, PresellUsersCallOnceFirstAndResendsReuseTheFirstId) {
  PlanSpec spec;
  spec.users = 100;
  spec.calls = 500;
  spec.repeat = 3;
  spec.resend = 2;
  spec.presell = 20;
  Plan plan = MakePlan("run", {1, 2}, spec);
  EXPECT_EQ(plan.presell_calls, 20u);
  EXPECT_EQ(plan.calls(), 520u);
  EXPECT_EQ(plan.users, 120u);
  std::vector<int> calls_of_request(plan.size(), 0);
  for (size_t c = 0; c < plan.calls(); ++c) {
    const uint32_t user = plan.user_of[plan.call_request[c]];
    EXPECT_EQ(c < 20, user < 20) << "call " << c << " user " << user;
    ++calls_of_request[plan.call_request[c]];
  }
  std::vector<std::vector<int>> per_user(plan.users);
  for (size_t n = 0; n < plan.size(); ++n) {
    per_user[plan.user_of[n]].push_back(calls_of_request[n]);
  }
  for (uint32_t u = 0; u < plan.users; ++u) {
    if (u < 20) {
      EXPECT_EQ(per_user[u], std::vector<int>({1})) << "user " << u;
    } else {
      EXPECT_EQ(per_user[u], std::vector<int>({3, 1, 1})) << "user " << u;
    }
  }
}

TEST(PlanTest, RequestIdsRoundTripAndRepeatsStayOnOneCoupon) {
  Plan plan = MakePlan("fs-1-ab", {1, 2, 3}, Spec(10, 25, 2, 0));
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
