// A new deployment's first sale, on tables that autovacuum analyzed while
// they were nearly empty (it does once about 50 rows have changed). The
// services prepare their statements once per connection, and after five
// runs PostgreSQL's plan cache keeps one generic plan, planned with the
// sizes of that moment: on a table of one page, a sequential scan. The plan
// stays until the table is analyzed again (a minute or more), while the sale
// fills the table, so every batch scans all of it, once per event. Seen in
// benchmark points: the worker's transaction went from 3-11 ms to 134 and
// 168 ms.
//
// The test runs the migrations into a schema of its own (fresh, empty
// tables), analyzes them empty, and runs a sale through a gateway and a
// worker whose sessions use that schema. It counts the sequential scans of
// the tables that grow with a sale (PostgreSQL's pg_stat_user_tables, read
// after the services' sessions ended and so flushed their counts): every
// statement of theirs is a lookup by key, so there must be none.

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

IssueCall Call(const std::string& user) {
  IssueCall c;
  c.user_id = user;
  c.request_id = absl::StrCat(user, "-1");
  return c;
}

class FirstSaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dsn = PgDsn();
    ASSERT_EQ(dsn.rfind("postgres", 0), 0u) << "PG_DSN must be a URI: " << dsn;
    const char* sep = dsn.find('?') == std::string::npos ? "?" : "&";
    dsn_ = absl::StrCat(dsn, sep, "options=-csearch_path%3D", schema_,
                        "&application_name=", app_);
    auto db = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
    ASSERT_TRUE(db.ok()) << db.status() << "; " << kStackHint;
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Exec(absl::StrCat("DROP SCHEMA IF EXISTS ", schema_, " CASCADE")).ok());
    ASSERT_TRUE(db_->Exec(absl::StrCat("CREATE SCHEMA ", schema_)).ok());
    // The project's own migrations, as a new deployment runs them.
    const std::string log = absl::StrCat(::testing::TempDir(), "/", schema_, "-migrate.log");
    const std::string cmd = absl::StrCat("PG_DSN='", dsn_, "' bash '", COUPON_SOURCE_DIR,
                                         "/scripts/migrate' >'", log, "' 2>&1");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << ReadFile(log);
    for (const char* table : {"coupons", "user_coupons", "issue_results"}) {
      ASSERT_TRUE(db_->Exec(absl::StrCat("ANALYZE ", schema_, ".", table)).ok());
    }
  }

  void TearDown() override {
    if (db_) (void)db_->Exec(absl::StrCat("DROP SCHEMA IF EXISTS ", schema_, " CASCADE"));
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Waits until no session of this test's application name is left: a
  // session's statistics reach pg_stat_user_tables when it ends.
  void WaitForSessionsToEnd() {
    const absl::Time until = absl::Now() + absl::Seconds(30);
    while (QueryInt(*db_, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    {app_}) > 0) {
      ASSERT_LT(absl::Now(), until) << "the services' sessions did not end";
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // Sequential scans so far of the tables a sale fills.
  int64_t SequentialScans() {
    return QueryInt(*db_,
                    "SELECT coalesce(sum(seq_scan), 0)::bigint FROM pg_stat_user_tables"
                    " WHERE schemaname = $1 AND relname IN ('user_coupons', 'issue_results')",
                    {schema_});
  }

  const std::string schema_ = absl::StrCat("first_sale_", getpid());
  const std::string app_ = absl::StrCat("first-sale-test-", getpid());
  std::string dsn_;
  std::unique_ptr<pg::Connection> db_;
};

TEST_F(FirstSaleTest, TablesAnalyzedWhileNearlyEmptyAreStillProbedByKey) {
  WaitForSessionsToEnd();  // the migration's
  const int64_t before = SequentialScans();
  size_t decided = 0;
  {
    IssuanceStack stack;
    stack.AddGateway(absl::Minutes(1), "kafka",
                     [&](gateway::GatewayConfig& c) { c.pg_dsn = dsn_; });
    stack.AddWorker([&](worker::WorkerConfig& c) { c.pg_dsn = dsn_; });
    stack.WaitForAssignment();
    const v1::Coupon coupon = stack.CreateCoupon(300, "first sale");
    // The first requests one at a time, each a batch of its own: the plan
    // cache settles on its plans while the tables hold a handful of rows.
    for (int i = 0; i < 8; ++i) {
      std::vector<IssueCall> one = {Call(absl::StrCat("early-", i))};
      IssueConcurrently(stack.stub(), coupon.coupon_id(), one);
      ASSERT_TRUE(one[0].status.ok()) << one[0].status.error_message();
      ASSERT_EQ(one[0].response.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
      WatchOutcome w = WatchToEnd(stack.stub(), {one[0].request_id});
      ASSERT_TRUE(w.status.ok()) << w.status.error_message();
      decided += w.results.size();
    }
    // Then the sale: 600 users for the other 292 copies, all at once.
    std::vector<IssueCall> calls;
    for (int u = 0; u < 600; ++u) {
      calls.push_back(Call(absl::StrCat("buyer-", u)));
    }
    IssueConcurrently(stack.stub(), coupon.coupon_id(), calls);
    std::vector<std::string> accepted;
    for (const IssueCall& c : calls) {
      ASSERT_TRUE(c.status.ok()) << c.request_id << ": " << c.status.error_message();
      if (c.response.outcome() == v1::ISSUE_OUTCOME_ACCEPTED) accepted.push_back(c.request_id);
    }
    WatchOutcome w = WatchToEnd(stack.stub(), accepted);
    ASSERT_TRUE(w.status.ok()) << w.status.error_message();
    decided += w.results.size();
    EXPECT_EQ(w.results.size(), accepted.size());
  }
  EXPECT_GE(decided, 300u);
  WaitForSessionsToEnd();
  EXPECT_EQ(SequentialScans() - before, 0)
      << "the gateway's or the worker's statements scanned user_coupons or issue_results";
}

}  // namespace
}  // namespace coupon::testing
