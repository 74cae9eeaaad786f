// The gateway's AnswerRecorder against the real PostgreSQL: answers that
// arrive within --answer_batch_wait of each other share one commit.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
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

}  // namespace
}  // namespace coupon
