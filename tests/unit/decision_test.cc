#include "issuer-worker/decision.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coupon::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr UnixMicros kNow = 1'700'000'000'000'000;

IssueRequest Req(std::string id, int64_t coupon, std::string user,
                 UnixMicros at = kNow) {
  return IssueRequest{std::move(id), coupon, std::move(user), at, "gw"};
}

Snapshot WithCoupon(int64_t id, int64_t remaining, int64_t total = 100) {
  Snapshot s;
  CouponInfo c;
  c.coupon_id = id;
  c.total_quantity = total;
  c.remaining_quantity = remaining;
  s.coupons[id] = c;
  return s;
}

std::vector<Outcome> Outcomes(const BatchDecision& d) {
  std::vector<Outcome> out;
  for (const auto& r : d.results) out.push_back(r.outcome);
  return out;
}

TEST(DecideBatch, IssuesUntilStockRunsOutThenSoldOut) {
  BatchDecision d = DecideBatch(
      {Req("r1", 7, "a"), Req("r2", 7, "b"), Req("r3", 7, "c"),
       Req("r4", 7, "d")},
      WithCoupon(7, 2), kNow);
  EXPECT_THAT(Outcomes(d), ElementsAre(Outcome::kIssued, Outcome::kIssued,
                                       Outcome::kSoldOut, Outcome::kSoldOut));
  EXPECT_EQ(d.taken.at(7), 2);
  EXPECT_THAT(d.issuances, SizeIs(2));
  EXPECT_EQ(d.results[0].remaining_quantity, 1);
  EXPECT_EQ(d.results[1].remaining_quantity, 0);
  EXPECT_EQ(d.results[3].remaining_quantity, 0);
  EXPECT_THAT(d.fresh, ElementsAre(0, 1, 2, 3));
}

// One id, two callers at once (two gateways could not know of each other):
// the first in the partition owns the id; the other learns the id is taken
// and nothing else, and its copy is not taken from the stock.
TEST(DecideBatch, ARequestIdReusedInTheBatchIsRefusedForTheSecondCaller) {
  BatchDecision d = DecideBatch({Req("k1", 7, "alice"), Req("k1", 7, "bob"),
                                 Req("k1", 8, "alice"), Req("k1", 7, "alice")},
                                WithCoupon(7, 5), kNow);
  ASSERT_THAT(d.results, SizeIs(3));
  EXPECT_EQ(d.results[0].outcome, Outcome::kIssued);
  EXPECT_EQ(d.results[0].user_id, "alice");
  for (int i : {1, 2}) {
    EXPECT_EQ(d.results[i].outcome, Outcome::kRequestIdReused);
    EXPECT_EQ(d.results[i].request_id, "k1");
    EXPECT_EQ(d.results[i].user_coupon_id, 0);
  }
  EXPECT_EQ(d.results[1].user_id, "bob");
  EXPECT_EQ(d.results[2].coupon_id, 8);
  EXPECT_THAT(d.fresh, ElementsAre(0));  // the refusals are never stored
  EXPECT_EQ(d.reused, 2u);
  EXPECT_EQ(d.taken.at(7), 1);
}

TEST(DecideBatch, ARequestIdStoredForAnotherCallerIsRefused) {
  Snapshot s = WithCoupon(7, 5);
  s.decided["k1"] = IssueResult{"k1", 7, "alice", Outcome::kIssued, 99, 4, 1};
  BatchDecision d = DecideBatch({Req("k1", 7, "bob"), Req("k1", 7, "alice")},
                                std::move(s), kNow);
  ASSERT_THAT(d.results, SizeIs(2));
  EXPECT_EQ(d.results[0].outcome, Outcome::kRequestIdReused);
  EXPECT_EQ(d.results[0].user_id, "bob");
  EXPECT_EQ(d.results[0].user_coupon_id, 0);  // nothing of alice's
  EXPECT_EQ(d.results[1].outcome, Outcome::kIssued);
  EXPECT_EQ(d.results[1].user_coupon_id, 99);
  EXPECT_THAT(d.fresh, IsEmpty());
  EXPECT_TRUE(d.taken.empty());
}

TEST(DecideBatch, SecondRequestOfAUserIsAlreadyIssued) {
  BatchDecision d = DecideBatch({Req("r1", 7, "a"), Req("r2", 7, "a")},
                                WithCoupon(7, 5), kNow);
  EXPECT_THAT(Outcomes(d),
              ElementsAre(Outcome::kIssued, Outcome::kAlreadyIssued));
  EXPECT_EQ(d.taken.at(7), 1);
}

TEST(DecideBatch, HolderFromTheDatabaseIsAlreadyIssued) {
  Snapshot s = WithCoupon(7, 5);
  s.holders[{7, "a"}] = "older";
  BatchDecision d = DecideBatch({Req("r1", 7, "a")}, s, kNow);
  EXPECT_THAT(Outcomes(d), ElementsAre(Outcome::kAlreadyIssued));
  EXPECT_TRUE(d.taken.empty());
}

TEST(DecideBatch, ReplayedRequestKeepsItsStoredResult) {
  Snapshot s = WithCoupon(7, 0);
  IssueResult stored{"r1", 7, "a", Outcome::kIssued, 42, 0, kNow - 5};
  s.decided["r1"] = stored;
  s.holders[{7, "a"}] = "r1";
  BatchDecision d = DecideBatch({Req("r1", 7, "a")}, s, kNow);
  ASSERT_THAT(d.results, SizeIs(1));
  EXPECT_EQ(d.results[0], stored);
  EXPECT_THAT(d.fresh, IsEmpty());  // nothing new to store
  EXPECT_TRUE(d.taken.empty());
}

TEST(DecideBatch, SameRequestTwiceInABatchIsDecidedOnce) {
  BatchDecision d = DecideBatch({Req("r1", 7, "a"), Req("r1", 7, "a")},
                                WithCoupon(7, 5), kNow);
  EXPECT_THAT(Outcomes(d), ElementsAre(Outcome::kIssued));
  EXPECT_EQ(d.taken.at(7), 1);
}

TEST(DecideBatch, UnknownCouponIsRefusedNotDecided) {
  BatchDecision d = DecideBatch({Req("r1", 8, "a"), Req("r2", 7, "b")},
                                WithCoupon(7, 5), kNow);
  ASSERT_THAT(d.refusals, SizeIs(1));
  EXPECT_EQ(d.refusals[0].event_index, 0u);
  EXPECT_THAT(d.refusals[0].reason, ::testing::HasSubstr("coupon_id"));
  EXPECT_THAT(Outcomes(d), ElementsAre(Outcome::kIssued));
}

TEST(DecideBatch, WindowIsJudgedAtRequestTimeNotDecisionTime) {
  Snapshot s = WithCoupon(7, 5);
  s.coupons[7].starts_at = kNow - 100;
  s.coupons[7].ends_at = kNow;
  BatchDecision d = DecideBatch(
      {Req("early", 7, "a", kNow - 200), Req("inside", 7, "b", kNow - 1),
       Req("late", 7, "c", kNow)},
      s, kNow + 1'000'000);
  EXPECT_THAT(Outcomes(d), ElementsAre(Outcome::kNotStarted, Outcome::kIssued,
                                       Outcome::kExpired));
}

TEST(DecideBatch, CouponsAreIndependent) {
  Snapshot s = WithCoupon(7, 1);
  s.coupons[9] = s.coupons[7];
  s.coupons[9].coupon_id = 9;
  BatchDecision d = DecideBatch(
      {Req("r1", 7, "a"), Req("r2", 9, "a"), Req("r3", 7, "b")}, s, kNow);
  EXPECT_THAT(Outcomes(d), ElementsAre(Outcome::kIssued, Outcome::kIssued,
                                       Outcome::kSoldOut));
}

}  // namespace
}  // namespace coupon::worker
