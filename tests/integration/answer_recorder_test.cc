// The gateway's AnswerRecorder against the real PostgreSQL: answers that
// arrive within --answer_batch_wait of each other share one commit, and an
// id that holds a result keeps it without costing its batch the others.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/metrics/metrics.h"
#include "common/pg/pg.h"
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

}  // namespace
}  // namespace coupon
