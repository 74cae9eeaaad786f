// How the services read stored results by request id, against the real
// PostgreSQL: by index, even on a table the planner has never analyzed.

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/pg/pg.h"
#include "common/pg/rows.h"
#include "gtest/gtest.h"
#include "tests/testing/stack_env.h"

namespace coupon {
namespace {

using testing::PgDsn;

// A young issue_results (right after a TRUNCATE, before autovacuum analyzed
// it) planned `request_id = ANY($1)` for a worker's batch of 500 ids as a
// sequential scan, which grew with every batch. The session's own temporary
// issue_results, never analyzed, shadows the real one here.
TEST(ResultReadsTest, ABatchOfIdsIsReadByIndexFromAnUnanalyzedTable) {
  auto conn = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
  ASSERT_TRUE(conn.ok()) << conn.status() << "; " << testing::kStackHint;
  pg::Connection& db = **conn;
  ASSERT_TRUE(db.Exec("CREATE TEMP TABLE issue_results"
                      " (LIKE public.issue_results INCLUDING ALL)")
                  .ok());
  ASSERT_TRUE(db.Exec("INSERT INTO issue_results (request_id, coupon_id, user_id,"
                      " outcome, remaining_quantity)"
                      " SELECT 'young-' || g, 1, 'u' || g, 'SOLD_OUT', 0"
                      " FROM generate_series(1, 50000) g")
                  .ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 500; ++i) ids.push_back(absl::StrCat("young-", i * 97 + 1));
  auto plan = db.Exec(absl::StrCat("EXPLAIN ", pg::IssueResultsByRequestIdsSql()),
                      {pg::TextArray(ids)});
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::string text;
  for (int i = 0; i < plan->rows(); ++i) absl::StrAppend(&text, plan->Get(i, 0), "\n");
  EXPECT_FALSE(absl::StrContains(text, "Seq Scan on issue_results")) << text;
  EXPECT_TRUE(absl::StrContains(text, "issue_results_pkey")) << text;

  auto rows = db.Exec(pg::IssueResultsByRequestIdsSql(), {pg::TextArray(ids)});
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->rows(), 500);
  EXPECT_EQ(pg::IssueResultFromRow(*rows, 0).request_id, ids[0]);
}

}  // namespace
}  // namespace coupon
