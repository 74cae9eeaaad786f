#include "tests/integration/issuance_stack.h"

#include <grpcpp/support/client_interceptor.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gtest/gtest.h"
#include "tests/testing/kafka_topics.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

// Set once TestKafka() made the topics; DeleteTestTopics deletes them then.
std::atomic<bool> test_topics_made{false};

/// Deletes the run's topics after the last test of the program (gtest calls
/// TearDown on the main thread once every test, and so every gateway and
/// worker, is done).
class DeleteTestTopics : public ::testing::Environment {
 public:
  void TearDown() override {
    if (!test_topics_made.load()) return;
    const KafkaNames& names = TestKafka();
    TopicAdmin admin(KafkaBrokers());
    absl::Status s =
        admin.Delete({names.request_topic, names.result_topic, names.dead_letter_topic});
    if (!s.ok()) LOG(WARNING) << "the test's topics are left on the broker: " << s;
  }
};
// Registered before main, as gtest wants its environments.
::testing::Environment* const kDeleteTestTopics =
    ::testing::AddGlobalTestEnvironment(new DeleteTestTopics);

/// Adds the admin token to every call of the channel it is installed on.
class BearerInterceptor final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert(
          {"authorization", absl::StrCat("Bearer ", AdminToken())});
    }
    methods->Proceed();
  }
};

class BearerInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new BearerInterceptor();
  }
};

}  // namespace

const KafkaNames& TestKafka() {
  static const KafkaNames names = [] {
    KafkaNames n{RunPrefix("request"), RunPrefix("result"), RunPrefix("request.dlq"),
                 RunPrefix("group")};
    TopicAdmin admin(KafkaBrokers());
    absl::StatusOr<int> swept = SweepDeadRunTopics(admin);
    if (!swept.ok()) LOG(WARNING) << "topics of dead test runs not swept: " << swept.status();
    absl::Status made = admin.Create({{n.request_topic, kTestPartitions},
                                      {n.result_topic, kTestPartitions},
                                      {n.dead_letter_topic, 1}});
    CHECK(made.ok()) << made << "; " << kStackHint;
    test_topics_made.store(true);
    LOG(INFO) << "this test's topics: " << n.request_topic << ", " << n.result_topic << ", "
              << n.dead_letter_topic << "; group " << n.group;
    return n;
  }();
  return names;
}

const std::string& AdminToken() {
  static const std::string token = absl::StrCat(
      "test-admin-token-", getpid(), "-", absl::ToUnixNanos(absl::Now()));
  return token;
}

const std::string& AdminTokensFile() {
  static const std::string path = [] {
    std::string p = ::testing::TempDir() + "coupon-admin-tokens-XXXXXX";
    const int fd = mkstemp(p.data());
    CHECK_GE(fd, 0) << "cannot make " << p;
    close(fd);
    std::ofstream(p) << "# the integration tests' admin\n" << AdminToken() << "\n";
    return p;
  }();
  // Registered after `path` is made, so it runs before `path` is destroyed.
  static const bool removed_at_exit =
      std::atexit([] { std::remove(AdminTokensFile().c_str()); }) == 0;
  (void)removed_at_exit;
  return path;
}

std::shared_ptr<grpc::Channel> AdminChannel(
    const std::string& target,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(std::make_unique<BearerInterceptorFactory>());
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      target, credentials, grpc::ChannelArguments(), std::move(interceptors));
}

WorkerThread::WorkerThread(const worker::WorkerConfig& config) {
  auto w = worker::IssuerWorker::Create(config);
  CHECK(w.ok()) << w.status() << "; " << kStackHint;
  worker_ = std::move(*w);
  thread_ = std::thread([this] {
    absl::Status s = worker_->Run(stop_);
    CHECK(s.ok()) << s;
  });
}

WorkerThread::~WorkerThread() {
  stop_.store(true);
  thread_.join();
}

IssuanceStack::~IssuanceStack() {
  workers_.clear();
  stubs_.clear();
  gateways_.clear();
}

int IssuanceStack::AddGateway(
    absl::Duration result_replay_window, const std::string& issuer,
    const std::function<void(gateway::GatewayConfig&)>& adjust) {
  gateway::GatewayConfig config;
  config.issuer = issuer;
  config.redis_addr = RedisAddr();
  config.listen = "127.0.0.1:0";
  config.kafka_brokers = KafkaBrokers();
  config.pg_dsn = PgDsn();
  config.result_replay_window = result_replay_window;
  config.admin.tokens_file = AdminTokensFile();
  config.user_rate_limit.per_second = 0;
  config.metrics_port = 0;  // tests run side by side: no fixed ports
  if (issuer == "kafka") {
    config.request_topic = TestKafka().request_topic;
    config.result_topic = TestKafka().result_topic;
    config.worker_group = TestKafka().group;
  }
  if (adjust) adjust(config);
  auto server = gateway::GatewayServer::Start(config);
  CHECK(server.ok()) << server.status() << "; " << kStackHint;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (!(*server)->ready()) {
    CHECK(absl::Now() < until) << "gateway not ready after 30s; " << kStackHint;
    absl::SleepFor(absl::Milliseconds(20));
  }
  stubs_.push_back(v1::CouponService::NewStub(
      AdminChannel(absl::StrCat("127.0.0.1:", (*server)->port()))));
  gateways_.push_back(std::move(*server));
  if (!db_) {
    auto db = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
    CHECK(db.ok()) << db.status() << "; " << kStackHint;
    db_ = std::move(*db);
  }
  return static_cast<int>(gateways_.size()) - 1;
}

void IssuanceStack::StopGateway(int index) { gateways_.at(index).reset(); }

void IssuanceStack::AddWorker(const std::function<void(worker::WorkerConfig&)>& adjust) {
  worker::WorkerConfig config;
  config.kafka_brokers = KafkaBrokers();
  config.pg_dsn = PgDsn();
  // Topics and a group of this test's own: no other worker decides its
  // events. Short sessions so a crashed test's members do not hold
  // partitions for long.
  config.group_id = TestKafka().group;
  config.request_topic = TestKafka().request_topic;
  config.result_topic = TestKafka().result_topic;
  config.dead_letter_topic = TestKafka().dead_letter_topic;
  config.session_timeout_ms = 6000;
  config.metrics_port = 0;
  if (adjust) adjust(config);
  workers_.push_back(std::make_unique<WorkerThread>(config));
}

void IssuanceStack::StopWorker() {
  CHECK(!workers_.empty());
  workers_.erase(workers_.begin());
}

void IssuanceStack::WaitForAssignment(int partitions) {
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (true) {
    int total = 0;
    bool each = true;
    for (const auto& w : workers_) {
      total += w->owned_partitions();
      each = each && w->owned_partitions() > 0;
    }
    if (total == partitions && each) return;
    CHECK(absl::Now() < until) << "workers own " << total << " of "
                               << partitions << " partitions after 60s";
    absl::SleepFor(absl::Milliseconds(50));
  }
}

v1::Coupon IssuanceStack::CreateCoupon(int64_t quantity,
                                       const std::string& name) {
  grpc::ClientContext ctx;
  v1::CreateCouponRequest req;
  req.set_name(name);
  req.set_total_quantity(quantity);
  v1::Coupon coupon;
  grpc::Status s = stub().CreateCoupon(&ctx, req, &coupon);
  CHECK(s.ok()) << s.error_message();
  return coupon;
}

void IssueConcurrently(v1::CouponService::Stub& stub, int64_t coupon_id,
                       std::vector<IssueCall>& calls, absl::Duration deadline) {
  struct InFlight {
    grpc::ClientContext ctx;
    v1::IssueCouponRequest req;
  };
  std::vector<std::unique_ptr<InFlight>> flights;
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  for (IssueCall& call : calls) {
    auto f = std::make_unique<InFlight>();
    f->ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    f->req.set_coupon_id(coupon_id);
    f->req.set_user_id(call.user_id);
    f->req.set_request_id(call.request_id);
    stub.async()->IssueCoupon(&f->ctx, &f->req, &call.response,
                              [&, c = &call](grpc::Status s) {
                                std::lock_guard<std::mutex> lock(mu);
                                c->status = std::move(s);
                                ++done;
                                cv.notify_all();
                              });
    flights.push_back(std::move(f));
  }
  // gRPC answers every call by its deadline; a call still open well after
  // it is a bug the test must not wait for. CHECK: the calls write into
  // `calls` and `flights`, which must outlive them.
  std::unique_lock<std::mutex> lock(mu);
  const absl::Duration grace = absl::Seconds(30);
  CHECK(cv.wait_for(lock, absl::ToChronoSeconds(deadline + grace),
                    [&] { return done == calls.size(); }))
      << calls.size() - done << " of " << calls.size() << " IssueCoupon calls unanswered "
      << grace << " after their deadline";
}

WatchOutcome WatchToEnd(v1::CouponService::Stub& stub,
                        const std::vector<std::string>& request_ids,
                        absl::Duration deadline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  v1::WatchIssueResultsRequest req;
  for (const auto& id : request_ids) req.add_request_ids(id);
  auto reader = stub.WatchIssueResults(&ctx, req);
  WatchOutcome out;
  v1::IssueResult result;
  while (reader->Read(&result)) out.results.push_back(result);
  out.status = reader->Finish();
  return out;
}

int64_t QueryInt(pg::Connection& db, const std::string& sql,
                 const std::vector<pg::Param>& params) {
  auto r = db.Exec(sql, params);
  CHECK(r.ok()) << r.status();
  CHECK_EQ(r->rows(), 1) << sql;
  return r->GetInt64(0, 0);
}

}  // namespace coupon::testing
