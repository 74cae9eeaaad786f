// The gateway's knowledge (ResultCache) and its watchers (WatchRegistry),
// through the ResultHub that feeds both.

#include "gateway/results/result_hub.h"

#include <malloc.h>

#include "absl/strings/str_cat.h"
#include "common/metrics/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/exposition.h"

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

TEST(ResultCache, KnowsNothingAtFirst) {
  ResultCache cache;
  EXPECT_EQ(cache.LookUp("r", 1, "u").kind, Known::Kind::kNothing);
  EXPECT_EQ(cache.Infer("r", 1, "u", 0).kind, Known::Kind::kNothing);
}

TEST(ResultCache, SameRequestIdGetsItsStoredResult) {
  ResultCache cache;
  cache.Learn(Result("r1", 1, "u", Outcome::kIssued));
  Known known = cache.LookUp("r1", 1, "u");
  ASSERT_EQ(known.kind, Known::Kind::kStored);
  EXPECT_EQ(known.result.outcome, Outcome::kIssued);
  EXPECT_EQ(known.result.user_coupon_id, 100);
}

TEST(ResultCache, ARequestIdBelongsToItsFirstCouponAndUser) {
  ResultCache cache;
  cache.Learn(Result("r1", 1, "u", Outcome::kSoldOut));
  EXPECT_EQ(cache.LookUp("r1", 1, "other").kind, Known::Kind::kReused);
  EXPECT_EQ(cache.LookUp("r1", 2, "u").kind, Known::Kind::kReused);
  cache.Queued("q1", 1, "u");
  EXPECT_EQ(cache.LookUp("q1", 1, "u").kind, Known::Kind::kQueued);
  EXPECT_EQ(cache.LookUp("q1", 1, "other").kind, Known::Kind::kReused);
}

TEST(ResultCache, AQueuedRequestIsSettledByItsResult) {
  ResultCache cache;
  cache.Queued("q1", 1, "u");
  cache.Learn(Result("q1", 1, "u", Outcome::kSoldOut));
  Known known = cache.LookUp("q1", 1, "u");
  ASSERT_EQ(known.kind, Known::Kind::kStored);
  EXPECT_EQ(known.result.outcome, Outcome::kSoldOut);
  // Another caller's request under a queued id, refused by the worker: not
  // kept under the id, but it settles nothing of the owner's.
  cache.Queued("q2", 1, "u");
  cache.Learn(Result("q2", 1, "v", Outcome::kRequestIdReused));
  EXPECT_EQ(cache.LookUp("q2", 1, "u").kind, Known::Kind::kQueued);
  EXPECT_FALSE(cache.Find("q2").has_value());
}

TEST(ResultCache, AQueuedRequestKnowsItsPlaceOnceItsPartitionProgresses) {
  ResultCache cache;
  cache.Queued("q1", 1, "u", /*partition=*/3, /*offset=*/20);
  cache.Queued("q2", 1, "v");  // where it is is not known
  // No progress of partition 3 seen yet: queued, place unknown.
  std::optional<IssueResult> q = cache.FindQueued("q1");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->outcome, Outcome::kQueued);
  EXPECT_EQ(q->user_id, "u");
  EXPECT_FALSE(q->position.has_value());

  cache.DecidedThrough(3, 14);
  // What a new queued request is told, under the same lock.
  EXPECT_EQ(cache.Queued("q3", 1, "w", 3, 21),
            (QueuePosition{6, QueuePosition::Scope::kPartition}));
  EXPECT_EQ(cache.FindQueued("q1")->position,
            (QueuePosition{5, QueuePosition::Scope::kPartition}));
  EXPECT_EQ(cache.LookUp("q1", 1, "u").result.position->requests_ahead, 5);
  cache.DecidedThrough(3, 12);  // an older header (a replay): no step back
  EXPECT_EQ(cache.FindQueued("q1")->position->requests_ahead, 5);
  cache.DecidedThrough(4, 100);  // another partition
  EXPECT_EQ(cache.FindQueued("q1")->position->requests_ahead, 5);
  cache.DecidedThrough(3, 19);
  EXPECT_EQ(cache.FindQueued("q1")->position->requests_ahead, 0);
  cache.DecidedThrough(3, 25);  // decided; its result is on its way
  EXPECT_EQ(cache.FindQueued("q1")->position->requests_ahead, 0);
  EXPECT_FALSE(cache.FindQueued("q2")->position.has_value());

  cache.Learn(Result("q1", 1, "u", Outcome::kIssued));
  EXPECT_FALSE(cache.FindQueued("q1").has_value());
  EXPECT_FALSE(cache.FindQueued("unknown").has_value());
}

// coupon_gateway_accept_to_result_seconds: one observation per request this
// gateway queued, when its result comes; none for replays, for results of
// requests queued elsewhere, or for another caller's result under the id.
TEST(ResultCache, TimesEachQueuedRequestUntilItsResult) {
  auto observed = [] {
    return ::coupon::testing::FindSample(
        ::coupon::testing::ParseExposition(metrics::Registry::Default().Render()),
        "coupon_gateway_accept_to_result_seconds_count");
  };
  ResultCache cache;
  const std::optional<double> before = observed();
  ASSERT_TRUE(before.has_value()) << "exported from the start";
  cache.Queued("q1", 1, "u");
  cache.Learn(Result("q1", 1, "u", Outcome::kIssued));
  EXPECT_EQ(observed(), *before + 1);
  cache.Learn(Result("q1", 1, "u", Outcome::kIssued));   // a replay
  cache.Learn(Result("r2", 1, "v", Outcome::kSoldOut));  // not queued here
  cache.Queued("q3", 1, "w");
  cache.Learn(Result("q3", 1, "x", Outcome::kRequestIdReused));
  EXPECT_EQ(observed(), *before + 1);
  cache.Learn(Result("q3", 1, "w", Outcome::kSoldOut));
  EXPECT_EQ(observed(), *before + 2);
}

TEST(ResultCache, AnotherRequestOfAHolderIsInferredAlreadyIssued) {
  ResultCache cache;
  cache.Learn(Result("r1", 1, "u", Outcome::kIssued));
  Known known = cache.Infer("r2", 1, "u", 42);
  ASSERT_EQ(known.kind, Known::Kind::kInferred);
  EXPECT_EQ(known.result.outcome, Outcome::kAlreadyIssued);
  EXPECT_EQ(known.result.request_id, "r2");
  EXPECT_EQ(known.result.decided_at, 42);
  EXPECT_EQ(cache.Infer("r3", 2, "u", 42).kind, Known::Kind::kNothing);
}

TEST(ResultCache, LastCopySoldOutOrNoStockMarksTheCouponSoldOut) {
  ResultCache cache;
  cache.Learn(Result("r1", 1, "a", Outcome::kIssued, /*remaining=*/0));
  cache.Learn(Result("r2", 2, "a", Outcome::kSoldOut, 0));
  cache.SoldOut(3);
  for (int64_t coupon : {1, 2, 3}) {
    Known known = cache.Infer("x", coupon, "b", 0);
    ASSERT_EQ(known.kind, Known::Kind::kInferred) << coupon;
    EXPECT_EQ(known.result.outcome, Outcome::kSoldOut);
    EXPECT_EQ(known.result.remaining_quantity, 0);
  }
  // The holder of the last copy still hears its own request's result.
  EXPECT_EQ(cache.LookUp("r1", 1, "a").kind, Known::Kind::kStored);
  EXPECT_EQ(cache.Infer("new", 4, "b", 0).kind, Known::Kind::kNothing);
}

TEST(ResultCache, AReplayedResultIsNoNewsAndTheFirstStands) {
  ResultCache cache;
  EXPECT_TRUE(cache.Learn(Result("r1", 1, "u", Outcome::kIssued)));
  EXPECT_FALSE(cache.Learn(Result("r1", 1, "u", Outcome::kIssued)));
  EXPECT_FALSE(cache.Learn(Result("r1", 1, "v", Outcome::kSoldOut)));
  EXPECT_EQ(cache.Find("r1")->user_id, "u");
}

TEST(ResultCache, TheIssuersFirstWordOnAStoredAnswerIsNews) {
  using Source = ResultCache::Source;
  ResultCache cache;
  EXPECT_TRUE(cache.Learn(Result("e1", 1, "u", Outcome::kSoldOut), Source::kStore));
  EXPECT_FALSE(cache.Learn(Result("e1", 1, "u", Outcome::kSoldOut), Source::kStore));
  EXPECT_TRUE(cache.Learn(Result("e1", 1, "u", Outcome::kSoldOut), Source::kIssuer));
  EXPECT_FALSE(cache.Learn(Result("e1", 1, "u", Outcome::kSoldOut), Source::kIssuer));
  EXPECT_FALSE(cache.Learn(Result("e1", 1, "u", Outcome::kSoldOut), Source::kStore));
}

TEST(ResultCache, AForgottenResultStillAnswersTheHolder) {
  CacheLimits limits;
  limits.result_bytes = 1;  // keeps nothing
  ResultCache cache(limits);
  cache.Learn(Result("r1", 1, "a", Outcome::kIssued));
  EXPECT_FALSE(cache.Find("r1").has_value());
  Known known = cache.LookUp("r1", 1, "a");
  ASSERT_EQ(known.kind, Known::Kind::kStored);
  EXPECT_EQ(known.result.outcome, Outcome::kIssued);
  EXPECT_EQ(known.result.user_coupon_id, 100);
}

UserCouponRow Copy(int64_t coupon, std::string user, std::string request_id,
                   int64_t user_coupon_id) {
  UserCouponRow row;
  row.user_coupon_id = user_coupon_id;
  row.coupon_id = coupon;
  row.user_id = std::move(user);
  row.request_id = std::move(request_id);
  return row;
}

// A sold-out coupon's every copy, learned at once: the cache then knows who
// holds none, and resends of the copies' own requests are answered ISSUED.
TEST(ResultCache, KnowsWhoHoldsNoCopyOnceItHoldsEveryCopy) {
  ResultCache cache;
  EXPECT_FALSE(cache.HoldsNoCopy(7, "carol"));  // nothing known yet
  cache.SoldOut(7);
  EXPECT_FALSE(cache.HoldsNoCopy(7, "carol"));  // sold out, holders unknown

  cache.LearnAllHolders(7, {Copy(7, "alice", "a-1", 11), Copy(7, "bob", "b-1", 12)});
  EXPECT_TRUE(cache.HoldsNoCopy(7, "carol"));
  EXPECT_FALSE(cache.HoldsNoCopy(7, "alice"));
  EXPECT_FALSE(cache.HoldsNoCopy(8, "carol"));  // another coupon
  Known resent = cache.LookUp("a-1", 7, "alice");
  EXPECT_EQ(resent.kind, Known::Kind::kStored);
  EXPECT_EQ(resent.result.outcome, Outcome::kIssued);
  EXPECT_EQ(resent.result.user_coupon_id, 11);
  EXPECT_EQ(cache.Infer("b-2", 7, "bob", 0).result.outcome, Outcome::kAlreadyIssued);
  EXPECT_EQ(cache.Infer("c-1", 7, "carol", 0).result.outcome, Outcome::kSoldOut);
}

// Forgetting one holder of the coupon (the budget) ends the certainty.
TEST(ResultCache, ForgettingOneHolderEndsTheCertainty) {
  CacheLimits limits;
  limits.holder_bytes = 64 << 10;
  ResultCache cache(limits);
  cache.LearnAllHolders(7, {Copy(7, "alice", "a-1", 11)});
  ASSERT_TRUE(cache.HoldsNoCopy(7, "carol"));
  // Other coupons' holders push alice out.
  for (int i = 0; cache.LookUp("a-1", 7, "alice").kind == Known::Kind::kStored; ++i) {
    ASSERT_LT(i, 100000) << "alice was never forgotten";
    cache.Learn(Result(absl::StrCat("x-", i), 8, absl::StrCat("user-", i), Outcome::kIssued));
  }
  EXPECT_FALSE(cache.HoldsNoCopy(7, "carol"));
  EXPECT_FALSE(cache.HoldsNoCopy(7, "alice"));
}

// A list larger than the budget is never taken as whole.
TEST(ResultCache, AListLargerThanTheBudgetIsNotWhole) {
  CacheLimits limits;
  limits.holder_bytes = 16 << 10;
  ResultCache cache(limits);
  std::vector<UserCouponRow> copies;
  for (int i = 0; i < 1000; ++i) {
    copies.push_back(Copy(7, absl::StrCat("user-", i), absl::StrCat("r-", i), i + 1));
  }
  cache.LearnAllHolders(7, copies);
  EXPECT_FALSE(cache.HoldsNoCopy(7, "carol"));
}

// The budgets are bytes, and they hold: fill both far past them and measure
// what the heap really grew by.
TEST(ResultCache, FilledPastItsBudgetsItStaysWithinThem) {
  CacheLimits limits;
  limits.result_bytes = 8 << 20;
  limits.holder_bytes = 4 << 20;
  const size_t before = mallinfo2().uordblks;
  {
    ResultCache cache(limits);
    for (int i = 0; i < 400'000; ++i) {
      // Ids and users of realistic length (UUID-like, 36 characters).
      const std::string id = absl::StrCat("3f2c9b1e-8d4a-4c7e-9a61-", 100000000000 + i);
      const std::string user = absl::StrCat("user-7b3e1c52-44aa-4f0b-", 10000000000 + i);
      cache.Learn(Result(id, i % 100, user, i % 3 ? Outcome::kSoldOut : Outcome::kIssued));
      cache.Queued(absl::StrCat(id, "-q"), i % 100, user);
    }
    EXPECT_LE(cache.result_bytes(), limits.result_bytes);
    EXPECT_LE(cache.holder_bytes(), limits.holder_bytes);
    // The newest are kept.
    EXPECT_TRUE(cache.Find("3f2c9b1e-8d4a-4c7e-9a61-100000399999").has_value());
    const size_t grown = mallinfo2().uordblks - before;
    // The accounting covers what the heap holds, to within a margin for
    // the maps' growth steps.
    EXPECT_LE(grown, (limits.result_bytes + limits.holder_bytes) * 5 / 4)
        << "heap grew " << grown << " bytes for budgets of "
        << limits.result_bytes + limits.holder_bytes;
    EXPECT_GE(grown, (limits.result_bytes + limits.holder_bytes) / 2)
        << "the budgets are far from used: the accounting overstates";
  }
}

TEST(ResultHub, WatchersGetTheirResultsAndNothingAfterClose) {
  ResultHub hub;
  Recorder by_id, by_user, by_coupon;
  for (Recorder* r : {&by_id, &by_user, &by_coupon}) {
    ASSERT_TRUE(hub.watches().Open(r).ok());
  }
  hub.watches().WatchRequests({"r1"}, &by_id);
  hub.watches().WatchUser("u", &by_user);
  hub.watches().WatchCoupon(2, &by_coupon);

  hub.Publish(Result("r1", 1, "u", Outcome::kIssued));
  hub.Publish(Result("r2", 2, "v", Outcome::kIssued));
  EXPECT_THAT(by_id.ids, ElementsAre("r1"));
  EXPECT_THAT(by_user.ids, ElementsAre("r1"));
  EXPECT_THAT(by_coupon.ids, ElementsAre("r2"));

  for (Recorder* r : {&by_id, &by_user, &by_coupon}) hub.watches().Close(r);
  EXPECT_EQ(hub.watches().open_watches(), 0u);
  hub.Publish(Result("r1", 1, "u", Outcome::kIssued));
  hub.Publish(Result("r3", 2, "u", Outcome::kIssued));
  EXPECT_THAT(by_id.ids, ElementsAre("r1"));
  EXPECT_THAT(by_coupon.ids, ElementsAre("r2"));
}

TEST(ResultHub, LiveWatchesGetAReplayOnceAndStoredAnswersNever) {
  ResultHub hub;
  Recorder by_id, by_user;
  ASSERT_TRUE(hub.watches().Open(&by_id).ok());
  ASSERT_TRUE(hub.watches().Open(&by_user).ok());
  hub.watches().WatchRequests({"r1", "e1"}, &by_id);
  hub.watches().WatchUser("u", &by_user);
  hub.Publish(Result("r1", 1, "u", Outcome::kIssued));
  hub.Publish(Result("r1", 1, "u", Outcome::kIssued));  // a redelivered event
  // An answer a gateway stored itself: read by id, not streamed live.
  hub.Remember(Result("e1", 1, "u", Outcome::kSoldOut));
  EXPECT_THAT(by_user.ids, ElementsAre("r1"));
  EXPECT_THAT(by_id.ids, ElementsAre("r1", "r1", "e1"));
  // The issuer sending that answer out (its request was queued too): live
  // watches hear it once.
  hub.Publish(Result("e1", 1, "u", Outcome::kSoldOut));
  hub.Publish(Result("e1", 1, "u", Outcome::kSoldOut));
  EXPECT_THAT(by_user.ids, ElementsAre("r1", "e1"));
  for (Recorder* r : {&by_id, &by_user}) hub.watches().Close(r);
}

TEST(WatchRegistry, WatchesBeyondTheLimitAreRefused) {
  WatchRegistry registry(/*max_watches=*/2);
  Recorder a, b, c;
  ASSERT_TRUE(registry.Open(&a).ok());
  ASSERT_TRUE(registry.Open(&b).ok());
  absl::Status refused = registry.Open(&c);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  registry.Close(&a);
  EXPECT_TRUE(registry.Open(&c).ok());
  registry.Close(&b);
  registry.Close(&c);
}

TEST(WatchRegistry, WaitingIdsAreHandedOutInTurnAndBounded) {
  WatchRegistry registry(10);
  Recorder a;
  ASSERT_TRUE(registry.Open(&a).ok());
  registry.WatchRequests({"r1", "r2", "r3"}, &a);
  const absl::Time later = absl::Now() + absl::Hours(1);
  EXPECT_THAT(registry.TakeWaiting(absl::Now() - absl::Hours(1), 10), IsEmpty());
  EXPECT_THAT(registry.TakeWaiting(later, 2), ElementsAre("r1", "r2"));
  EXPECT_THAT(registry.TakeWaiting(later, 2), ElementsAre("r3", "r1"));
  registry.Close(&a);
  EXPECT_THAT(registry.TakeWaiting(later, 10), IsEmpty());
}

TEST(WatchRegistry, ShutdownReachesEveryOpenWatcherOnce) {
  WatchRegistry registry(10);
  Recorder a, b, gone;
  for (Recorder* r : {&a, &b, &gone}) ASSERT_TRUE(registry.Open(r).ok());
  registry.WatchRequests({"r1", "r2"}, &a);
  registry.WatchCoupon(7, &b);
  registry.WatchUser("u", &gone);
  registry.Close(&gone);
  registry.ShutdownWatchers();
  EXPECT_EQ(a.shutdowns, 1);
  EXPECT_EQ(b.shutdowns, 1);
  EXPECT_EQ(gone.shutdowns, 0);
  registry.Close(&a);
  registry.Close(&b);
}

// A watch that opens while the gateway shuts down (between the shutdown
// notice and gRPC refusing new calls) ends as well, instead of holding the
// shutdown for its whole grace.
TEST(WatchRegistry, WatchersOpeningAfterShutdownAreToldAtOnce) {
  WatchRegistry registry(10);
  registry.ShutdownWatchers();
  Recorder late;
  ASSERT_TRUE(registry.Open(&late).ok());
  EXPECT_EQ(late.shutdowns, 1);
  registry.Close(&late);
}

TEST(WatchRegistry, ClosingAnUnknownWatcherLeavesTheOthersAlone) {
  WatchRegistry registry(1);
  Recorder open, stranger;
  ASSERT_TRUE(registry.Open(&open).ok());
  registry.WatchUser("u", &open);
  registry.Close(&stranger);
  EXPECT_EQ(registry.open_watches(), 1u);
  registry.Deliver(Result("r1", 1, "u", Outcome::kIssued), /*live=*/true);
  EXPECT_THAT(open.ids, ElementsAre("r1"));
  EXPECT_THAT(stranger.ids, IsEmpty());
  registry.Close(&open);
}

}  // namespace
}  // namespace coupon::gateway
