// The load generator's smoke run in CI: bench/flashsale's library drives a
// small sale of every workload through real gateways, against the real Kafka,
// PostgreSQL and Redis, and checks every invariant. No timing is asserted;
// bench/compare.sh takes the measurements.

#include <atomic>
#include <thread>

#include "absl/strings/str_join.h"
#include "bench/flashsale/flashsale.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "redis-issuer/outbox/outbox_scheduler.h"
#include "tests/integration/issuance_stack.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

using ::testing::IsEmpty;

struct Case {
  std::string issuer;
  std::string workload;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.issuer << " issuer, " << c.workload; }

class FlashSaleSmokeTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    stack_.AddGateway(absl::Minutes(1), GetParam().issuer);
    if (GetParam().issuer == "kafka") {
      stack_.AddWorker();
      stack_.WaitForAssignment();
    }
  }
  void TearDown() override {
    stop_ = true;
    if (scheduler_thread_.joinable()) scheduler_thread_.join();
  }

  // Redis mode: the outbox scheduler keeps PostgreSQL's stock in line, as it
  // does beside a Redis-mode gateway; flashsale waits for it before
  // checking. It is started once the run's coupons exist and takes only
  // their rows, so outbox rows that other tests, benchmarks or a
  // scripts/services gateway leave pending stay untouched.
  void StartScheduler(const std::vector<int64_t>& coupon_ids) {
    outbox::OutboxConfig config;
    config.pg_dsn = PgDsn();
    config.redis_addr = RedisAddr();
    config.interval = absl::Milliseconds(200);
    config.only_coupon_ids = coupon_ids;
    auto scheduler = outbox::OutboxScheduler::Create(config);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = std::move(*scheduler);
    scheduler_thread_ = std::thread([this] { (void)scheduler_->Run(stop_); });
  }

  bench::FlashSaleConfig Config() {
    bench::FlashSaleConfig config;
    config.target = absl::StrCat("127.0.0.1:", stack_.port());
    config.pg_dsn = PgDsn();
    config.admin_token = AdminToken();
    config.issuer = GetParam().issuer;
    config.workload = GetParam().workload;
    config.requests = 3000;
    config.users = 1000;
    config.stock = 150;
    config.concurrency = 64;
    config.progress = false;
    if (config.workload == "spread") config.coupons = 5;
    if (config.workload == "soldout") config.presell = 150;
    if (config.issuer == "redis") {
      config.redis_addr = RedisAddr();
      config.on_coupons = [this](const std::vector<int64_t>& ids) { StartScheduler(ids); };
    }
    return config;
  }

  IssuanceStack stack_;
  std::unique_ptr<outbox::OutboxScheduler> scheduler_;
  std::atomic<bool> stop_{false};
  std::thread scheduler_thread_;
};

TEST_P(FlashSaleSmokeTest, EveryInvariantHolds) {
  bench::FlashSaleConfig config = Config();
  ASSERT_TRUE(config.Resolve().ok());
  absl::StatusOr<bench::RunReport> report = bench::RunFlashSale(config);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->verification.ok())
      << absl::StrJoin(report->verification.violations, "\n");
  EXPECT_EQ(report->counters.errors, 0);
  EXPECT_EQ(report->accepted_missing, 0);
  // Every ACCEPTED request's result must come on its coupon's live stream:
  // flashsale fetches what the streams missed by request id at the end,
  // which would mask a gateway that drops results from its streams.
  EXPECT_EQ(report->results_late, 0)
      << "ACCEPTED results that never came on their coupon's stream (fetched by id at the end)";
  EXPECT_THAT(report->watch_problems, IsEmpty()) << absl::StrJoin(report->watch_problems, "\n");
  EXPECT_EQ(report->requests, 3000);
  EXPECT_EQ(report->measured_answered, 3000);
  int64_t issued = 0;
  for (const bench::CouponVerdict& c : report->verification.coupons) {
    issued += c.issued;
  }
  // Every workload has more users than copies: the stock sells out.
  EXPECT_EQ(issued, config.stock * config.coupons);
  if (config.issuer == "redis") {
    EXPECT_GE(report->stock_sync_seconds, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Workloads, FlashSaleSmokeTest,
    ::testing::Values(Case{"kafka", "hot"}, Case{"kafka", "spread"},
                      Case{"kafka", "retry"}, Case{"kafka", "soldout"},
                      Case{"redis", "hot"}, Case{"redis", "retry"}),
    [](const ::testing::TestParamInfo<Case>& info) {
      return info.param.issuer + "_" + info.param.workload;
    });

}  // namespace
}  // namespace coupon::testing
