// Connection::Pipeline against the real PostgreSQL: several statements in
// one round trip, each run in order; a failure stops the rest and is the
// status, and the connection works on afterwards. Each text is prepared once
// per connection.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/pg/pg.h"
#include "gtest/gtest.h"
#include "tests/testing/stack_env.h"

namespace coupon {
namespace {

using testing::PgDsn;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
    ASSERT_TRUE(conn.ok()) << conn.status() << "; " << testing::kStackHint;
    conn_ = std::move(*conn);
    table_ = absl::StrCat("pipeline_test_", getpid());
    ASSERT_TRUE(conn_->Exec(absl::StrCat("CREATE TEMP TABLE ", table_,
                                         " (k int PRIMARY KEY, v text)"))
                    .ok());
  }

  int64_t Count() {
    auto r = conn_->Exec(absl::StrCat("SELECT count(*) FROM ", table_));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->GetInt64(0, 0) : -1;
  }

  std::unique_ptr<pg::Connection> conn_;
  std::string table_;
};

TEST_F(PipelineTest, RunsEveryStatementInOrderAndReturnsTheirResults) {
  auto results = conn_->Pipeline({
      {"BEGIN", {}},
      {absl::StrCat("INSERT INTO ", table_, " VALUES ($1, $2), ($3, $4)"),
       {"1", "one", "2", "two"}},
      // Sees the insert before it: the statements run in order.
      {absl::StrCat("SELECT v FROM ", table_, " WHERE k = $1"), {"2"}},
      {"COMMIT", {}},
  });
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 4u);
  ASSERT_EQ((*results)[2].rows(), 1);
  EXPECT_EQ((*results)[2].Get(0, 0), "two");
  EXPECT_EQ(Count(), 2);
}

TEST_F(PipelineTest, AFailureIsTheStatusAndNothingAfterItRuns) {
  ASSERT_TRUE(conn_->Exec(absl::StrCat("INSERT INTO ", table_, " VALUES (1, 'one')")).ok());
  auto results = conn_->Pipeline({
      {"BEGIN", {}},
      {absl::StrCat("INSERT INTO ", table_, " VALUES ($1, $2)"), {"2", "two"}},
      {absl::StrCat("INSERT INTO ", table_, " VALUES ($1, $2)"), {"1", "again"}},
      {absl::StrCat("INSERT INTO ", table_, " VALUES ($1, $2)"), {"3", "three"}},
      {"COMMIT", {}},
  });
  ASSERT_FALSE(results.ok());
  EXPECT_TRUE(absl::IsAlreadyExists(results.status())) << results.status();
  // The transaction is aborted, not committed: roll it back and go on.
  ASSERT_TRUE(conn_->Exec("ROLLBACK").ok());
  EXPECT_EQ(Count(), 1);
  EXPECT_TRUE(conn_->Reusable());
  auto again = conn_->Pipeline(
      {{absl::StrCat("INSERT INTO ", table_, " VALUES ($1, $2)"), {"2", "two"}}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Count(), 2);
}

TEST_F(PipelineTest, WithoutBeginAFailureUndoesTheWholePipeline) {
  // Without BEGIN the statements up to the sync are one implicit
  // transaction: the insert before the bad statement is undone too.
  auto results = conn_->Pipeline({
      {absl::StrCat("INSERT INTO ", table_, " VALUES ($1, $2)"), {"5", "five"}},
      {"SELEC nothing", {}},
  });
  ASSERT_FALSE(results.ok());
  EXPECT_EQ(Count(), 0);
  EXPECT_TRUE(conn_->Reusable());
}

// The statements this session has prepared, read on the connection itself
// (pg_prepared_statements is per session).
int64_t Prepared(pg::Connection& conn) {
  auto r = conn.Exec("SELECT count(*) FROM pg_prepared_statements");
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->GetInt64(0, 0) : -1;
}

TEST_F(PipelineTest, EachTextIsPreparedOnceAndRunByName) {
  const std::string insert = absl::StrCat("INSERT INTO ", table_, " VALUES ($1, $2)");
  ASSERT_EQ(Prepared(*conn_), 0);
  for (int k = 1; k <= 3; ++k) {
    auto results = conn_->Pipeline({{"BEGIN", {}},
                                    {insert, {absl::StrCat(k), "v"}},
                                    {"COMMIT", {}}});
    ASSERT_TRUE(results.ok()) << results.status();
  }
  EXPECT_EQ(Count(), 3);
  // BEGIN, the insert and COMMIT, each once however many pipelines ran.
  EXPECT_EQ(Prepared(*conn_), 3);
  auto calls = conn_->Exec(
      "SELECT statement FROM pg_prepared_statements ORDER BY statement");
  ASSERT_TRUE(calls.ok()) << calls.status();
  ASSERT_EQ(calls->rows(), 3);
  EXPECT_EQ(calls->Get(2, 0), insert);
}

TEST_F(PipelineTest, AStatementThatCannotBePreparedRunsNothingAndIsNotKept) {
  auto results = conn_->Pipeline({
      {absl::StrCat("INSERT INTO ", table_, " VALUES ($1, $2)"), {"5", "five"}},
      {absl::StrCat("SELECT nosuchcolumn FROM ", table_), {}},
  });
  ASSERT_FALSE(results.ok());
  EXPECT_NE(results.status().message().find("nosuchcolumn"), std::string::npos)
      << results.status();
  EXPECT_EQ(Count(), 0);
  // The insert was prepared (it is fine); the failed text was not kept, so
  // it fails the same way again rather than running a stale name.
  EXPECT_EQ(Prepared(*conn_), 1);
  auto again = conn_->Pipeline({{absl::StrCat("SELECT nosuchcolumn FROM ", table_), {}}});
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(conn_->Reusable());
}

TEST_F(PipelineTest, TextsPastTheCapRunUnnamedAndStillWork) {
  // A caller that builds a new text each time (a literal in the SQL) fills
  // the cap, then runs on unprepared: the session does not grow for ever.
  for (int k = 1; k <= 40; ++k) {
    auto results = conn_->Pipeline(
        {{absl::StrCat("INSERT INTO ", table_, " VALUES (", k, ", $1)"), {"v"}}});
    ASSERT_TRUE(results.ok()) << k << ": " << results.status();
  }
  EXPECT_EQ(Count(), 40);
  EXPECT_EQ(Prepared(*conn_), 32);
}

TEST_F(PipelineTest, AChangedResultTypeIsPreparedAfreshOnTheNextPipeline) {
  const std::string read = absl::StrCat("SELECT v FROM ", table_, " WHERE k = $1");
  ASSERT_TRUE(conn_->Exec(absl::StrCat("INSERT INTO ", table_, " VALUES (1, '7')")).ok());
  ASSERT_TRUE(conn_->Pipeline({{read, {"1"}}}).ok());
  // A migration changes the column's type under the prepared statement.
  ASSERT_TRUE(conn_->Exec(absl::StrCat("ALTER TABLE ", table_,
                                       " ALTER COLUMN v TYPE int USING v::int"))
                  .ok());
  auto stale = conn_->Pipeline({{read, {"1"}}});
  ASSERT_FALSE(stale.ok());  // "cached plan must not change result type"
  auto fresh = conn_->Pipeline({{read, {"1"}}});
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  ASSERT_EQ((*fresh)[0].rows(), 1);
  EXPECT_EQ((*fresh)[0].Get(0, 0), "7");
}

}  // namespace
}  // namespace coupon
