// The gateway's AnswerRecorder against the real PostgreSQL: answers that
// arrive within --answer_batch_wait of each other share one commit, an id
// that holds a result keeps it without costing its batch the others, and a
// sold-out coupon's copies, once read, spare its SOLD_OUT answers their
// probe of user_coupons.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/metrics/metrics.h"
#include "common/pg/pg.h"
#include "gateway/results/result_cache.h"
#include "gateway/store/answer_recorder.h"
#include "gtest/gtest.h"
#include "tests/testing/stack_env.h"

namespace coupon {
namespace {

using gateway::AnswerRecorder;
using gateway::RecorderConfig;
using testing::PgDsn;

IssueResult SoldOut(const std::string& request_id) {
  IssueResult r;
  r.request_id = request_id;
  r.coupon_id = 1;  // issue_results has no foreign key to coupons
  r.user_id = absl::StrCat("user-", request_id);
  r.outcome = Outcome::kSoldOut;
  r.decided_at = absl::ToUnixMicros(absl::Now());
  return r;
}

TEST(AnswerRecorderTest, AnswersArrivingWithinTheWaitShareOneCommit) {
  auto conn = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
  ASSERT_TRUE(conn.ok()) << conn.status() << "; " << testing::kStackHint;
  RecorderConfig config;
  config.pg_dsn = PgDsn();
  config.batch_wait = absl::Milliseconds(500);
  const std::string run = absl::StrCat("recorder-", getpid(), "-", absl::ToUnixMicros(absl::Now()));
  std::vector<std::string> ids;
  {
    AnswerRecorder recorder(config);
    std::vector<absl::Notification> done(3);
    for (int i = 0; i < 3; ++i) {
      ids.push_back(absl::StrCat(run, "-", i));
      recorder.Record(SoldOut(ids.back()), [&, i](absl::StatusOr<IssueResult> stored) {
        EXPECT_TRUE(stored.ok()) << stored.status();
        if (stored.ok()) {
          EXPECT_EQ(stored->outcome, Outcome::kSoldOut);
        }
        done[i].Notify();
      });
      absl::SleepFor(absl::Milliseconds(20));
    }
    for (auto& d : done) ASSERT_TRUE(d.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }
  // Rows of one transaction share its xmin.
  auto txns = (*conn)->Exec(
      "SELECT count(*), count(DISTINCT xmin::text) FROM issue_results"
      " WHERE request_id = ANY($1::text[])",
      {pg::TextArray(ids)});
  ASSERT_TRUE(txns.ok()) << txns.status();
  EXPECT_EQ(txns->GetInt64(0, 0), 3);
  EXPECT_EQ(txns->GetInt64(0, 1), 1);
}

// The batches_total sample of `statement` in the process's /metrics.
double BatchesStoredBy(const std::string& statement) {
  const std::string prefix =
      absl::StrCat("coupon_gateway_answer_batches_total{statement=\"", statement, "\"} ");
  for (absl::string_view line :
       absl::StrSplit(metrics::Registry::Default().Render(), '\n')) {
    double value = 0;
    if (absl::ConsumePrefix(&line, prefix) && absl::SimpleAtod(line, &value)) return value;
  }
  return 0;
}

// Stores `ids` as one batch (they arrive within its wait) and returns what
// each one's caller was told, in order.
std::vector<IssueResult> RecordTogether(AnswerRecorder& recorder,
                                        const std::vector<std::string>& ids) {
  std::vector<IssueResult> told(ids.size());
  std::vector<absl::Notification> done(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    recorder.Record(SoldOut(ids[i]), [&, i](absl::StatusOr<IssueResult> stored) {
      EXPECT_TRUE(stored.ok()) << stored.status();
      if (stored.ok()) told[i] = *stored;
      done[i].Notify();
    });
  }
  for (auto& d : done) EXPECT_TRUE(d.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return told;
}

// A batch is stored by a plain INSERT, which fails whole when one of its ids
// holds a result. The batch is then stored with ON CONFLICT: that id is
// answered what it holds, the others are stored; and once a batch finds no
// id taken, the plain INSERT is back.
TEST(AnswerRecorderTest, AnIdThatHoldsAResultKeepsItAndTheRestOfItsBatchIsStored) {
  auto conn = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
  ASSERT_TRUE(conn.ok()) << conn.status() << "; " << testing::kStackHint;
  const std::string run = absl::StrCat("taken-", getpid(), "-", absl::ToUnixMicros(absl::Now()));
  const std::string held = run + "-held";
  ASSERT_TRUE((*conn)
                  ->Exec("INSERT INTO issue_results (request_id, coupon_id, user_id, outcome,"
                         " remaining_quantity) VALUES ($1, 1, 'someone-else', 'NOT_STARTED', 7)",
                         {held})
                  .ok());
  RecorderConfig config;
  config.pg_dsn = PgDsn();
  config.batch_wait = absl::Milliseconds(300);
  AnswerRecorder recorder(config);
  const double by_insert = BatchesStoredBy("insert");
  const double by_on_conflict = BatchesStoredBy("on_conflict");

  const std::vector<std::string> first = {run + "-a", held, run + "-b"};
  std::vector<IssueResult> told = RecordTogether(recorder, first);
  EXPECT_EQ(told[0].outcome, Outcome::kSoldOut);
  EXPECT_EQ(told[1].outcome, Outcome::kNotStarted);
  EXPECT_EQ(told[1].user_id, "someone-else");
  EXPECT_EQ(told[1].remaining_quantity, 7);
  EXPECT_EQ(told[2].outcome, Outcome::kSoldOut);
  auto rows = (*conn)->Exec(
      "SELECT count(*) FILTER (WHERE outcome = 'SOLD_OUT'),"
      " count(*) FILTER (WHERE user_id = 'someone-else') FROM issue_results"
      " WHERE request_id = ANY($1::text[])",
      {pg::TextArray(first)});
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->GetInt64(0, 0), 2);
  EXPECT_EQ(rows->GetInt64(0, 1), 1);
  EXPECT_EQ(BatchesStoredBy("on_conflict") - by_on_conflict, 1);

  // The next batch still takes care; it finds nothing taken, so the one
  // after it is a plain INSERT again.
  EXPECT_EQ(RecordTogether(recorder, {run + "-c"})[0].outcome, Outcome::kSoldOut);
  EXPECT_EQ(RecordTogether(recorder, {run + "-d"})[0].outcome, Outcome::kSoldOut);
  EXPECT_EQ(BatchesStoredBy("on_conflict") - by_on_conflict, 2);
  EXPECT_EQ(BatchesStoredBy("insert") - by_insert, 1);
}

// A coupon of `copies.size()` copies and `remaining` stock left, the copies
// stored as the worker stores them; returns its id.
int64_t CouponWithCopies(pg::Connection& conn, const std::string& run,
                         const std::vector<std::string>& copies, int64_t remaining) {
  auto coupon = conn.Exec(
      "INSERT INTO coupons (name, total_quantity, remaining_quantity)"
      " VALUES ($1, $2, $3) RETURNING coupon_id",
      {run, absl::StrCat(copies.size() + remaining), absl::StrCat(remaining)});
  EXPECT_TRUE(coupon.ok()) << coupon.status();
  if (!coupon.ok()) return 0;
  const int64_t id = coupon->GetInt64(0, 0);
  for (const std::string& user : copies) {
    EXPECT_TRUE(conn.Exec("INSERT INTO user_coupons (coupon_id, user_id, request_id)"
                          " VALUES ($1, $2, $3)",
                          {absl::StrCat(id), user, absl::StrCat(run, "-won-", user)})
                    .ok());
  }
  return id;
}

IssueResult SoldOutFor(const std::string& request_id, int64_t coupon_id,
                       const std::string& user_id) {
  IssueResult r = SoldOut(request_id);
  r.coupon_id = coupon_id;
  r.user_id = user_id;
  return r;
}

// What one SOLD_OUT proposal was stored as.
Outcome StoredAs(gateway::AnswerRecorder& recorder, const IssueResult& proposed) {
  absl::Notification done;
  Outcome outcome = Outcome::kQueued;
  recorder.Record(proposed, [&](absl::StatusOr<IssueResult> stored) {
    EXPECT_TRUE(stored.ok()) << stored.status();
    if (stored.ok()) outcome = stored->outcome;
    done.Notify();
  });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return outcome;
}

// The first SOLD_OUT of a sold-out coupon is checked against its copies (a
// holder's is stored ALREADY_ISSUED); after that batch the recorder reads
// every copy of the coupon once and hands them to the cache, and the
// SOLD_OUT of a user the cache knows holds none is stored without the probe.
// (The test shows the probe is skipped by giving a user a copy behind the
// cache's back, which the service never does: a sold-out coupon gains no
// copy.)
TEST(AnswerRecorderTest, ASoldOutCouponsCopiesAreReadOnceAndSpareTheProbe) {
  auto conn = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
  ASSERT_TRUE(conn.ok()) << conn.status() << "; " << testing::kStackHint;
  const std::string run = absl::StrCat("copies-", getpid(), "-", absl::ToUnixMicros(absl::Now()));
  const int64_t sold_out = CouponWithCopies(**conn, run, {"alice", "bob"}, 0);
  const int64_t with_stock = CouponWithCopies(**conn, run + "-stock", {"erin"}, 1);
  const int64_t too_big = CouponWithCopies(**conn, run + "-big", {"fay", "gus", "hal"}, 0);

  gateway::ResultCache cache;
  std::vector<int64_t> learned;
  RecorderConfig config;
  config.pg_dsn = PgDsn();
  config.batch_wait = absl::ZeroDuration();
  config.max_copies = 2;
  config.knows_no_copy = [&](int64_t coupon, const std::string& user) {
    return cache.HoldsNoCopy(coupon, user);
  };
  config.learn_copies = [&](int64_t coupon, const std::vector<UserCouponRow>& copies) {
    learned.push_back(coupon);
    cache.LearnAllHolders(coupon, copies);
  };
  AnswerRecorder recorder(config);

  // Checked: alice holds a copy.
  EXPECT_EQ(StoredAs(recorder, SoldOutFor(run + "-a", sold_out, "alice")),
            Outcome::kAlreadyIssued);
  EXPECT_EQ(StoredAs(recorder, SoldOutFor(run + "-e", with_stock, "erin")),
            Outcome::kAlreadyIssued);
  EXPECT_EQ(StoredAs(recorder, SoldOutFor(run + "-f", too_big, "fay")),
            Outcome::kAlreadyIssued);
  // Only the sold-out coupon within max_copies was read; the others are
  // still checked.
  EXPECT_EQ(learned, std::vector<int64_t>{sold_out});
  EXPECT_TRUE(cache.HoldsNoCopy(sold_out, "carol"));
  EXPECT_FALSE(cache.HoldsNoCopy(sold_out, "bob"));
  EXPECT_FALSE(cache.HoldsNoCopy(with_stock, "carol"));
  EXPECT_FALSE(cache.HoldsNoCopy(too_big, "carol"));

  ASSERT_TRUE((*conn)
                  ->Exec("INSERT INTO user_coupons (coupon_id, user_id, request_id)"
                         " VALUES ($1, 'dave', $2), ($3, 'ivy', $4)",
                         {absl::StrCat(sold_out), run + "-won-dave",
                          absl::StrCat(too_big), run + "-won-ivy"})
                  .ok());
  // Not probed: the cache knows every copy, and dave's is not among them.
  EXPECT_EQ(StoredAs(recorder, SoldOutFor(run + "-d", sold_out, "dave")), Outcome::kSoldOut);
  // Probed still: bob is a holder the cache knows of, and too_big's copies
  // were never read.
  EXPECT_EQ(StoredAs(recorder, SoldOutFor(run + "-b", sold_out, "bob")),
            Outcome::kAlreadyIssued);
  EXPECT_EQ(StoredAs(recorder, SoldOutFor(run + "-i", too_big, "ivy")),
            Outcome::kAlreadyIssued);
  EXPECT_EQ(learned, std::vector<int64_t>{sold_out});  // read once, not per batch
}

}  // namespace
}  // namespace coupon
