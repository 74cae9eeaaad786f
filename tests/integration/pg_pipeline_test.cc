// Connection::Pipeline against the real PostgreSQL: several statements in
// one round trip, each run in order; a failure stops the rest and is the
// status, and the connection works on afterwards.

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

}  // namespace
}  // namespace coupon
