// The Redis mode's CopyWriter against the real PostgreSQL and Redis: the
// copies reserved within a round share one commit, the same request twice
// is one copy, and a user who holds the coupon from another request is
// ALREADY_ISSUED, as StoreCopy decided them one at a time; a copy whose
// reservation Redis lost while it waited is not written.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/pg/pg.h"
#include "common/redis/redis.h"
#include "gateway/results/result_hub.h"
#include "gtest/gtest.h"
#include "redis-issuer/copy_writer.h"
#include "redis-issuer/records.h"
#include "redis-issuer/redis_issuer.h"
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
    redis_config_ = rc;
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
    // As the decide script leaves it: the writer writes only what Redis
    // still holds reserved.
    EXPECT_TRUE(redis_
                    ->Command({"SET", redis_issuer::RequestKey(r.request_id),
                               redis_issuer::FormatRecord(r, /*reserved=*/true)})
                    .ok());
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
  redis::RedisConfig redis_config_;
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

// Chaos redis-kill-none found this: copies waited seconds in a writer (its
// statements waited on the other gateway's), Redis was killed and came back
// empty meanwhile, and the new Redis answered a resent request
// ALREADY_ISSUED (its user's other request had the user's marker now); then
// the writer committed the request's copy, reserved before the restart. A
// copy Redis no longer holds reserved is not written: its caller hears
// UNAVAILABLE and the answer Redis gave stands.
TEST_F(CopyWriterTest, ACopyRedisForgotWhileItWaitedIsNotWritten) {
  struct Call {
    absl::Notification done;
    absl::StatusOr<gateway::IssueReply> reply = absl::UnknownError("not yet");
  };
  // Declared before the writer, whose last callbacks use them.
  gateway::ResultHub hub;
  std::unique_ptr<gateway::RedisIssuer> issuer;
  Call reserved, other_request, resent;
  CopyWriter writer(Config(absl::ZeroDuration()), redis_.get());
  // Declared after the writer and the issuer: its callbacks use both.
  auto async = redis::AsyncClient::Create(redis_config_);
  ASSERT_TRUE(async.ok()) << async.status();
  issuer = std::make_unique<gateway::RedisIssuer>(async->get(), redis_.get(), &writer, &hub,
                                                  absl::Hours(1));
  CouponInfo coupon;
  coupon.coupon_id = coupon_id_;
  coupon.total_quantity = 10;
  coupon.remaining_quantity = 10;
  const std::string user = absl::StrCat(run_, "-alice");
  const std::string first = absl::StrCat(run_, "-r1"), second = absl::StrCat(run_, "-r2");
  auto issue = [&](const std::string& request_id, Call& call) {
    issuer->Issue(gateway::IssueCommand{coupon_id_, user, request_id}, coupon,
                  absl::Now() + absl::Minutes(1),
                  [&call](absl::StatusOr<gateway::IssueReply> reply) {
                    call.reply = std::move(reply);
                    call.done.Notify();
                  });
  };

  // The writer is held: its insert's foreign-key check waits on the coupon.
  auto other = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE((*other)->Exec("BEGIN").ok());
  ASSERT_TRUE((*other)
                  ->Exec("SELECT 1 FROM coupons WHERE coupon_id = $1 FOR UPDATE",
                         {absl::StrCat(coupon_id_)})
                  .ok());
  issue(first, reserved);
  EXPECT_FALSE(reserved.done.WaitForNotificationWithTimeout(absl::Milliseconds(300)));

  // Redis restarts empty, as far as this coupon and user go.
  for (const std::string& key :
       {redis_issuer::QueueKey(coupon_id_), redis_issuer::LimitKey(coupon_id_),
        redis_issuer::IssuedKey(coupon_id_, user), redis_issuer::RequestKey(first)}) {
    ASSERT_TRUE(redis_->Command({"DEL", key}).ok());
  }
  ASSERT_TRUE(redis_->Command({"ZREM", redis_issuer::kReservedKey, first}).ok());
  // The user's other request is reserved now, and the first, resent, is
  // ALREADY_ISSUED: the new Redis knows the user by the other one.
  issue(second, other_request);
  issue(first, resent);
  ASSERT_TRUE(resent.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(resent.reply.ok()) << resent.reply.status();
  ASSERT_EQ(resent.reply->outcome, Outcome::kAlreadyIssued);

  ASSERT_TRUE((*other)->Exec("COMMIT").ok());
  ASSERT_TRUE(reserved.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(other_request.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // The first request's copy was not written: what it was answered holds.
  EXPECT_TRUE(absl::IsUnavailable(reserved.reply.status()))
      << (reserved.reply.ok() ? std::string(OutcomeName(reserved.reply->outcome))
                              : reserved.reply.status().ToString());
  auto copies = db_->Exec(
      "SELECT request_id FROM user_coupons WHERE coupon_id = $1",
      {absl::StrCat(coupon_id_)});
  ASSERT_TRUE(copies.ok()) << copies.status();
  ASSERT_EQ(copies->rows(), 1);
  EXPECT_EQ(std::string(copies->Get(0, 0)), second);
  ASSERT_TRUE(other_request.reply.ok()) << other_request.reply.status();
  EXPECT_EQ(other_request.reply->outcome, Outcome::kIssued);
}

}  // namespace
}  // namespace coupon
