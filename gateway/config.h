#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/service/settings.h"
#include "gateway/api/tls.h"
#include "gateway/issue/auth.h"
#include "gateway/issue/rate_limiter.h"

namespace coupon::gateway {

// Where IssueCoupon is decided (gateway/issue/issuer.h).
enum class IssuerKind { kKafka, kRedis };

// Everything the gateway needs, checked by Validate() before use: each
// setting's flag, default and checks are in GatewaySchema(). main.cc fills it
// from the command line and the environment; tests fill it directly.
struct GatewayConfig {
  // "kafka": queue requests for the issuer-worker (the improved system);
  // "redis": decide in Redis on the spot (the design's existing system).
  std::string issuer = "kafka";
  // `issuer`, read once.
  IssuerKind issuer_kind() const {
    return issuer == "redis" ? IssuerKind::kRedis : IssuerKind::kKafka;
  }
  // Answer from what this gateway already knows (earlier results, holders,
  // sold-out coupons) without asking the issuer.
  bool precheck = true;
  std::string listen = "127.0.0.1:50051";
  std::string kafka_brokers = "127.0.0.1:9092";
  std::string pg_dsn = "postgresql://coupon:coupon@127.0.0.1:5432/coupon";
  std::string request_topic = "coupon-issue-request";
  std::string result_topic = "coupon-issue-result";
  // The issuer-workers' consumer group, whose committed offsets the gateway
  // reads (without joining it) for the place in line; empty: not read.
  std::string worker_group = "coupon-issuer";
  int pg_pool_size = 8;
  absl::Duration pg_timeout = absl::Seconds(3);
  // Upper bound for IssueCoupon when the caller sets no deadline.
  absl::Duration issue_deadline = absl::Seconds(5);
  // IssueCoupon with wait_for_result waits at most this long for the final
  // result when the caller sets no deadline.
  absl::Duration max_result_wait = absl::Seconds(10);
  absl::Duration answer_batch_wait = absl::Milliseconds(2);
  // Watches that ask for positions get at most one per request this often.
  absl::Duration position_interval = absl::Seconds(1);
  int kafka_message_timeout_ms = 10000;
  int kafka_linger_ms = 2;
  int kafka_max_queued_messages = 100000;
  std::map<std::string, std::string> kafka_extra;
  absl::Duration result_replay_window = absl::Minutes(10);
  absl::Duration not_found_ttl = absl::Seconds(1);
  // Memory for what the gateway knows, in MiB (gateway/results/result_cache.h): the
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

  // GatewaySchema().Validate(*this): INVALID_ARGUMENT naming the flag.
  absl::Status Validate() const;
};

// The gateway's settings: flags, their environment twins, defaults, checks,
// and the rows of docs/operations.md's tables.
const service::Schema<GatewayConfig>& GatewaySchema();

}  // namespace coupon::gateway
