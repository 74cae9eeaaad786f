// A worker frozen inside its transaction (SIGSTOP: in production a paused VM,
// a stalled node, a cut-off host) must not hold its coupons hostage
// (issue 10, item 4). The real coupon-issuer-worker binary is stopped while
// its PostgreSQL session holds a coupon's row lock inside a transaction; a
// second worker takes its partitions and must decide that coupon's new
// requests while the first is still frozen. Woken up, the frozen worker
// commits nothing: every request has one result and no copy is issued twice.

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"
#include "tests/testing/child_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/stack_env.h"
#include "tests/testing/wait.h"

namespace coupon::testing {
namespace {

constexpr int kSessionTimeoutMs = 6000;

// The frozen worker's session, seen from the server.
std::string SessionState(pg::Connection& db, const std::string& application) {
  auto r = db.Exec(
      "SELECT coalesce(state, '') || '/' || coalesce(wait_event_type, '') || '/' ||"
      " (xact_start IS NOT NULL)::text FROM pg_stat_activity WHERE application_name = $1",
      {application});
  if (!r.ok() || r->rows() == 0) return "none";
  return std::string(r->Get(0, 0));
}

TEST(FrozenWorkerTest, ANewOwnerDecidesWhileTheFrozenWorkerHoldsNothing) {
  IssuanceStack stack;
  stack.AddGateway();
  const std::string dir = absl::StrCat(::testing::TempDir(), "coupon-frozen-", getpid(), "/");
  mkdir(dir.c_str(), 0755);

  // The first worker, alone in the group, as a process of its own. Its
  // session settings come from the environment, as in Kubernetes.
  const std::string application = absl::StrCat("coupon-frozen-worker-", getpid());
  const std::string dsn = absl::StrCat(PgDsn(), absl::StrContains(PgDsn(), "?") ? "&" : "?",
                                       "application_name=", application);
  setenv("PG_IDLE_IN_TRANSACTION_TIMEOUT", "3s", 1);
  setenv("PG_LOCK_TIMEOUT", "2s", 1);
  auto frozen = ChildProcess::Start(
      COUPON_WORKER_BIN,
      {absl::StrCat("--kafka_brokers=", KafkaBrokers()), absl::StrCat("--pg_dsn=", dsn),
       absl::StrCat("--group_id=", TestKafka().group),
       absl::StrCat("--request_topic=", TestKafka().request_topic),
       absl::StrCat("--result_topic=", TestKafka().result_topic),
       absl::StrCat("--dead_letter_topic=", TestKafka().dead_letter_topic),
       absl::StrCat("--session_timeout_ms=", kSessionTimeoutMs),
       absl::StrCat("--metrics_port=", FreeLoopbackPort()),
       "--kafka_properties=heartbeat.interval.ms=500"},
      dir + "frozen-worker.log");
  unsetenv("PG_IDLE_IN_TRANSACTION_TIMEOUT");
  unsetenv("PG_LOCK_TIMEOUT");
  ASSERT_TRUE(frozen.ok()) << frozen.status();
  struct Continue {  // never leave a stopped process behind
    ChildProcess* p;
    ~Continue() {
      if (p->Running()) {
        p->Signal(SIGCONT);
        LOG(INFO) << "frozen worker log:\n" << p->LogTail(30);
      }
    }
  } keep_going{frozen->get()};

  const int64_t coupon = stack.CreateCoupon(10, "held hostage").coupon_id();
  const std::string c = absl::StrCat(coupon);
  const std::string run = absl::StrCat("frozen-", coupon);
  std::vector<IssueCall> first = {{run + "-u0", run + "-r0", {}, {}}};
  IssueConcurrently(stack.stub(), coupon, first);
  ASSERT_EQ(first[0].response.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
  WatchOutcome warm = WatchToEnd(stack.stub(), {run + "-r0"});
  ASSERT_EQ(warm.results.size(), 1u) << "the first worker decides nothing";

  // Hold the coupon's row, so the worker's next transaction waits on it;
  // stop the worker there; let go: its session gets the lock and sits in
  // its transaction, holding it, for a client that does not answer.
  auto holder = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
  ASSERT_TRUE(holder.ok()) << holder.status();
  ASSERT_TRUE((*holder)->Exec("BEGIN").ok());
  ASSERT_TRUE(
      (*holder)->Exec("SELECT 1 FROM coupons WHERE coupon_id = $1 FOR UPDATE", {c}).ok());
  std::vector<IssueCall> held = {{run + "-held", run + "-held", {}, {}}};
  IssueConcurrently(stack.stub(), coupon, held);
  ASSERT_EQ(held[0].response.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
  ASSERT_TRUE(WaitFor([&] { return SessionState(stack.db(), application) == "active/Lock/true"; },
                      absl::Seconds(20), "the worker's transaction waiting for the coupon's lock"));
  (*frozen)->Signal(SIGSTOP);
  ASSERT_TRUE((*holder)->Exec("COMMIT").ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string state = SessionState(stack.db(), application);
        return absl::StartsWith(state, "idle in transaction/") &&
               absl::EndsWith(state, "/true");
      },
      absl::Seconds(10), "the frozen worker's session idle inside its transaction"));
  const absl::Time stopped = absl::Now();

  // A second worker joins; the frozen one's partitions reach it after the
  // session timeout. The coupon's new requests must be decided meanwhile.
  stack.AddWorker();
  std::vector<IssueCall> later;
  std::vector<std::string> ids = {run + "-held"};
  for (int i = 1; i <= 5; ++i) {
    later.push_back({absl::StrCat(run, "-u", i), absl::StrCat(run, "-r", i), {}, {}});
    ids.push_back(later.back().request_id);
  }
  IssueConcurrently(stack.stub(), coupon, later);
  for (const IssueCall& call : later) {
    ASSERT_EQ(call.response.outcome(), v1::ISSUE_OUTCOME_ACCEPTED)
        << call.status.error_message();
  }
  WatchOutcome decided = WatchToEnd(stack.stub(), ids, absl::Seconds(60));
  LOG(INFO) << "frozen worker: " << decided.results.size() << " of " << ids.size()
            << " decided by the new owner " << absl::Now() - stopped << " after the stop";
  EXPECT_TRUE(decided.status.ok())
      << "the coupon's requests waited on the frozen worker's lock: "
      << decided.status.error_message();
  EXPECT_EQ(decided.results.size(), ids.size());
  ASSERT_TRUE((*frozen)->Running()) << "the frozen worker was to stay frozen meanwhile";
  EXPECT_EQ(SessionState(stack.db(), application), "none")
      << "the server did not end the frozen worker's session";

  // Woken, it finds its transaction gone and commits nothing of it.
  (*frozen)->Signal(SIGCONT);
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(QueryInt(stack.db(), "SELECT count(*) FROM user_coupons WHERE coupon_id = $1", {c}),
            7);
  EXPECT_EQ(QueryInt(stack.db(),
                     "SELECT count(DISTINCT user_id) FROM user_coupons WHERE coupon_id = $1",
                     {c}),
            7);
  EXPECT_EQ(QueryInt(stack.db(), "SELECT remaining_quantity FROM coupons WHERE coupon_id = $1",
                     {c}),
            3);
  EXPECT_EQ(QueryInt(stack.db(),
                     "SELECT count(*) FROM issue_results WHERE coupon_id = $1 AND outcome = "
                     "'ISSUED'",
                     {c}),
            7);
  // Its log says why its transaction failed.
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string log = (*frozen)->LogTail(200);
        return absl::StrContains(log, "idle-in-transaction") ||
               absl::StrContains(log, "server closed the connection");
      },
      absl::Seconds(20), "the woken worker reporting its lost transaction"));
}

}  // namespace
}  // namespace coupon::testing
