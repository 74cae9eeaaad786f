#pragma once

// Runs real gateways and issuer-workers in this process against the real
// Kafka and PostgreSQL, and talks to the gateways over gRPC like any client.
// Their topics and consumer group are this test process's own (TestKafka),
// so no other worker on the broker (the one scripts/up leaves running,
// another test run) decides their events, and they decide no one else's.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pg/pg.h"
#include "coupon/v1/coupon_service.grpc.pb.h"
#include "gateway/server.h"
#include "issuer-worker/worker.h"

namespace coupon::testing {

// The Kafka names of this test process: a request, a result and a
// dead-letter topic, and a consumer group, which no other process uses.
// The first call makes the topics (with the stack's partition counts: 10,
// 10 and 1) and waits until they are led, after deleting the topics of
// earlier test runs that died; they are deleted when the test program ends.
// CHECK-fails when the broker does not answer. Thread-safe.
struct KafkaNames {
  std::string request_topic;
  std::string result_topic;
  std::string dead_letter_topic;
  std::string group;
};
inline constexpr int kTestPartitions = 10;
const KafkaNames& TestKafka();

// The admin bearer token every gateway of the harness accepts for
// CreateCoupon, and the tokens file it reads it from (made once per process).
const std::string& AdminToken();
const std::string& AdminTokensFile();

// A channel whose every call carries `authorization: Bearer AdminToken()`,
// as an admin tool's would.
std::shared_ptr<grpc::Channel> AdminChannel(
    const std::string& target,
    std::shared_ptr<grpc::ChannelCredentials> credentials =
        grpc::InsecureChannelCredentials());

/// One issuer-worker on its own thread; stopped and joined by the destructor
/// (which leaves the group, so its partitions move at once).
class WorkerThread {
 public:
  explicit WorkerThread(const worker::WorkerConfig& config);
  ~WorkerThread();
  int owned_partitions() const { return worker_->owned_partitions(); }

 private:
  std::unique_ptr<worker::IssuerWorker> worker_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Gateways and workers for one test; everything stops in the destructor.
class IssuanceStack {
 public:
  IssuanceStack() = default;
  ~IssuanceStack();

  // Returns the gateway's index.
  // Returns once the gateway serves (its result listener is assigned). A
  // Kafka-mode gateway uses TestKafka()'s topics. The replay window is short:
  // tests make fresh coupons.
  // The gateways accept AdminToken() and have no per-user limit (the tests
  // send many calls per user); `adjust` may change any setting before start.
  // stub() is an admin client: its calls carry AdminToken().
  int AddGateway(absl::Duration result_replay_window = absl::Minutes(1),
                 const std::string& issuer = "kafka",
                 const std::function<void(gateway::GatewayConfig&)>& adjust = {});
  // A worker in TestKafka()'s group, on its topics; `adjust` may change any
  // setting before start.
  void AddWorker(const std::function<void(worker::WorkerConfig&)>& adjust = {});
  // Stops (and removes) the oldest worker; it leaves the group.
  void StopWorker();
  // Waits until the live workers share all `partitions` and each owns some.
  void WaitForAssignment(int partitions = kTestPartitions);
  void StopGateway(int index);

  v1::CouponService::Stub& stub(int gateway = 0) { return *stubs_.at(gateway); }
  int port(int gateway = 0) const { return gateways_.at(gateway)->port(); }
  pg::Connection& db() { return *db_; }

  v1::Coupon CreateCoupon(int64_t quantity, const std::string& name = "sale");

 private:
  std::vector<std::unique_ptr<gateway::GatewayServer>> gateways_;
  std::vector<std::unique_ptr<v1::CouponService::Stub>> stubs_;
  std::vector<std::unique_ptr<WorkerThread>> workers_;
  std::unique_ptr<pg::Connection> db_;
  friend void InitDb(IssuanceStack*);
};

struct IssueCall {
  std::string user_id;
  std::string request_id;  // may be empty
  grpc::Status status;
  v1::IssueCouponResponse response;
};

// Sends all calls at once (callback API, all in flight together) and waits
// for every answer.
void IssueConcurrently(v1::CouponService::Stub& stub, int64_t coupon_id,
                       std::vector<IssueCall>& calls,
                       absl::Duration deadline = absl::Seconds(30));

// Opens one WatchIssueResults stream for `request_ids` and reads it to the
// end. Returns the results and the stream's final status.
struct WatchOutcome {
  std::vector<v1::IssueResult> results;
  grpc::Status status;
};
WatchOutcome WatchToEnd(v1::CouponService::Stub& stub,
                        const std::vector<std::string>& request_ids,
                        absl::Duration deadline = absl::Seconds(60));

// One value from a query returning a single bigint.
int64_t QueryInt(pg::Connection& db, const std::string& sql,
                 const std::vector<pg::Param>& params = {});

}  // namespace coupon::testing
