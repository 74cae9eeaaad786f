// coupon-gateway: the stateless gRPC front door. Flags (each with an
// environment twin in upper case) are listed in docs/operations.md.

#include <csignal>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/service/flags_env.h"
#include "common/kafka/config.h"
#include "gateway/server.h"
#include "glog/logging.h"

namespace {
const coupon::gateway::GatewayConfig kDefaults;
}

ABSL_FLAG(std::string, issuer, kDefaults.issuer,
          "Where issuance is decided: kafka (queued for coupon-issuer-worker) "
          "or redis (decided in Redis at once; run coupon-outbox-scheduler).");
ABSL_FLAG(bool, precheck, kDefaults.precheck,
          "Answer from what this gateway already knows (a request's earlier "
          "result, a user holding a copy, a sold-out coupon) without asking "
          "the issuer.");
ABSL_FLAG(std::string, listen, kDefaults.listen, "gRPC address to listen on.");
ABSL_FLAG(std::string, redis_addr, kDefaults.redis_addr,
          "Redis host:port (--issuer=redis).");
ABSL_FLAG(std::string, redis_password, "",
          "Redis AUTH password (--issuer=redis); prefer the REDIS_PASSWORD "
          "environment variable. Never logged.");
ABSL_FLAG(int, redis_pool_size, kDefaults.redis_pool_size,
          "Redis connections at most (--issuer=redis).");
ABSL_FLAG(absl::Duration, redis_timeout, kDefaults.redis_timeout,
          "Redis connect and command timeout (--issuer=redis).");
ABSL_FLAG(absl::Duration, redis_record_ttl, kDefaults.redis_record_ttl,
          "How long Redis keeps each request's result (--issuer=redis).");
ABSL_FLAG(std::string, kafka_brokers, kDefaults.kafka_brokers,
          "Kafka bootstrap servers, host:port[,host:port].");
ABSL_FLAG(std::string, kafka_properties, "",
          "Extra librdkafka properties, k=v,k=v (security.protocol, sasl.*, "
          "ssl.*).");
ABSL_FLAG(std::string, pg_dsn, kDefaults.pg_dsn,
          "PostgreSQL connection string (URI or key=value; sslmode too).");
ABSL_FLAG(std::string, request_topic, kDefaults.request_topic,
          "Topic the issue requests are produced to.");
ABSL_FLAG(std::string, result_topic, kDefaults.result_topic,
          "Topic the decided results are read from.");
ABSL_FLAG(int, pg_pool_size, kDefaults.pg_pool_size,
          "PostgreSQL connections at most.");
ABSL_FLAG(absl::Duration, pg_timeout, kDefaults.pg_timeout,
          "Connect and pool wait timeout for PostgreSQL.");
ABSL_FLAG(absl::Duration, issue_deadline, kDefaults.issue_deadline,
          "IssueCoupon deadline when the caller sets none.");
ABSL_FLAG(int, kafka_message_timeout_ms, kDefaults.kafka_message_timeout_ms,
          "How long the producer retries one event before the call fails "
          "UNAVAILABLE.");
ABSL_FLAG(int, kafka_linger_ms, kDefaults.kafka_linger_ms,
          "Producer batching delay.");
ABSL_FLAG(int, kafka_max_queued_messages, kDefaults.kafka_max_queued_messages,
          "Events waiting for the broker at most; past it calls fail "
          "UNAVAILABLE.");
ABSL_FLAG(absl::Duration, result_replay_window, kDefaults.result_replay_window,
          "At start, read results decided this long ago again.");
ABSL_FLAG(absl::Duration, not_found_ttl, kDefaults.not_found_ttl,
          "How long an unknown coupon id is remembered as unknown.");
ABSL_FLAG(int, result_cache_mib, kDefaults.result_cache_mib,
          "MiB for the results this gateway remembers by request id and the "
          "requests it queued; the oldest are forgotten first (a forgotten "
          "one costs a database read, never a different answer).");
ABSL_FLAG(int, holder_cache_mib, kDefaults.holder_cache_mib,
          "MiB for who holds a copy of which coupon and which coupons are "
          "sold out, the pre-check's knowledge; the oldest is forgotten first.");
ABSL_FLAG(int, max_watches, kDefaults.max_watches,
          "WatchIssueResults streams open at once; past it a new watch is "
          "refused RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, watch_queue_mib, kDefaults.watch_queue_mib,
          "MiB of results the open watches may hold unsent between them (each "
          "at most 8192); a watch that would pass it ends RESOURCE_EXHAUSTED, "
          "telling its client to watch again by request_ids.");
ABSL_FLAG(absl::Duration, shutdown_grace, kDefaults.shutdown_grace,
          "On SIGTERM, how long open calls may take to finish; the "
          "producer's flush gets what is left of it.");
ABSL_FLAG(int, metrics_port, 9464,
          "Port of /metrics (Prometheus), /healthz and /readyz (200 while "
          "the health service says SERVING, else 503: for probes that cannot "
          "speak TLS) on every interface; 0 turns it off.");
ABSL_FLAG(absl::Duration, max_connection_age, kDefaults.max_connection_age,
          "Connections are asked to go away (GOAWAY) this long after they "
          "opened, so long-lived watch streams spread over new replicas; inf: "
          "never.");
ABSL_FLAG(absl::Duration, max_connection_age_grace,
          kDefaults.max_connection_age_grace,
          "After --max_connection_age, how long the calls on a connection may "
          "still take before it is closed; inf: no limit.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain for TLS on the gRPC port; empty: plain text. "
          "Re-read every minute.");
ABSL_FLAG(std::string, tls_key_file, "",
          "PEM private key of --tls_cert_file (unencrypted).");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle: turns on mutual TLS, client certificates required "
          "and verified against it.");
ABSL_FLAG(std::string, admin_auth, kDefaults.admin.mode,
          "required: CreateCoupon needs an identity from --admin_tokens_file "
          "or --admin_client_names (with neither, every caller is refused); "
          "none: anyone may create coupons (local development only).");
ABSL_FLAG(std::string, admin_tokens_file, "",
          "File of allowed admin bearer tokens, one per line (a mounted "
          "Secret); callers send `authorization: Bearer <token>`. Re-read "
          "when it changes.");
ABSL_FLAG(std::vector<std::string>, admin_client_names, {},
          "Client-certificate names (subject CN or SAN) allowed to create "
          "coupons, comma-separated; needs --tls_client_ca_file.");
ABSL_FLAG(double, user_rate_limit, kDefaults.user_rate_limit.per_second,
          "IssueCoupon calls per second per user id, sustained; past it "
          "RESOURCE_EXHAUSTED. 0 turns the limit off.");
ABSL_FLAG(int, user_burst, kDefaults.user_rate_limit.burst,
          "IssueCoupon calls a user id may make at once before "
          "--user_rate_limit applies.");

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  coupon::ParseFlagsWithEnv(
      argc, argv,
      "coupon-gateway: accepts IssueCoupon and streams results. Every flag "
      "can also be set by the environment variable of its name in upper "
      "case.");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  coupon::gateway::GatewayConfig config;
  config.issuer = absl::GetFlag(FLAGS_issuer);
  config.listen = absl::GetFlag(FLAGS_listen);
  config.precheck = absl::GetFlag(FLAGS_precheck);
  config.redis_addr = absl::GetFlag(FLAGS_redis_addr);
  config.redis_password = absl::GetFlag(FLAGS_redis_password);
  config.redis_pool_size = absl::GetFlag(FLAGS_redis_pool_size);
  config.redis_timeout = absl::GetFlag(FLAGS_redis_timeout);
  config.redis_record_ttl = absl::GetFlag(FLAGS_redis_record_ttl);
  config.kafka_brokers = absl::GetFlag(FLAGS_kafka_brokers);
  config.pg_dsn = absl::GetFlag(FLAGS_pg_dsn);
  config.request_topic = absl::GetFlag(FLAGS_request_topic);
  config.result_topic = absl::GetFlag(FLAGS_result_topic);
  config.pg_pool_size = absl::GetFlag(FLAGS_pg_pool_size);
  config.pg_timeout = absl::GetFlag(FLAGS_pg_timeout);
  config.issue_deadline = absl::GetFlag(FLAGS_issue_deadline);
  config.kafka_message_timeout_ms = absl::GetFlag(FLAGS_kafka_message_timeout_ms);
  config.kafka_linger_ms = absl::GetFlag(FLAGS_kafka_linger_ms);
  config.kafka_max_queued_messages = absl::GetFlag(FLAGS_kafka_max_queued_messages);
  config.result_replay_window = absl::GetFlag(FLAGS_result_replay_window);
  config.not_found_ttl = absl::GetFlag(FLAGS_not_found_ttl);
  config.result_cache_mib = absl::GetFlag(FLAGS_result_cache_mib);
  config.holder_cache_mib = absl::GetFlag(FLAGS_holder_cache_mib);
  config.max_watches = absl::GetFlag(FLAGS_max_watches);
  config.watch_queue_mib = absl::GetFlag(FLAGS_watch_queue_mib);
  config.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  config.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  config.max_connection_age_grace = absl::GetFlag(FLAGS_max_connection_age_grace);
  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  config.tls.cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  config.tls.key_file = absl::GetFlag(FLAGS_tls_key_file);
  config.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  config.admin.mode = absl::GetFlag(FLAGS_admin_auth);
  config.admin.tokens_file = absl::GetFlag(FLAGS_admin_tokens_file);
  config.admin.client_names = absl::GetFlag(FLAGS_admin_client_names);
  config.user_rate_limit.per_second = absl::GetFlag(FLAGS_user_rate_limit);
  config.user_rate_limit.burst = absl::GetFlag(FLAGS_user_burst);
  if (absl::Status s = coupon::kafka::ParseProperties(
          absl::GetFlag(FLAGS_kafka_properties), &config.kafka_extra);
      !s.ok()) {
    std::cerr << "--kafka_properties: " << s.message() << "\n";
    return 2;
  }
  if (absl::Status s = config.Validate(); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 2;
  }

  // Before Start: a SIGTERM while starting up still ends in a clean shutdown.
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  auto server = coupon::gateway::GatewayServer::Start(config);
  if (!server.ok()) {
    LOG(ERROR) << "gateway cannot start: " << server.status();
    return 1;
  }
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  LOG(INFO) << "gateway: shutting down";
  (*server)->Shutdown(config.shutdown_grace);
  server->reset();
  LOG(INFO) << "gateway: stopped";
  return 0;
}
