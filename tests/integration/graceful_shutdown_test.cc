// SIGTERM to the real binaries in the middle of a sale. Two coupon-gateway and
// two coupon-issuer-worker processes (built beside this test) run against the
// local stack on topics and a consumer group of their own, so nothing else
// decides their events. One gateway, then one worker, get SIGTERM while the
// sale goes on, and then:
// - the gateway answered every call it had taken (none cut off), ended its
//   open watch with UNAVAILABLE, and exited 0;
// - the worker exited 0 and its partitions moved to the other worker at
//   once, not after the session timeout;
// - every ACCEPTED request has exactly one result: once on the result topic,
//   once in the database, once on a watch; no copy beyond the stock, no user
//   twice.
// The processes' /metrics are read (and checked line by line) to see what
// they are doing.

#include <librdkafka/rdkafkacpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/wire/event_codec.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"
#include "tests/testing/child_process.h"
#include "tests/testing/exposition.h"
#include "tests/testing/http_client.h"
#include "tests/testing/kafka_topics.h"
#include "tests/testing/stack_env.h"
#include "tests/testing/wait.h"

namespace coupon::testing {
namespace {

constexpr int kPartitions = 10;
// Long, so that partitions moving after it would show; a clean leave moves
// them within a heartbeat (500 ms here).
constexpr int kSessionTimeoutMs = 45000;

// Half the coupons sell out early (the gateways then answer SOLD_OUT from
// memory), half last the whole test, so events flow when the worker stops.
constexpr int kCoupons = 10;
constexpr int64_t kSmallStock = 20;
constexpr int64_t kLargeStock = 100000;
constexpr int kUsersPerWave = 8;  // per coupon
// The calls open on the first gateway when it gets SIGTERM, all for one
// coupon with fewer copies than calls.
constexpr int kInFlight = 100;
constexpr int64_t kInFlightStock = 60;

// A consumer of the result topic with no group: the end offsets now, and
// later every result between them and the (then) end.
class ResultTopicReader {
 public:
  ResultTopicReader() {
    std::string error;
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    conf->set("bootstrap.servers", KafkaBrokers(), error);
    conf->set("group.id", "coupon-shutdown-test-reader", error);  // never joined
    conf->set("enable.auto.commit", "false", error);
    conf->set("enable.partition.eof", "false", error);
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
    CHECK(consumer_) << error;
    start_ = EndOffsets();
  }
  ~ResultTopicReader() { consumer_->close(); }

  // Every result published since construction, in topic order per partition.
  std::vector<IssueResult> ReadAll() {
    const std::vector<int64_t> end = EndOffsets();
    std::vector<RdKafka::TopicPartition*> assignment;
    int64_t left = 0;
    for (int p = 0; p < kPartitions; ++p) {
      assignment.push_back(RdKafka::TopicPartition::create(TestKafka().result_topic, p, start_[p]));
      left += end[p] - start_[p];
    }
    consumer_->assign(assignment);
    RdKafka::TopicPartition::destroy(assignment);
    std::vector<IssueResult> out;
    const absl::Time until = absl::Now() + absl::Seconds(60);
    while (left > 0 && absl::Now() < until) {
      std::unique_ptr<RdKafka::Message> msg(consumer_->consume(200));
      if (msg->err() != RdKafka::ERR_NO_ERROR) continue;
      if (msg->offset() >= end[msg->partition()]) continue;
      --left;
      absl::StatusOr<IssueResult> r = DecodeIssueResult(absl::string_view(
          static_cast<const char*>(msg->payload()), msg->len()));
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) out.push_back(*r);
    }
    EXPECT_EQ(left, 0) << "results not read back from " << TestKafka().result_topic;
    consumer_->unassign();
    return out;
  }

 private:
  std::vector<int64_t> EndOffsets() {
    std::vector<int64_t> ends;
    for (int p = 0; p < kPartitions; ++p) {
      int64_t low = 0, high = 0;
      // A new topic's leaders may take a moment to answer.
      const absl::Time until = absl::Now() + absl::Seconds(30);
      RdKafka::ErrorCode err;
      while ((err = consumer_->query_watermark_offsets(TestKafka().result_topic, p, &low, &high,
                                                       5000)) != RdKafka::ERR_NO_ERROR &&
             absl::Now() < until) {
        absl::SleepFor(absl::Milliseconds(200));
      }
      EXPECT_EQ(err, RdKafka::ERR_NO_ERROR) << TestKafka().result_topic << "/" << p;
      ends.push_back(high);
    }
    return ends;
  }

  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::vector<int64_t> start_;
};

/// A service process and its ports.
struct Service {
  std::string name;
  std::unique_ptr<ChildProcess> process;
  int metrics_port = 0;
  int grpc_port = 0;  // gateways only

  // One sample of the process's /metrics; nullopt when it does not answer or
  // has no such sample. Every scrape is checked line by line.
  std::optional<double> Metric(const std::string& metric, const LabelSet& labels = {}) const {
    HttpAnswer a = HttpGet(metrics_port, "/metrics");
    if (a.status != 200) return std::nullopt;
    return FindSample(ParseExposition(a.body), metric, labels);
  }
  double MetricOr0(const std::string& metric, const LabelSet& labels = {}) const {
    return Metric(metric, labels).value_or(0);
  }
};

class GracefulShutdownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "coupon-shutdown-", getpid(), "/");
    mkdir(dir_.c_str(), 0755);
    auto db = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
    ASSERT_TRUE(db.ok()) << db.status() << "; " << kStackHint;
    db_ = std::move(*db);
  }

  void TearDown() override {
    for (Service& s : services_) {
      if (!s.process) continue;
      if (HasFailure()) LOG(INFO) << s.name << " log:\n" << s.process->LogTail(40);
      s.process.reset();  // killed if it still runs
    }
  }

  // A service of the test's, owned by the fixture so that TearDown, which
  // runs after the test body has returned, still finds it.
  Service& NewService() { return services_.emplace_back(); }

  void Start(Service& s, const std::string& binary, std::vector<std::string> args) {
    s.metrics_port = FreeLoopbackPort();
    args.push_back(absl::StrCat("--metrics_port=", s.metrics_port));
    args.push_back(absl::StrCat("--kafka_brokers=", KafkaBrokers()));
    args.push_back(absl::StrCat("--pg_dsn=", PgDsn()));
    args.push_back(absl::StrCat("--request_topic=", TestKafka().request_topic));
    args.push_back(absl::StrCat("--result_topic=", TestKafka().result_topic));
    auto p = ChildProcess::Start(binary, args, dir_ + s.name + ".log");
    ASSERT_TRUE(p.ok()) << p.status();
    s.process = std::move(*p);
  }

  void StartWorker(Service& s, const std::string& name) {
    s.name = name;
    Start(s, COUPON_WORKER_BIN,
          {absl::StrCat("--group_id=", TestKafka().group),
           absl::StrCat("--dead_letter_topic=", TestKafka().dead_letter_topic),
           absl::StrCat("--session_timeout_ms=", kSessionTimeoutMs),
           "--kafka_properties=heartbeat.interval.ms=500"});
  }

  void StartGateway(Service& s, const std::string& name, int linger_ms) {
    s.name = name;
    s.grpc_port = FreeLoopbackPort();
    Start(s, COUPON_GATEWAY_BIN,
          {absl::StrCat("--listen=127.0.0.1:", s.grpc_port),
           absl::StrCat("--kafka_linger_ms=", linger_ms), "--shutdown_grace=20s",
           "--result_replay_window=1m"});
  }

  static std::unique_ptr<v1::CouponService::Stub> StubOf(const Service& gateway) {
    return v1::CouponService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", gateway.grpc_port),
                            grpc::InsecureChannelCredentials()));
  }

  int64_t NewCoupon(int64_t stock) {
    auto r = db_->Exec(
        "INSERT INTO coupons (name, total_quantity, remaining_quantity) "
        "VALUES ('shutdown test', $1::bigint, $1::bigint) RETURNING coupon_id",
        {absl::StrCat(stock)});
    CHECK(r.ok()) << r.status();
    return r->GetInt64(0, 0);
  }

  std::string dir_;
  std::unique_ptr<pg::Connection> db_;
  std::deque<Service> services_;  // stable references
};

TEST_F(GracefulShutdownTest, SigtermMidSaleLosesNothingAndMovesPartitionsAtOnce) {
  TestKafka();  // the run's own topics and group, made now
  ResultTopicReader results_topic;

  Service& w1 = NewService();
  Service& w2 = NewService();
  Service& g1 = NewService();
  Service& g2 = NewService();
  ASSERT_NO_FATAL_FAILURE(StartWorker(w1, "worker-1"));
  ASSERT_NO_FATAL_FAILURE(StartWorker(w2, "worker-2"));
  auto assigned = [](const Service& w) {
    return w.MetricOr0("coupon_worker_assigned_partitions");
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        return HttpGet(w1.metrics_port, "/readyz").status == 200 &&
               HttpGet(w2.metrics_port, "/readyz").status == 200 &&
               assigned(w1) > 0 && assigned(w2) > 0 &&
               assigned(w1) + assigned(w2) == kPartitions;
      },
      absl::Seconds(90), "the workers share the partitions"))
      << kStackHint;
  EXPECT_EQ(HttpGet(w1.metrics_port, "/healthz").status, 200);

  // The first gateway batches its events for a second, so calls are still
  // waiting for their acknowledgement when it gets SIGTERM.
  ASSERT_NO_FATAL_FAILURE(StartGateway(g1, "gateway-1", /*linger_ms=*/1000));
  ASSERT_NO_FATAL_FAILURE(StartGateway(g2, "gateway-2", /*linger_ms=*/2));
  ASSERT_TRUE(WaitFor(
      [&] {
        return g1.MetricOr0("coupon_gateway_serving") == 1 &&
               g2.MetricOr0("coupon_gateway_serving") == 1;
      },
      absl::Seconds(60), "both gateways serve"));
  // The HTTP twin of the health service, for probes that cannot speak TLS.
  EXPECT_EQ(HttpGet(g1.metrics_port, "/readyz").status, 200);
  EXPECT_EQ(HttpGet(g1.metrics_port, "/healthz").status, 200);
  auto stub1 = StubOf(g1);
  auto stub2 = StubOf(g2);

  std::vector<int64_t> coupons;
  std::map<int64_t, int64_t> stock;
  for (int c = 0; c < kCoupons; ++c) {
    coupons.push_back(NewCoupon(c % 2 ? kLargeStock : kSmallStock));
    stock[coupons.back()] = c % 2 ? kLargeStock : kSmallStock;
  }
  const int64_t in_flight_coupon = NewCoupon(kInFlightStock);
  stock[in_flight_coupon] = kInFlightStock;
  const std::string run = absl::StrCat("sd", in_flight_coupon);

  std::mutex mu;
  std::map<std::string, std::pair<int64_t, std::string>> requests;  // id -> (coupon, user)
  std::set<std::string> accepted;
  std::map<std::string, v1::IssueOutcome> answered;  // final outcomes from IssueCoupon
  auto record = [&](int64_t coupon, const IssueCall& call) {
    std::lock_guard<std::mutex> lock(mu);
    requests[call.request_id] = {coupon, call.user_id};
    if (call.response.outcome() == v1::ISSUE_OUTCOME_ACCEPTED) {
      accepted.insert(call.request_id);
    } else {
      answered[call.request_id] = call.response.outcome();
    }
  };

  // The sale: waves of new users on every coupon through the second gateway,
  // until told to stop.
  std::atomic<bool> stop{false};
  std::atomic<int> waves{0};
  std::atomic<bool> traffic_ended{false};
  std::thread traffic([&] {
    absl::Cleanup ended = [&] { traffic_ended.store(true); };
    for (int wave = 0; !stop.load(); ++wave) {
      std::vector<std::vector<IssueCall>> calls(kCoupons);
      std::vector<std::thread> senders;
      for (int c = 0; c < kCoupons; ++c) {
        for (int u = 0; u < kUsersPerWave; ++u) {
          const std::string user = absl::StrCat(run, "-c", c, "-w", wave, "-u", u);
          calls[c].push_back({user, user, {}, {}});
        }
        senders.emplace_back([&, c] { IssueConcurrently(*stub2, coupons[c], calls[c]); });
      }
      for (auto& t : senders) t.join();
      for (int c = 0; c < kCoupons; ++c) {
        for (const IssueCall& call : calls[c]) {
          EXPECT_TRUE(call.status.ok()) << call.request_id << ": "
                                        << call.status.error_message();
          if (call.status.ok()) record(coupons[c], call);
        }
      }
      waves++;
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  // However the test leaves, the traffic stops and is joined first.
  absl::Cleanup join_traffic = [&] {
    stop.store(true);
    traffic.join();
  };
  // A wave takes at most its calls' 30 s deadline.
  auto wait_waves = [&](int n) {
    const int target = waves.load() + n;
    ::testing::AssertionResult done = WaitFor(
        [&] { return waves.load() >= target || traffic_ended.load(); }, absl::Seconds(120),
        absl::StrCat(n, " more waves of traffic (wave ", waves.load(), " now)"));
    if (done && waves.load() < target) {
      return ::testing::AssertionFailure() << "the traffic ended after " << waves.load() << " waves";
    }
    return done;
  };
  ASSERT_TRUE(wait_waves(2));

  // --- SIGTERM to the first gateway, with a watch open and calls in flight.
  const std::string never = absl::StrCat(run, "-never-decided");
  WatchOutcome watch;
  std::thread watcher([&] { watch = WatchToEnd(*stub1, {never}, absl::Seconds(60)); });
  absl::Cleanup join_watcher = [&] { watcher.join(); };  // the watch's deadline bounds it
  ASSERT_TRUE(WaitFor([&] { return g1.MetricOr0("coupon_gateway_watch_streams") >= 1; },
                      absl::Seconds(30), "gateway-1 counts the open watch"));
  std::vector<IssueCall> in_flight;
  for (int u = 0; u < kInFlight; ++u) {
    const std::string user = absl::StrCat(run, "-g1-u", u);
    in_flight.push_back({user, user, {}, {}});
  }
  std::thread flight([&] { IssueConcurrently(*stub1, in_flight_coupon, in_flight); });
  double open_calls = 0;
  // Not asserted: SIGTERM goes after 5 s with what is open by then, and the
  // checks below say whether any call was.
  (void)WaitFor(
      [&] {
        open_calls = g1.MetricOr0("coupon_gateway_issue_in_flight");
        return open_calls >= kInFlight;
      },
      absl::Seconds(5), "every call open at gateway-1");
  g1.process->Signal(SIGTERM);
  flight.join();
  std::move(join_watcher).Invoke();
  // Calls that reached the gateway after its shutdown began were refused:
  // the client tries another gateway with the same request id, as clients
  // are told to.
  int ok_at_g1 = 0;
  std::vector<IssueCall> retries;
  for (const IssueCall& call : in_flight) {
    if (call.status.ok()) {
      ++ok_at_g1;
      record(in_flight_coupon, call);
    } else {
      EXPECT_EQ(call.status.error_code(), grpc::StatusCode::UNAVAILABLE)
          << call.request_id << ": " << call.status.error_message();
      retries.push_back({call.user_id, call.request_id, {}, {}});
    }
  }
  LOG(INFO) << "gateway-1 had " << open_calls << " calls open at SIGTERM; "
            << ok_at_g1 << " of " << kInFlight << " answered, " << retries.size()
            << " refused";
  EXPECT_GT(open_calls, 0) << "no call was open at SIGTERM: nothing was tested";
  EXPECT_GE(ok_at_g1, open_calls)
      << "calls open at SIGTERM were cut off instead of answered";
  IssueConcurrently(*stub2, in_flight_coupon, retries);
  for (const IssueCall& call : retries) {
    EXPECT_TRUE(call.status.ok()) << call.request_id << ": " << call.status.error_message();
    if (call.status.ok()) record(in_flight_coupon, call);
  }
  EXPECT_EQ(watch.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << watch.status.error_message();
  EXPECT_THAT(watch.status.error_message(), ::testing::HasSubstr("another gateway"));
  absl::StatusOr<int> g1_exit = g1.process->Wait(absl::Seconds(60));
  ASSERT_TRUE(g1_exit.ok()) << g1_exit.status();
  EXPECT_EQ(*g1_exit, 0) << "gateway-1 exit status";

  // --- SIGTERM to the first worker while the sale goes on, right after it
  // finished a batch.
  ASSERT_TRUE(wait_waves(1));
  const double batches = w1.MetricOr0("coupon_worker_batch_events_count");
  ASSERT_TRUE(WaitFor(
      [&] { return w1.MetricOr0("coupon_worker_batch_events_count") > batches; },
      absl::Seconds(30), "worker-1 decides a batch (else the test would not stop it mid-sale)"));
  const absl::Time sigterm = absl::Now();
  w1.process->Signal(SIGTERM);
  absl::StatusOr<int> w1_exit = w1.process->Wait(absl::Seconds(60));
  ASSERT_TRUE(w1_exit.ok()) << w1_exit.status();
  EXPECT_EQ(*w1_exit, 0) << "worker-1 exit status";
  // A worker that leaves the group is gone from it at once; one that just
  // vanished stays a member until its session (45 s) times out, and its
  // partitions wait that long.
  TopicAdmin admin(KafkaBrokers());
  absl::StatusOr<std::vector<std::string>> members = admin.GroupMembers(TestKafka().group);
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_EQ(members->size(), 1u)
      << "worker-1 exited but is still a member of the group: it did not leave it ("
      << absl::StrJoin(*members, ", ") << ")";
  EXPECT_TRUE(WaitFor([&] { return assigned(w2) == kPartitions; },
                      absl::Milliseconds(kSessionTimeoutMs) + absl::Seconds(15),
                      "worker-2 owns every partition"));
  LOG(INFO) << "worker-1's partitions reached worker-2 " << absl::Now() - sigterm
            << " after SIGTERM";
  size_t accepted_at_handover;
  {
    std::lock_guard<std::mutex> lock(mu);
    accepted_at_handover = accepted.size();
  }
  ASSERT_TRUE(wait_waves(2));
  std::move(join_traffic).Invoke();
  EXPECT_GT(accepted.size(), accepted_at_handover) << "no request was accepted after the handover";
  ASSERT_FALSE(HasFatalFailure());

  // --- Every accepted request has exactly one result.
  std::map<std::string, int> on_topic;
  for (const IssueResult& r : results_topic.ReadAll()) {
    if (absl::StartsWith(r.request_id, run)) ++on_topic[r.request_id];
  }
  std::map<std::string, v1::IssueOutcome> decided;
  std::vector<std::string> ids(accepted.begin(), accepted.end());
  for (size_t i = 0; i < ids.size(); i += 1000) {
    std::vector<std::string> chunk(ids.begin() + i,
                                   ids.begin() + std::min(ids.size(), i + 1000));
    WatchOutcome w = WatchToEnd(*stub2, chunk, absl::Seconds(120));
    ASSERT_TRUE(w.status.ok()) << w.status.error_message();
    for (const auto& r : w.results) {
      EXPECT_TRUE(decided.emplace(r.request_id(), r.outcome()).second)
          << "two results for " << r.request_id();
    }
  }
  const size_t distinct_on_topic = on_topic.size();
  for (const std::string& id : accepted) {
    EXPECT_EQ(on_topic[id], 1) << id << " has " << on_topic[id]
                               << " results on the result topic";
    EXPECT_TRUE(decided.count(id)) << id << " was accepted but has no result";
  }
  EXPECT_EQ(distinct_on_topic, accepted.size()) << "results for requests never accepted";
  for (const auto& [id, outcome] : answered) decided.emplace(id, outcome);
  EXPECT_EQ(decided.size(), requests.size()) << "a request has no final outcome";
  // Every request's result is stored: the worker's decisions, and the
  // answers the gateways gave themselves, stored before they were given.
  EXPECT_EQ(QueryInt(*db_, "SELECT count(*) FROM issue_results WHERE request_id LIKE $1",
                     {absl::StrCat(run, "-%")}),
            static_cast<int64_t>(decided.size()));

  // --- No copy beyond the stock, no user twice.
  std::map<int64_t, std::set<std::string>> users, winners;
  for (const auto& [id, target] : requests) users[target.first].insert(target.second);
  for (const auto& [id, outcome] : decided) {
    if (outcome != v1::ISSUE_OUTCOME_ISSUED) continue;
    const auto& [coupon, user] = requests[id];
    EXPECT_TRUE(winners[coupon].insert(user).second) << user << " won twice";
  }
  for (const auto& [coupon, copies] : stock) {
    const std::string id = absl::StrCat(coupon);
    const int64_t expected =
        std::min<int64_t>(copies, static_cast<int64_t>(users[coupon].size()));
    EXPECT_EQ(static_cast<int64_t>(winners[coupon].size()), expected) << "coupon " << coupon;
    EXPECT_EQ(QueryInt(*db_, "SELECT count(*) FROM user_coupons WHERE coupon_id = $1", {id}),
              expected);
    EXPECT_EQ(QueryInt(*db_, "SELECT remaining_quantity FROM coupons WHERE coupon_id = $1",
                       {id}),
              copies - expected);
  }

  // What the survivors say about it.
  EXPECT_EQ(w2.MetricOr0("coupon_worker_republished_total"), 0)
      << "worker-2 decided events again: worker-1 left without committing";
  EXPECT_GT(w2.MetricOr0("coupon_worker_decisions_total", {{"outcome", "ISSUED"}}), 0);
  EXPECT_GT(g2.MetricOr0("coupon_gateway_issue_requests_total",
                         {{"outcome", "ACCEPTED"}, {"code", "OK"}}),
            0);
  EXPECT_GT(g2.MetricOr0("coupon_kafka_producer_ack_latency_seconds_count",
                         {{"topic", TestKafka().request_topic}}),
            0);
  LOG(INFO) << "shutdown test: " << waves.load() << " waves, " << requests.size()
            << " requests, " << accepted.size() << " accepted";

  for (Service* s : {&g2, &w2}) {
    s->process->Signal(SIGTERM);
    absl::StatusOr<int> code = s->process->Wait(absl::Seconds(60));
    ASSERT_TRUE(code.ok()) << s->name << ": " << code.status();
    EXPECT_EQ(*code, 0) << s->name << " exit status";
  }
}

}  // namespace
}  // namespace coupon::testing
