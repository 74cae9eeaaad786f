// The flash sale of issue 2, against the real broker and database: one coupon
// of stock 100, 2,000 concurrent IssueCoupon calls from 1,000 users.

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"

namespace coupon::testing {
namespace {

constexpr int64_t kStock = 100;
constexpr int kUsers = 1000;
constexpr int kCallsPerUser = 2;
constexpr size_t kIdsPerWatch = 500;

class FlashSaleTest : public ::testing::TestWithParam<int> {};

TEST_P(FlashSaleTest, IssuesExactlyTheStockOncePerUserWithOneResultEach) {
  IssuanceStack stack;
  stack.AddGateway();
  for (int i = 0; i < GetParam(); ++i) stack.AddWorker();
  stack.WaitForAssignment();
  const v1::Coupon coupon = stack.CreateCoupon(kStock);
  const std::string run = absl::StrCat("fs", coupon.coupon_id());

  std::vector<IssueCall> calls;
  for (int round = 0; round < kCallsPerUser; ++round) {
    for (int u = 0; u < kUsers; ++u) {
      calls.push_back({absl::StrCat(run, "-user-", u),
                       absl::StrCat(run, "-r", round, "-u", u), {}, {}});
    }
  }
  IssueConcurrently(stack.stub(), coupon.coupon_id(), calls);

  // Every call is answered: ACCEPTED (result to come on a stream) or a final
  // outcome the gateway already knew.
  std::map<std::string, v1::IssueOutcome> final_outcome;  // request -> outcome
  std::map<std::string, std::string> user_of;
  std::vector<std::string> accepted;
  for (const IssueCall& c : calls) {
    ASSERT_TRUE(c.status.ok()) << c.request_id << ": " << c.status.error_message();
    ASSERT_EQ(c.response.request_id(), c.request_id);
    user_of[c.request_id] = c.user_id;
    if (c.response.outcome() == v1::ISSUE_OUTCOME_ACCEPTED) {
      accepted.push_back(c.request_id);
    } else {
      EXPECT_THAT(c.response.outcome(),
                  ::testing::AnyOf(v1::ISSUE_OUTCOME_SOLD_OUT,
                                   v1::ISSUE_OUTCOME_ALREADY_ISSUED));
      final_outcome[c.request_id] = c.response.outcome();
    }
  }
  ASSERT_FALSE(accepted.empty());

  // Every accepted request gets exactly one result on its stream, and each
  // stream ends OK once all its ids are answered.
  std::vector<std::thread> watchers;
  std::vector<WatchOutcome> watched((accepted.size() + kIdsPerWatch - 1) /
                                    kIdsPerWatch);
  for (size_t w = 0; w < watched.size(); ++w) {
    std::vector<std::string> ids(
        accepted.begin() + w * kIdsPerWatch,
        accepted.begin() + std::min(accepted.size(), (w + 1) * kIdsPerWatch));
    watchers.emplace_back([&stack, &watched, w, ids] {
      watched[w] = WatchToEnd(stack.stub(), ids);
    });
  }
  for (auto& t : watchers) t.join();
  for (const WatchOutcome& w : watched) {
    ASSERT_TRUE(w.status.ok()) << w.status.error_message();
    for (const v1::IssueResult& r : w.results) {
      EXPECT_TRUE(final_outcome.emplace(r.request_id(), r.outcome()).second)
          << "two results for " << r.request_id();
      EXPECT_EQ(r.user_id(), user_of[r.request_id()]);
      EXPECT_EQ(r.coupon_id(), coupon.coupon_id());
    }
  }
  EXPECT_EQ(final_outcome.size(), calls.size()) << "a request has no result";

  std::set<std::string> winners;
  int issued = 0;
  for (const auto& [request_id, outcome] : final_outcome) {
    if (outcome != v1::ISSUE_OUTCOME_ISSUED) continue;
    ++issued;
    EXPECT_TRUE(winners.insert(user_of[request_id]).second)
        << user_of[request_id] << " won twice";
  }
  EXPECT_EQ(issued, kStock);

  // The database agrees.
  const std::string id = absl::StrCat(coupon.coupon_id());
  EXPECT_EQ(QueryInt(stack.db(),
                     "SELECT remaining_quantity FROM coupons WHERE coupon_id = $1",
                     {id}),
            0);
  EXPECT_EQ(QueryInt(stack.db(),
                     "SELECT count(*) FROM user_coupons WHERE coupon_id = $1", {id}),
            kStock);
  EXPECT_EQ(QueryInt(stack.db(),
                     "SELECT count(DISTINCT user_id) FROM user_coupons "
                     "WHERE coupon_id = $1",
                     {id}),
            kStock);
  EXPECT_EQ(QueryInt(stack.db(),
                     "SELECT count(*) FROM issue_results WHERE coupon_id = $1 "
                     "AND outcome = 'ISSUED'",
                     {id}),
            kStock);
  EXPECT_EQ(QueryInt(stack.db(),
                     "SELECT count(*) FROM issue_results WHERE coupon_id = $1",
                     {id}),
            static_cast<int64_t>(accepted.size()));

  // And GetCoupon reports it.
  grpc::ClientContext ctx;
  v1::GetCouponRequest get;
  get.set_coupon_id(coupon.coupon_id());
  v1::Coupon after;
  ASSERT_TRUE(stack.stub().GetCoupon(&ctx, get, &after).ok());
  EXPECT_EQ(after.issued_quantity(), kStock);
  EXPECT_EQ(after.remaining_quantity(), 0);
}

INSTANTIATE_TEST_SUITE_P(Workers, FlashSaleTest, ::testing::Values(1, 2),
                         [](const auto& info) {
                           return absl::StrCat(info.param, "Worker",
                                               info.param > 1 ? "s" : "");
                         });

}  // namespace
}  // namespace coupon::testing
