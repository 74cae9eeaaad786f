// coupon-gateway: the stateless gRPC front door. Flags (each with an
// environment twin in upper case) are listed in docs/operations.md.

#include <csignal>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/flags_env.h"
#include "common/kafka/config.h"
#include "gateway/gateway_server.h"
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
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "On SIGTERM, how long open calls may take to finish.");

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

  auto server = coupon::gateway::GatewayServer::Start(config);
  if (!server.ok()) {
    LOG(ERROR) << "gateway cannot start: " << server.status();
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  LOG(INFO) << "gateway: shutting down";
  (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  server->reset();
  LOG(INFO) << "gateway: stopped";
  return 0;
}
