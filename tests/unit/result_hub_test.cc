#include "gateway/result_hub.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coupon::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

IssueResult Result(std::string id, int64_t coupon, std::string user,
                   Outcome outcome, int64_t remaining = 5) {
  IssueResult r;
  r.request_id = std::move(id);
  r.coupon_id = coupon;
  r.user_id = std::move(user);
  r.outcome = outcome;
  r.user_coupon_id = outcome == Outcome::kIssued ? 100 : 0;
  r.remaining_quantity = remaining;
  return r;
}

class Recorder : public ResultWatcher {
 public:
  void OnResult(const IssueResult& r) override { ids.push_back(r.request_id); }
  void OnShutdown() override { ++shutdowns; }
  std::vector<std::string> ids;
  int shutdowns = 0;
};

TEST(ResultHub, PrecheckKnowsNothingAtFirst) {
  ResultHub hub;
  bool conflict;
  EXPECT_FALSE(hub.Precheck(1, "u", "r", &conflict).has_value());
  EXPECT_FALSE(conflict);
}

TEST(ResultHub, SameRequestIdGetsItsEarlierResult) {
  ResultHub hub;
  hub.Publish(Result("r1", 1, "u", Outcome::kIssued));
  bool conflict;
  auto known = hub.Precheck(1, "u", "r1", &conflict);
  ASSERT_TRUE(known.has_value());
  EXPECT_EQ(known->outcome, Outcome::kIssued);
  EXPECT_EQ(known->user_coupon_id, 100);
}

TEST(ResultHub, ReusedRequestIdForAnotherUserIsAConflict) {
  ResultHub hub;
  hub.Publish(Result("r1", 1, "u", Outcome::kSoldOut));
  bool conflict;
  EXPECT_FALSE(hub.Precheck(1, "other", "r1", &conflict).has_value());
  EXPECT_TRUE(conflict);
}

TEST(ResultHub, AnotherRequestOfAHolderIsAlreadyIssued) {
  ResultHub hub;
  hub.Publish(Result("r1", 1, "u", Outcome::kIssued));
  bool conflict;
  auto known = hub.Precheck(1, "u", "r2", &conflict);
  ASSERT_TRUE(known.has_value());
  EXPECT_EQ(known->outcome, Outcome::kAlreadyIssued);
  EXPECT_FALSE(hub.Precheck(2, "u", "r3", &conflict).has_value());
}

TEST(ResultHub, LastCopyOrSoldOutMarksTheCouponSoldOut) {
  ResultHub hub;
  hub.Publish(Result("r1", 1, "a", Outcome::kIssued, /*remaining=*/0));
  hub.Publish(Result("r2", 2, "a", Outcome::kSoldOut, 0));
  bool conflict;
  EXPECT_EQ(hub.Precheck(1, "b", "x", &conflict)->outcome, Outcome::kSoldOut);
  EXPECT_EQ(hub.Precheck(2, "b", "y", &conflict)->outcome, Outcome::kSoldOut);
  // The holder of the last copy still hears ISSUED for its own request.
  EXPECT_EQ(hub.Precheck(1, "a", "r1", &conflict)->outcome, Outcome::kIssued);
}

TEST(ResultHub, ForgottenResultStillAnswersTheHolderFromIssuedPairs) {
  ResultHub hub(HubLimits{/*max_results=*/1, /*max_issued_pairs=*/10});
  hub.Publish(Result("r1", 1, "a", Outcome::kIssued));
  hub.Publish(Result("r2", 1, "b", Outcome::kIssued));  // evicts r1's result
  EXPECT_FALSE(hub.FindResult("r1").has_value());
  bool conflict;
  auto known = hub.Precheck(1, "a", "r1", &conflict);
  ASSERT_TRUE(known.has_value());
  EXPECT_EQ(known->outcome, Outcome::kIssued);
}

TEST(ResultHub, WatchersGetTheirResultsAndNothingAfterUnwatch) {
  ResultHub hub;
  Recorder by_id, by_user, by_coupon;
  hub.Publish(Result("early", 1, "u", Outcome::kSoldOut));
  auto known = hub.WatchRequests({"early", "r1"}, &by_id);
  ASSERT_EQ(known.size(), 1u);
  EXPECT_EQ(known[0].request_id, "early");
  hub.WatchUser("u", &by_user);
  hub.WatchCoupon(2, &by_coupon);

  hub.Publish(Result("r1", 1, "u", Outcome::kIssued));
  hub.Publish(Result("r2", 2, "v", Outcome::kIssued));
  EXPECT_THAT(by_id.ids, ElementsAre("r1"));
  EXPECT_THAT(by_user.ids, ElementsAre("r1"));
  EXPECT_THAT(by_coupon.ids, ElementsAre("r2"));

  hub.Unwatch(&by_id);
  hub.Unwatch(&by_user);
  hub.Unwatch(&by_coupon);
  EXPECT_EQ(hub.watcher_count(), 0u);
  hub.Publish(Result("r1", 1, "u", Outcome::kIssued));
  hub.Publish(Result("r3", 2, "u", Outcome::kIssued));
  EXPECT_THAT(by_id.ids, ElementsAre("r1"));
  EXPECT_THAT(by_coupon.ids, ElementsAre("r2"));
}

TEST(ResultHub, ShutdownReachesEveryRegisteredWatcherOnce) {
  ResultHub hub;
  Recorder a, b, gone;
  hub.WatchRequests({"r1", "r2"}, &a);
  hub.WatchCoupon(7, &b);
  hub.WatchUser("u", &gone);
  hub.Unwatch(&gone);
  hub.ShutdownWatchers();
  EXPECT_EQ(a.shutdowns, 1);
  EXPECT_EQ(b.shutdowns, 1);
  EXPECT_EQ(gone.shutdowns, 0);
}

// A watch that registers while the gateway shuts down (between the
// shutdown notice and gRPC refusing new calls) ends as well, instead of
// holding the shutdown for its whole grace.
TEST(ResultHub, WatchersRegisteringAfterShutdownAreToldAtOnce) {
  ResultHub hub;
  hub.Publish(Result("r1", 7, "u", Outcome::kIssued));
  hub.ShutdownWatchers();
  Recorder by_id, by_user, by_coupon;
  EXPECT_EQ(hub.WatchRequests({"r1"}, &by_id).size(), 1u);
  hub.WatchUser("u", &by_user);
  hub.WatchCoupon(7, &by_coupon);
  EXPECT_EQ(by_id.shutdowns, 1);
  EXPECT_EQ(by_user.shutdowns, 1);
  EXPECT_EQ(by_coupon.shutdowns, 1);
}

// Unwatch of a watcher that never registered, or has left already, removes
// nothing else: every registered watcher keeps all its registrations.
TEST(ResultHub, UnwatchOfAnUnknownWatcherLeavesTheOthersRegistered) {
  ResultHub hub;
  Recorder by_id, by_user, by_coupon, gone, stranger;
  hub.WatchRequests({"r1"}, &by_id);
  hub.WatchUser("u", &by_user);
  hub.WatchCoupon(7, &by_coupon);
  hub.WatchCoupon(7, &gone);
  hub.Unwatch(&gone);
  ASSERT_EQ(hub.watcher_count(), 3u);

  hub.Unwatch(&stranger);
  hub.Unwatch(&gone);
  EXPECT_EQ(hub.watcher_count(), 3u);
  hub.Publish(Result("r1", 7, "u", Outcome::kIssued));
  EXPECT_THAT(by_id.ids, ElementsAre("r1"));
  EXPECT_THAT(by_user.ids, ElementsAre("r1"));
  EXPECT_THAT(by_coupon.ids, ElementsAre("r1"));
  EXPECT_THAT(gone.ids, IsEmpty());
  EXPECT_THAT(stranger.ids, IsEmpty());
}

}  // namespace
}  // namespace coupon::gateway
