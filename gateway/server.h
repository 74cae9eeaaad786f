#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <atomic>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/issue/auth.h"
#include "gateway/issue/rate_limiter.h"
#include "gateway/api/tls.h"

namespace grpc {
class Server;
}

namespace coupon::gateway {

// Everything the gateway needs, validated by Validate() before use. main.cc
// fills it from flags; tests fill it directly.
struct GatewayConfig {
  // "kafka": queue requests for the issuer-worker (the improved system);
  // "redis": decide in Redis on the spot (the design's existing system).
  std::string issuer = "kafka";
  // Answer from what this gateway already knows (earlier results, holders,
  // sold-out coupons) without asking the issuer.
  bool precheck = true;
  std::string listen = "127.0.0.1:50051";
  std::string kafka_brokers = "127.0.0.1:9092";
  std::string pg_dsn = "postgresql://coupon:coupon@127.0.0.1:5432/coupon";
  std::string request_topic = "coupon-issue-request";
  std::string result_topic = "coupon-issue-result";
  int pg_pool_size = 8;
  absl::Duration pg_timeout = absl::Seconds(3);
  // Upper bound for IssueCoupon when the caller sets no deadline.
  absl::Duration issue_deadline = absl::Seconds(5);
  int kafka_message_timeout_ms = 10000;
  int kafka_linger_ms = 2;
  int kafka_max_queued_messages = 100000;
  std::map<std::string, std::string> kafka_extra;
  absl::Duration result_replay_window = absl::Minutes(10);
  absl::Duration not_found_ttl = absl::Seconds(1);
  // Memory for what the gateway knows, in MiB (gateway/result_cache.h): the
  // results by request id and the requests it queued; who holds a copy and
  // which coupons are sold out. With the watches' bound below they fit the
  // manifests' 1 GiB limit with room to spare (docs/operations.md).
  int result_cache_mib = 192;
  int holder_cache_mib = 96;
  // WatchIssueResults streams open at once, and the MiB of unsent results
  // they may hold between them (a watch whose client reads slower than its
  // results come ends with RESOURCE_EXHAUSTED past its share).
  int max_watches = 4096;
  int watch_queue_mib = 128;
  // Port of /metrics on every interface; 0: none. The binary's flag defaults
  // to 9464; a library user opens no port unasked.
  int metrics_port = 0;
  // A connection is told to go away (GOAWAY) this long after it opened, with
  // gRPC's +-10% jitter, and its calls get max_connection_age_grace more to
  // finish: long watch streams then reconnect, and spread over new replicas.
  // InfiniteDuration(): never.
  absl::Duration max_connection_age = absl::Minutes(5);
  absl::Duration max_connection_age_grace = absl::Seconds(30);
  // On shutdown (SIGTERM), how long open calls may take; the producer's
  // flush gets what is left of it.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Redis issuer only.
  std::string redis_addr = "127.0.0.1:6379";
  std::string redis_password;
  int redis_pool_size = 16;
  absl::Duration redis_timeout = absl::Milliseconds(500);
  // How long Redis keeps each request's result (idempotency, lookups).
  absl::Duration redis_record_ttl = absl::Hours(24);
  // Security: TLS on the gRPC port (off unless a certificate is set), who may
  // create coupons (nobody unless configured), and the per-user IssueCoupon
  // limit: a burst of 10, then 1 per second. A person tapping "claim" and
  // their app's retries stay far below it; a bot's hundreds per second do not.
  ServerTlsConfig tls;
  AdminAuthConfig admin;
  UserRateLimit user_rate_limit{/*per_second=*/1, /*burst=*/10};

  absl::Status Validate() const;
};

/// The running gateway: gRPC server, producer, result listener and caches.
/// Start once from one thread; the destructor shuts it all down (gRPC first,
/// then the producer after flushing, then the listener, and /metrics last).
class GatewayServer {
 public:
  static absl::StatusOr<std::unique_ptr<GatewayServer>> Start(
      const GatewayConfig& config);
  ~GatewayServer();

  // The port actually bound (useful with ":0").
  int port() const { return port_; }
  // True once the gateway receives every result (Kafka mode: its listener has
  // caught up with the result topic; Redis mode: it is subscribed to the
  // result channel); until then the health service says NOT_SERVING.
  bool ready() const;
  void Wait();
  // Turns health NOT_SERVING, ends open watch streams with UNAVAILABLE (the
  // clients watch again elsewhere), stops taking calls, and waits up to
  // `grace` for open calls: an IssueCoupon call waits for its event's
  // acknowledgement. Then flushes the producer in what is left of `grace`.
  // Once; later calls do nothing.
  void Shutdown(absl::Duration grace);

 private:
  struct Parts;
  GatewayServer();
  std::unique_ptr<Parts> parts_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  // Flips health to SERVING once the listener is ready; joined by Shutdown.
  std::thread readiness_;
  std::atomic<bool> stopping_{false};
  // What the health service says, also answered on the metrics port's
  // /readyz: kubelet's gRPC probes speak plain text only, so under TLS the
  // probes use HTTP.
  std::atomic<bool> serving_{false};
  bool shut_down_ = false;
};

}  // namespace coupon::gateway
