// The outbox scheduler against the real PostgreSQL (PG_DSN) with the schema
// of db/migrations applied. Each test makes its own coupons, inserts the
// rows the Redis-mode gateway would, and points its schedulers at those
// coupons only, so rows other tests or benchmarks leave pending are not
// touched.

#include "redis-issuer/outbox/outbox_scheduler.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/pg/pg.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/exposition.h"
#include "tests/testing/http_client.h"
#include "tests/testing/stack_env.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace coupon::outbox {
namespace {

using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::coupon::testing::WaitFor;

class OutboxSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn =
        pg::Connection::Connect(coupon::testing::PgDsn(), absl::Seconds(5));
    ASSERT_TRUE(conn.ok()) << conn.status() << "; "
                           << coupon::testing::kStackHint;
    db_ = std::move(*conn);
    ASSERT_EQ(
        Int("SELECT count(*) FROM pg_tables WHERE tablename = 'coupon_outbox'"),
        1)
        << "table coupon_outbox is missing: apply the schema (scripts/migrate)";
  }

  // One value from a query returning a single bigint; -1 (and a failure)
  // when the query fails.
  int64_t Int(const std::string& sql,
              const std::vector<pg::Param>& params = {}) {
    auto r = db_->Exec(sql, params);
    if (!r.ok() || r->rows() != 1) {
      ADD_FAILURE() << sql << ": " << r.status();
      return -1;
    }
    return r->GetInt64(0, 0);
  }

  int64_t CreateCoupon(int64_t remaining, int64_t total) {
    return Int(
        "INSERT INTO coupons (name, total_quantity, remaining_quantity)"
        " VALUES ('outbox test', $1, $2) RETURNING coupon_id",
        {absl::StrCat(total), absl::StrCat(remaining)});
  }

  // What the gateway writes in Redis mode for `n` issued copies: the
  // user_coupons rows and one coupon_outbox row each (the same three columns
  // it inserts), leaving the stock alone.
  void Issue(int64_t coupon_id, int n) {
    auto r = db_->Exec(
        "WITH copies AS ("
        "  INSERT INTO user_coupons (coupon_id, user_id, request_id)"
        "  SELECT $1::bigint, 'outbox-user-' || (k + $3::int),"
        "         'outbox-' || $1 || '-' || (k + $3::int)"
        "  FROM generate_series(1, $2::int) AS k"
        "  RETURNING coupon_id, user_coupon_id, request_id)"
        " INSERT INTO coupon_outbox (coupon_id, user_coupon_id, request_id)"
        " SELECT coupon_id, user_coupon_id, request_id FROM copies",
        {absl::StrCat(coupon_id), absl::StrCat(n),
         absl::StrCat(issued_[coupon_id])});
    ASSERT_TRUE(r.ok()) << r.status();
    issued_[coupon_id] += n;
  }

  int64_t Remaining(int64_t coupon_id) {
    return Int("SELECT remaining_quantity FROM coupons WHERE coupon_id = $1",
               {absl::StrCat(coupon_id)});
  }

  // Rows of the coupon matching `where`.
  int64_t Rows(int64_t coupon_id, const std::string& where) {
    return Int(absl::StrCat("SELECT count(*) FROM coupon_outbox"
                            " WHERE coupon_id = $1 AND (",
                            where, ")"),
               {absl::StrCat(coupon_id)});
  }

  static OutboxConfig ConfigFor(std::vector<int64_t> coupons) {
    OutboxConfig config;
    config.pg_dsn = coupon::testing::PgDsn();
    config.redis_addr = coupon::testing::RedisAddr();
    config.only_coupon_ids = std::move(coupons);
    return config;
  }

  static std::unique_ptr<OutboxScheduler> NewScheduler(
      const OutboxConfig& config) {
    auto s = OutboxScheduler::Create(config);
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::unique_ptr<pg::Connection> db_;
  std::map<int64_t, int> issued_;
};

TEST_F(OutboxSchedulerTest, TakesEachRowFromTheStockOnce) {
  const int64_t coupon = CreateCoupon(100, 100);
  Issue(coupon, 7);
  auto scheduler = NewScheduler(ConfigFor({coupon}));
  ASSERT_NE(scheduler, nullptr);

  absl::StatusOr<PassStats> pass = scheduler->RunOnce();
  ASSERT_THAT(pass, IsOk());
  EXPECT_EQ(pass->claimed, 7);
  EXPECT_EQ(pass->done, 7);
  EXPECT_EQ(pass->retried, 0);
  EXPECT_EQ(pass->failed, 0);
  EXPECT_EQ(pass->coupons, 1);
  EXPECT_EQ(Remaining(coupon), 93);
  EXPECT_EQ(Rows(coupon,
                 "state = 'DONE' AND attempts = 1 AND processed_at IS NOT NULL"
                 " AND last_error IS NULL"),
            7);

  absl::StatusOr<PassStats> again = scheduler->RunOnce();
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->claimed, 0);
  EXPECT_EQ(Remaining(coupon), 93);
  EXPECT_EQ(Rows(coupon, "state = 'DONE' AND attempts = 1"), 7);

  EXPECT_EQ(scheduler->counters().passes.load(), 2);
  EXPECT_EQ(scheduler->counters().done.load(), 7);
  EXPECT_EQ(scheduler->counters().failed.load(), 0);
}

TEST_F(OutboxSchedulerTest, LeavesRowsThatAreNotDueYet) {
  const int64_t coupon = CreateCoupon(10, 10);
  Issue(coupon, 3);
  ASSERT_THAT(
      db_->Exec(
          "UPDATE coupon_outbox SET next_attempt_at = now() + interval '1 hour'"
          " WHERE outbox_id = (SELECT min(outbox_id) FROM coupon_outbox"
          "                    WHERE coupon_id = $1)",
          {absl::StrCat(coupon)}),
      IsOk());
  auto scheduler = NewScheduler(ConfigFor({coupon}));
  ASSERT_NE(scheduler, nullptr);

  absl::StatusOr<PassStats> pass = scheduler->RunOnce();
  ASSERT_THAT(pass, IsOk());
  EXPECT_EQ(pass->claimed, 2);
  EXPECT_EQ(Remaining(coupon), 8);
  EXPECT_EQ(Rows(coupon, "state = 'PENDING' AND attempts = 0"), 1);

  // Due now: taken like the others (and nothing is left pending behind us).
  ASSERT_THAT(db_->Exec("UPDATE coupon_outbox SET next_attempt_at = now()"
                        " WHERE coupon_id = $1 AND state = 'PENDING'",
                        {absl::StrCat(coupon)}),
              IsOk());
  absl::StatusOr<PassStats> later = scheduler->RunOnce();
  ASSERT_THAT(later, IsOk());
  EXPECT_EQ(later->done, 1);
  EXPECT_EQ(Remaining(coupon), 7);
}

TEST_F(OutboxSchedulerTest, TwoSchedulersProcessEachRowExactlyOnce) {
  constexpr int kCoupons = 5;
  constexpr int kRowsPerCoupon = 100;
  constexpr int kStock = 1000;
  std::vector<int64_t> coupons;
  for (int i = 0; i < kCoupons; ++i)
    coupons.push_back(CreateCoupon(kStock, kStock));
  // Interleaved, so a batch spans several coupons and both schedulers take
  // the same coupons' locks.
  for (int round = 0; round < kRowsPerCoupon / 10; ++round) {
    for (int64_t coupon : coupons) Issue(coupon, 10);
  }
  // Small batches, so the two interleave over many passes.
  OutboxConfig config = ConfigFor(coupons);
  config.batch_size = 25;
  auto a = NewScheduler(config);
  auto b = NewScheduler(config);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);

  struct Totals {
    int claimed = 0;
    int passes = 0;
    absl::Status error;
  };
  // Passes until one claims nothing. Each row is claimed once, so far fewer
  // passes than rows end it; a scheduler that claims the same rows again
  // would pass forever, hence the bound.
  auto drain = [](OutboxScheduler* s, Totals* t) {
    for (;;) {
      if (t->passes > kCoupons * kRowsPerCoupon) {
        t->error = absl::InternalError(
            absl::StrCat(t->passes, " passes and still claiming rows: rows are claimed again"));
        return;
      }
      absl::StatusOr<PassStats> pass = s->RunOnce();
      if (!pass.ok()) {
        t->error = pass.status();
        return;
      }
      if (pass->claimed == 0) return;
      t->claimed += pass->claimed;
      ++t->passes;
    }
  };
  Totals ta, tb;
  std::thread ra(drain, a.get(), &ta);
  std::thread rb(drain, b.get(), &tb);
  ra.join();
  rb.join();
  ASSERT_THAT(ta.error, IsOk());
  ASSERT_THAT(tb.error, IsOk());
  LOG(INFO) << "scheduler a: " << ta.claimed << " rows in " << ta.passes
            << " passes; b: " << tb.claimed << " rows in " << tb.passes;

  EXPECT_EQ(ta.claimed + tb.claimed, kCoupons * kRowsPerCoupon);
  EXPECT_EQ(a->counters().done.load() + b->counters().done.load(),
            kCoupons * kRowsPerCoupon);
  EXPECT_EQ(a->counters().retried.load() + b->counters().retried.load(), 0);
  for (int64_t coupon : coupons) {
    EXPECT_EQ(Remaining(coupon), kStock - kRowsPerCoupon)
        << "coupon " << coupon;
    EXPECT_EQ(Rows(coupon, "state = 'DONE' AND attempts = 1"), kRowsPerCoupon)
        << "coupon " << coupon;
  }
  absl::StatusOr<PassStats> after = a->RunOnce();
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->claimed, 0);
}

// Redis issued 3 copies where PostgreSQL has 1 left: the oldest row takes
// the last copy, and only the 2 copies issued beyond the stock are retried,
// then FAILED once out of attempts, one FAILED row per extra copy; the other
// coupon of the same passes is unaffected.
TEST_F(OutboxSchedulerTest, CopiesBeyondTheStockFailAfterMaxAttemptsAlone) {
  const int64_t short_coupon = CreateCoupon(1, 10);
  const int64_t fine_coupon = CreateCoupon(100, 100);
  Issue(short_coupon, 3);
  OutboxConfig config = ConfigFor({short_coupon, fine_coupon});
  config.retry_interval = absl::ZeroDuration();
  config.max_attempts = 3;
  auto scheduler = NewScheduler(config);
  ASSERT_NE(scheduler, nullptr);

  for (int attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE(absl::StrCat("pass ", attempt));
    Issue(fine_coupon, 2);
    absl::StatusOr<PassStats> pass = scheduler->RunOnce();
    ASSERT_THAT(pass, IsOk());
    EXPECT_EQ(pass->claimed, attempt == 1 ? 5 : 4);
    EXPECT_EQ(pass->coupons, 2);
    EXPECT_EQ(pass->done, attempt == 1 ? 3 : 2);
    EXPECT_EQ(pass->retried, attempt < 3 ? 2 : 0);
    EXPECT_EQ(pass->failed, attempt < 3 ? 0 : 2);
    EXPECT_EQ(Rows(short_coupon, "state = 'DONE' AND attempts = 1"), 1);
    EXPECT_EQ(
        Rows(short_coupon,
             absl::StrCat("attempts = ", attempt,
                          " AND last_error LIKE '%issued beyond the stock%'")),
        2);
    EXPECT_EQ(
        Rows(short_coupon,
             attempt < 3 ? "state = 'PENDING' AND processed_at IS NULL"
                         : "state = 'FAILED' AND processed_at IS NOT NULL"),
        2);
    EXPECT_EQ(Remaining(short_coupon), 0);
    EXPECT_EQ(Remaining(fine_coupon), 100 - 2 * attempt);
  }

  absl::StatusOr<PassStats> after = scheduler->RunOnce();
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->claimed, 0) << "FAILED rows are never claimed again";

  const OutboxScheduler::Counters& counters = scheduler->counters();
  EXPECT_EQ(counters.failed.load(), Rows(short_coupon, "state = 'FAILED'"));
  EXPECT_EQ(counters.failed.load(), 2);
  EXPECT_EQ(counters.retried.load(), 4);
  EXPECT_EQ(counters.done.load(), 7);
  EXPECT_EQ(Rows(fine_coupon, "state = 'DONE'"), 6);
}

TEST_F(OutboxSchedulerTest, RetryWaitsForTheRetryInterval) {
  const int64_t coupon = CreateCoupon(0, 5);
  Issue(coupon, 1);
  OutboxConfig config = ConfigFor({coupon});
  config.retry_interval = absl::Minutes(1);
  auto scheduler = NewScheduler(config);
  ASSERT_NE(scheduler, nullptr);

  absl::StatusOr<PassStats> pass = scheduler->RunOnce();
  ASSERT_THAT(pass, IsOk());
  EXPECT_EQ(pass->retried, 1);
  EXPECT_EQ(Rows(coupon,
                 "state = 'PENDING' AND attempts = 1"
                 " AND next_attempt_at > now() + interval '30 seconds'"
                 " AND next_attempt_at <= now() + interval '1 minute'"),
            1);
  absl::StatusOr<PassStats> again = scheduler->RunOnce();
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->claimed, 0);

  // Once due and with stock, the retry succeeds; the row keeps the error of
  // its failed attempt.
  ASSERT_THAT(
      db_->Exec(
          "UPDATE coupons SET remaining_quantity = 1 WHERE coupon_id = $1",
          {absl::StrCat(coupon)}),
      IsOk());
  ASSERT_THAT(db_->Exec("UPDATE coupon_outbox SET next_attempt_at = now()"
                        " WHERE coupon_id = $1",
                        {absl::StrCat(coupon)}),
              IsOk());
  absl::StatusOr<PassStats> retry = scheduler->RunOnce();
  ASSERT_THAT(retry, IsOk());
  EXPECT_EQ(retry->done, 1);
  EXPECT_EQ(Remaining(coupon), 0);
  EXPECT_EQ(Rows(coupon,
                 "state = 'DONE' AND attempts = 2 AND last_error IS NOT NULL"),
            1);
}

TEST_F(OutboxSchedulerTest, ServesRowCountsAndReadinessOnItsMetricsPort) {
  using ::coupon::testing::FindSample;
  using ::coupon::testing::HttpGet;
  const int64_t coupon = CreateCoupon(10, 10);
  Issue(coupon, 3);
  OutboxConfig config = ConfigFor({coupon});
  config.metrics_port = coupon::testing::FreeLoopbackPort();
  auto scheduler = NewScheduler(config);
  ASSERT_NE(scheduler, nullptr);
  const int port = config.metrics_port;
  EXPECT_EQ(HttpGet(port, "/healthz").status, 200);
  EXPECT_EQ(HttpGet(port, "/readyz").status, 200);  // connected in Create
  // Every coupon's rows are counted, other tests' too; DONE rows only ever
  // grow, so the count after the pass lies between these two.
  const std::string kDone = "SELECT count(*) FROM coupon_outbox WHERE state = 'DONE'";
  const int64_t done_before = Int(kDone);
  absl::StatusOr<PassStats> pass = scheduler->RunOnce();
  ASSERT_THAT(pass, IsOk());
  coupon::testing::HttpAnswer scrape = HttpGet(port, "/metrics");
  const int64_t done_after = Int(kDone);
  ASSERT_EQ(scrape.status, 200);
  auto families = coupon::testing::ParseExposition(scrape.body);
  const double done = FindSample(families, "coupon_outbox_rows", {{"state", "DONE"}}).value_or(-1);
  EXPECT_GE(done, done_before);
  EXPECT_LE(done, done_after);
  EXPECT_TRUE(FindSample(families, "coupon_outbox_rows", {{"state", "PENDING"}}));
  EXPECT_TRUE(FindSample(families, "coupon_outbox_rows", {{"state", "FAILED"}}));
  // A process-wide counter: at least this pass's rows.
  EXPECT_GE(FindSample(families, "coupon_outbox_rows_processed_total", {{"result", "done"}})
                .value_or(-1),
            pass->done);
  // One port, one process.
  EXPECT_THAT(OutboxScheduler::Create(config),
              StatusIs(absl::StatusCode::kUnavailable));

  // Without its database a scheduler runs, but is not ready.
  OutboxConfig down = ConfigFor({coupon});
  down.pg_dsn = "postgresql://coupon:coupon@127.0.0.1:1/coupon?connect_timeout=1";
  down.metrics_port = coupon::testing::FreeLoopbackPort();
  auto unready = NewScheduler(down);
  ASSERT_NE(unready, nullptr);
  EXPECT_EQ(HttpGet(down.metrics_port, "/healthz").status, 200);
  EXPECT_EQ(HttpGet(down.metrics_port, "/readyz").status, 503);
}

TEST_F(OutboxSchedulerTest, RunProcessesRowsUntilStopped) {
  const int64_t coupon = CreateCoupon(50, 50);
  Issue(coupon, 4);
  OutboxConfig config = ConfigFor({coupon});
  config.interval = absl::Milliseconds(100);
  auto scheduler = NewScheduler(config);
  ASSERT_NE(scheduler, nullptr);

  std::atomic<bool> stop{false};
  absl::Status ran = absl::UnknownError("not run");
  std::thread runner([&] { ran = scheduler->Run(stop); });
  {
    absl::Cleanup join_runner = [&] {
      stop.store(true);
      runner.join();
    };
    ASSERT_TRUE(WaitFor([&] { return Rows(coupon, "state = 'DONE'") >= 4; },
                        absl::Seconds(30), "the 4 rows DONE"));
    Issue(coupon, 2);  // picked up by a later pass
    ASSERT_TRUE(WaitFor([&] { return Rows(coupon, "state = 'DONE'") >= 6; },
                        absl::Seconds(30), "the 2 rows issued later DONE"));
  }
  EXPECT_THAT(ran, IsOk());
  EXPECT_EQ(Remaining(coupon), 44);
  EXPECT_EQ(scheduler->counters().done.load(), 6);
}

TEST_F(OutboxSchedulerTest, DatabaseDownIsUnavailableAndRunGoesOn) {
  OutboxConfig config;
  config.pg_dsn = "postgresql://coupon:coupon@127.0.0.1:1/coupon";
  config.pg_connect_timeout = absl::Seconds(1);
  config.interval = absl::Milliseconds(100);
  auto scheduler = NewScheduler(config);  // not an error: it retries
  ASSERT_NE(scheduler, nullptr);
  EXPECT_THAT(scheduler->RunOnce(), StatusIs(absl::StatusCode::kUnavailable));

  std::atomic<bool> stop{false};
  absl::Status ran = absl::UnknownError("not run");
  std::thread runner([&] { ran = scheduler->Run(stop); });
  {
    absl::Cleanup join_runner = [&] {
      stop.store(true);
      runner.join();
    };
    ASSERT_TRUE(WaitFor([&] { return scheduler->counters().pass_errors.load() >= 3; },
                        absl::Seconds(60), "3 failed passes against the database that is down"));
  }
  EXPECT_THAT(ran, IsOk());
  EXPECT_EQ(scheduler->counters().passes.load(), 0);
}

TEST_F(OutboxSchedulerTest, CreateRefusesABadConfig) {
  OutboxConfig config = ConfigFor({});
  config.max_attempts = 0;
  EXPECT_THAT(OutboxScheduler::Create(config),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--outbox_max_attempts: must be 1..100, got 0"));
}

}  // namespace
}  // namespace coupon::outbox
