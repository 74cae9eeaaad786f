// The flash sale of issues 2 and 3, against the real servers, for both
// issuers behind the same API: one coupon of stock 100, 2,000 concurrent
// IssueCoupon calls from 1,000 users; and 50 concurrent calls for one copy.

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "redis-issuer/outbox/outbox_scheduler.h"
#include "tests/integration/issuance_stack.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

struct Setup {
  std::string issuer;  // "kafka" or "redis"
  int workers;         // issuer-workers (kafka)
};

void PrintTo(const Setup& s, std::ostream* os) {
  *os << s.issuer << " issuer, " << s.workers << " workers";
}

class FlashSaleTest : public ::testing::TestWithParam<Setup> {
 protected:
  void SetUp() override {
    stack_.AddGateway(absl::Minutes(1), GetParam().issuer);
    for (int i = 0; i < GetParam().workers; ++i) stack_.AddWorker();
    if (GetParam().workers > 0) stack_.WaitForAssignment();
  }

  bool redis() const { return GetParam().issuer == "redis"; }

  // Sends the calls at once and collects every request's final outcome: from
  // the answer, or from a watch stream for those answered ACCEPTED. Checks
  // that each request has exactly one.
  std::map<std::string, v1::IssueOutcome> Run(int64_t coupon,
                                              std::vector<IssueCall>& calls,
                                              size_t* accepted_count) {
    IssueConcurrently(stack_.stub(), coupon, calls);
    std::map<std::string, v1::IssueOutcome> final_outcome;
    std::vector<std::string> accepted;
    for (const IssueCall& c : calls) {
      EXPECT_TRUE(c.status.ok()) << c.request_id << ": " << c.status.error_message();
      EXPECT_EQ(c.response.request_id(), c.request_id);
      if (c.response.outcome() == v1::ISSUE_OUTCOME_ACCEPTED) {
        accepted.push_back(c.request_id);
      } else {
        EXPECT_THAT(c.response.outcome(),
                    ::testing::AnyOf(v1::ISSUE_OUTCOME_ISSUED, v1::ISSUE_OUTCOME_SOLD_OUT,
                                     v1::ISSUE_OUTCOME_ALREADY_ISSUED));
        final_outcome[c.request_id] = c.response.outcome();
      }
    }
    if (redis()) {
      EXPECT_TRUE(accepted.empty()) << "redis decides on the spot";
    }
    *accepted_count = accepted.size();

    // Every accepted request gets exactly one result on its stream, and each
    // stream ends OK once all its ids are answered.
    constexpr size_t kIdsPerWatch = 500;
    std::vector<std::thread> watchers;
    std::vector<WatchOutcome> watched((accepted.size() + kIdsPerWatch - 1) / kIdsPerWatch);
    for (size_t w = 0; w < watched.size(); ++w) {
      std::vector<std::string> ids(
          accepted.begin() + w * kIdsPerWatch,
          accepted.begin() + std::min(accepted.size(), (w + 1) * kIdsPerWatch));
      watchers.emplace_back([this, &watched, w, ids] {
        watched[w] = WatchToEnd(stack_.stub(), ids);
      });
    }
    for (auto& t : watchers) t.join();
    for (const WatchOutcome& w : watched) {
      EXPECT_TRUE(w.status.ok()) << w.status.error_message();
      for (const v1::IssueResult& r : w.results) {
        EXPECT_TRUE(final_outcome.emplace(r.request_id(), r.outcome()).second)
            << "two results for " << r.request_id();
        EXPECT_EQ(r.coupon_id(), coupon);
      }
    }
    EXPECT_EQ(final_outcome.size(), calls.size()) << "a request has no result";
    return final_outcome;
  }

  // Redis mode: the outbox scheduler brings PostgreSQL's stock in line.
  void SyncStock(int64_t coupon) {
    if (!redis()) return;
    outbox::OutboxConfig config;
    config.pg_dsn = PgDsn();
    config.redis_addr = RedisAddr();
    config.only_coupon_ids = {coupon};  // leave other tests' rows alone
    auto scheduler = outbox::OutboxScheduler::Create(config);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    auto pass = (*scheduler)->RunOnce();
    ASSERT_TRUE(pass.ok()) << pass.status();
  }

  void ExpectDatabaseAgrees(int64_t coupon, int64_t issued, int64_t remaining,
                            int64_t stored_results) {
    const std::string id = absl::StrCat(coupon);
    EXPECT_EQ(QueryInt(stack_.db(),
                       "SELECT remaining_quantity FROM coupons WHERE coupon_id = $1",
                       {id}),
              remaining);
    EXPECT_EQ(QueryInt(stack_.db(),
                       "SELECT count(*) FROM user_coupons WHERE coupon_id = $1", {id}),
              issued);
    EXPECT_EQ(QueryInt(stack_.db(),
                       "SELECT count(DISTINCT user_id) FROM user_coupons "
                       "WHERE coupon_id = $1",
                       {id}),
              issued);
    EXPECT_EQ(QueryInt(stack_.db(),
                       "SELECT count(*) FROM issue_results WHERE coupon_id = $1 "
                       "AND outcome = 'ISSUED'",
                       {id}),
              issued);
    EXPECT_EQ(QueryInt(stack_.db(),
                       "SELECT count(*) FROM issue_results WHERE coupon_id = $1",
                       {id}),
              stored_results);
  }

  IssuanceStack stack_;
};

TEST_P(FlashSaleTest, IssuesExactlyTheStockOncePerUserWithOneResultEach) {
  constexpr int64_t kStock = 100;
  constexpr int kUsers = 1000;
  const v1::Coupon coupon = stack_.CreateCoupon(kStock);
  const std::string run = absl::StrCat("fs", coupon.coupon_id());
  std::vector<IssueCall> calls;
  std::map<std::string, std::string> user_of;
  for (int round = 0; round < 2; ++round) {
    for (int u = 0; u < kUsers; ++u) {
      calls.push_back({absl::StrCat(run, "-user-", u),
                       absl::StrCat(run, "-r", round, "-u", u), {}, {}});
      user_of[calls.back().request_id] = calls.back().user_id;
    }
  }
  size_t accepted = 0;
  std::map<std::string, v1::IssueOutcome> outcome =
      Run(coupon.coupon_id(), calls, &accepted);

  std::set<std::string> winners;
  int issued = 0;
  for (const auto& [request_id, o] : outcome) {
    if (o != v1::ISSUE_OUTCOME_ISSUED) continue;
    ++issued;
    EXPECT_TRUE(winners.insert(user_of[request_id]).second)
        << user_of[request_id] << " won twice";
  }
  EXPECT_EQ(issued, kStock);

  SyncStock(coupon.coupon_id());
  // Kafka stores every request's result, the gateway's own answers included
  // (each is stored before it is given); Redis stores the issued copies in
  // PostgreSQL and keeps the other results in Redis.
  ExpectDatabaseAgrees(coupon.coupon_id(), kStock, 0,
                       redis() ? kStock : static_cast<int64_t>(calls.size()));

  grpc::ClientContext ctx;
  v1::GetCouponRequest get;
  get.set_coupon_id(coupon.coupon_id());
  v1::Coupon after;
  ASSERT_TRUE(stack_.stub().GetCoupon(&ctx, get, &after).ok());
  EXPECT_EQ(after.issued_quantity(), kStock);
  EXPECT_EQ(after.remaining_quantity(), 0);
}

TEST_P(FlashSaleTest, FiftyConcurrentCallsForOneCopyIssueExactlyOne) {
  const v1::Coupon coupon = stack_.CreateCoupon(1, "the last one");
  std::vector<IssueCall> calls;
  for (int u = 0; u < 50; ++u) {
    calls.push_back({absl::StrCat("one-", coupon.coupon_id(), "-u", u),
                     absl::StrCat("one-", coupon.coupon_id(), "-r", u), {}, {}});
  }
  size_t accepted = 0;
  std::map<std::string, v1::IssueOutcome> outcome =
      Run(coupon.coupon_id(), calls, &accepted);
  int issued = 0;
  for (const auto& [id, o] : outcome) issued += o == v1::ISSUE_OUTCOME_ISSUED;
  EXPECT_EQ(issued, 1);
  SyncStock(coupon.coupon_id());
  ExpectDatabaseAgrees(coupon.coupon_id(), 1, 0,
                       redis() ? 1 : static_cast<int64_t>(calls.size()));
}

INSTANTIATE_TEST_SUITE_P(
    Issuers, FlashSaleTest,
    ::testing::Values(Setup{"kafka", 1}, Setup{"kafka", 2}, Setup{"redis", 0}),
    [](const auto& info) {
      return absl::StrCat(info.param.issuer, info.param.workers > 0 ? "_" : "",
                          info.param.workers > 0 ? absl::StrCat(info.param.workers, "Workers") : "");
    });

}  // namespace
}  // namespace coupon::testing
