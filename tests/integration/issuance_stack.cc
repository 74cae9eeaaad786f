#include "tests/integration/issuance_stack.h"

#include <grpcpp/support/client_interceptor.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include <librdkafka/rdkafkacpp.h>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gtest/gtest.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

constexpr const char* kTestGroup = "coupon-issuer-test";

// Commits the end of every partition for the test group, once per process, so
// its workers start after the events of earlier runs and benchmarks (which
// the real group `coupon-issuer` decides) instead of replaying them all.
void SkipTestGroupToEnd(const std::string& topic) {
  static bool done = false;
  if (done) return;
  done = true;
  std::string error;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  conf->set("bootstrap.servers", KafkaBrokers(), error);
  conf->set("group.id", kTestGroup, error);
  conf->set("enable.auto.commit", "false", error);
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  CHECK(consumer) << error;
  std::vector<RdKafka::TopicPartition*> ends;
  for (int32_t p = 0;; ++p) {
    int64_t low = 0, high = 0;
    if (consumer->query_watermark_offsets(topic, p, &low, &high, 10000) !=
        RdKafka::ERR_NO_ERROR) {
      break;  // past the last partition
    }
    ends.push_back(RdKafka::TopicPartition::create(topic, p, high));
  }
  CHECK(!ends.empty()) << "no partitions of " << topic << "; " << kStackHint;
  RdKafka::ErrorCode err = consumer->commitSync(ends);
  if (err != RdKafka::ERR_NO_ERROR) {
    LOG(WARNING) << "test group offsets not moved: " << RdKafka::err2str(err);
  }
  RdKafka::TopicPartition::destroy(ends);
  consumer->close();
}

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

void IssuanceStack::AddWorker() {
  worker::WorkerConfig config;
  config.kafka_brokers = KafkaBrokers();
  config.pg_dsn = PgDsn();
  // A group of their own, so a locally running system (scripts/up) does not
  // share the partitions; it starts at the end of the log (see above). Short
  // sessions so a crashed test's members do not hold partitions for long.
  config.group_id = kTestGroup;
  SkipTestGroupToEnd(config.request_topic);
  config.session_timeout_ms = 6000;
  config.metrics_port = 0;
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
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done == calls.size(); });
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
