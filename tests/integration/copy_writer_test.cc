// The Redis mode's CopyWriter against the real PostgreSQL and Redis: the
// copies reserved within a round share one commit, the same request twice
// is one copy, and a user who holds the coupon from another request is
// ALREADY_ISSUED, as StoreCopy decided them one at a time.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/pg/pg.h"
#include "common/redis/redis.h"
#include "gtest/gtest.h"
#include "redis-issuer/copy_writer.h"
#include "tests/testing/stack_env.h"

namespace coupon {
namespace {

using redis_issuer::CopyWriter;
using redis_issuer::CopyWriterConfig;
using testing::PgDsn;

class CopyWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
    ASSERT_TRUE(conn.ok()) << conn.status() << "; " << testing::kStackHint;
    db_ = std::move(*conn);
    redis::RedisConfig rc;
    rc.addr = testing::RedisAddr();
    auto client = redis::Client::Create(rc);
    ASSERT_TRUE(client.ok()) << client.status();
    redis_ = std::move(*client);
    auto coupon = db_->Exec(
        "INSERT INTO coupons (name, total_quantity, remaining_quantity)"
        " VALUES ('copy writer test', 10, 10) RETURNING coupon_id");
    ASSERT_TRUE(coupon.ok()) << coupon.status();
    coupon_id_ = coupon->GetInt64(0, 0);
    run_ = absl::StrCat("cw-", getpid(), "-", absl::ToUnixMicros(absl::Now()));
  }

  IssueResult Reserved(const std::string& request, const std::string& user) {
    IssueResult r;
    r.request_id = absl::StrCat(run_, "-", request);
    r.coupon_id = coupon_id_;
    r.user_id = absl::StrCat(run_, "-", user);
    r.outcome = Outcome::kIssued;
    r.remaining_quantity = 9;
    r.decided_at = absl::ToUnixMicros(absl::Now());
    return r;
  }

  // Writes the copies `gap` apart and waits for every ending.
  std::vector<IssueResult> WriteAll(CopyWriter& writer, const std::vector<IssueResult>& copies,
                                    absl::Duration gap) {
    std::vector<IssueResult> ended(copies.size());
    std::vector<absl::Notification> done(copies.size());
    for (size_t i = 0; i < copies.size(); ++i) {
      writer.Write(copies[i], [&, i](absl::StatusOr<IssueResult> e) {
        EXPECT_TRUE(e.ok()) << e.status();
        if (e.ok()) ended[i] = *e;
        done[i].Notify();
      });
      absl::SleepFor(gap);
    }
    for (auto& d : done) EXPECT_TRUE(d.WaitForNotificationWithTimeout(absl::Seconds(10)));
    return ended;
  }

  CopyWriterConfig Config(absl::Duration wait) {
    CopyWriterConfig c;
    c.pg_dsn = PgDsn();
    c.rounds.batch_wait = wait;
    return c;
  }

  std::unique_ptr<pg::Connection> db_;
  std::unique_ptr<redis::Client> redis_;
  int64_t coupon_id_ = 0;
  std::string run_;
};

TEST_F(CopyWriterTest, CopiesReservedWithinTheWaitShareOneCommit) {
  CopyWriter writer(Config(absl::Milliseconds(500)), redis_.get());
  const std::vector<IssueResult> ended = WriteAll(
      writer, {Reserved("a", "alice"), Reserved("b", "bob"), Reserved("a", "alice"),
               Reserved("c", "carol")},
      absl::Milliseconds(20));
  for (const IssueResult& e : ended) {
    EXPECT_EQ(e.outcome, Outcome::kIssued) << e.request_id;
    EXPECT_GT(e.user_coupon_id, 0) << e.request_id;
  }
  // The same request twice is one copy.
  EXPECT_EQ(ended[0].user_coupon_id, ended[2].user_coupon_id);
  EXPECT_NE(ended[0].user_coupon_id, ended[1].user_coupon_id);
  // Three copies, their results and outbox rows: one transaction (one xmin).
  auto rows = db_->Exec(
      "SELECT count(*), count(DISTINCT uc.xmin::text),"
      "  (SELECT count(*) FROM issue_results r WHERE r.request_id LIKE $1 || '%'"
      "     AND r.outcome = 'ISSUED'),"
      "  (SELECT count(*) FROM coupon_outbox o WHERE o.request_id LIKE $1 || '%')"
      " FROM user_coupons uc WHERE uc.coupon_id = $2",
      {run_, absl::StrCat(coupon_id_)});
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->GetInt64(0, 0), 3);
  EXPECT_EQ(rows->GetInt64(0, 1), 1);
  EXPECT_EQ(rows->GetInt64(0, 2), 3);
  EXPECT_EQ(rows->GetInt64(0, 3), 3);
}

TEST_F(CopyWriterTest, ARetryFindsItsCopyAndAnotherRequestOfTheHolderIsAlreadyIssued) {
  CopyWriter writer(Config(absl::ZeroDuration()), redis_.get());
  const IssueResult first = WriteAll(writer, {Reserved("a", "alice")}, absl::ZeroDuration())[0];
  ASSERT_EQ(first.outcome, Outcome::kIssued);
  const std::vector<IssueResult> later = WriteAll(
      writer, {Reserved("a", "alice"), Reserved("a2", "alice")}, absl::ZeroDuration());
  EXPECT_EQ(later[0].outcome, Outcome::kIssued);
  EXPECT_EQ(later[0].user_coupon_id, first.user_coupon_id);
  EXPECT_EQ(later[1].outcome, Outcome::kAlreadyIssued);
  EXPECT_EQ(later[1].user_coupon_id, 0);
  auto copies = db_->Exec("SELECT count(*) FROM user_coupons WHERE coupon_id = $1",
                          {absl::StrCat(coupon_id_)});
  ASSERT_TRUE(copies.ok()) << copies.status();
  EXPECT_EQ(copies->GetInt64(0, 0), 1);
}

// Chaos redis-kill-aof found this: a resent reservation written by another
// gateway (or the outbox scheduler) that commits while this writer's
// statement waits on it was answered ALREADY_ISSUED, though the copy is the
// request's own.
TEST_F(CopyWriterTest, ACopyOfTheSameRequestCommittedMeanwhileIsTheRequestsOwn) {
  const IssueResult copy = Reserved("a", "alice");
  auto other = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE((*other)->Exec("BEGIN").ok());
  auto theirs = (*other)->Exec(
      "INSERT INTO user_coupons (coupon_id, user_id, request_id) VALUES ($1, $2, $3)"
      " RETURNING user_coupon_id",
      {absl::StrCat(copy.coupon_id), copy.user_id, copy.request_id});
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  CopyWriter writer(Config(absl::ZeroDuration()), redis_.get());
  absl::Notification done;
  absl::StatusOr<IssueResult> ended = absl::UnknownError("not yet");
  writer.Write(copy, [&](absl::StatusOr<IssueResult> e) {
    ended = std::move(e);
    done.Notify();
  });
  // The writer's insert waits on the other transaction's row.
  EXPECT_FALSE(done.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  ASSERT_TRUE((*other)->Exec("COMMIT").ok());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->outcome, Outcome::kIssued);
  EXPECT_EQ(ended->user_coupon_id, theirs->GetInt64(0, 0));
}

}  // namespace
}  // namespace coupon
