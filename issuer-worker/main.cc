// coupon-issuer-worker: a member of the consumer group that decides issuance.
// Flags (each with an environment twin in upper case) are listed in
// docs/operations.md.

#include <atomic>
#include <csignal>
#include <iostream>

#include "absl/flags/flag.h"
#include "common/service/flags_env.h"
#include "common/kafka/config.h"
#include "glog/logging.h"
#include "issuer-worker/worker.h"

namespace {
const coupon::worker::WorkerConfig kDefaults;
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }
}  // namespace

ABSL_FLAG(std::string, kafka_brokers, kDefaults.kafka_brokers,
          "Kafka bootstrap servers, host:port[,host:port].");
ABSL_FLAG(std::string, kafka_properties, "",
          "Extra librdkafka properties, k=v,k=v (security.protocol, sasl.*, "
          "ssl.*).");
ABSL_FLAG(std::string, pg_dsn, kDefaults.pg_dsn,
          "PostgreSQL connection string (URI or key=value; sslmode too).");
ABSL_FLAG(std::string, group_id, kDefaults.group_id, "Kafka consumer group.");
ABSL_FLAG(std::string, request_topic, kDefaults.request_topic,
          "Topic of issue requests.");
ABSL_FLAG(std::string, result_topic, kDefaults.result_topic,
          "Topic the results are published to.");
ABSL_FLAG(std::string, dead_letter_topic, kDefaults.dead_letter_topic,
          "Topic for events that cannot be decided.");
ABSL_FLAG(int, max_batch, kDefaults.max_batch,
          "Events of one poll (any partitions) decided in one transaction, at "
          "most.");
ABSL_FLAG(absl::Duration, batch_wait, kDefaults.batch_wait,
          "After the first event, how long to wait for more.");
ABSL_FLAG(absl::Duration, publish_timeout, kDefaults.publish_timeout,
          "How long a batch's results may take to be acknowledged before the "
          "batch is retried.");
ABSL_FLAG(int, session_timeout_ms, kDefaults.session_timeout_ms,
          "Consumer group session timeout.");
ABSL_FLAG(absl::Duration, pg_lock_timeout, kDefaults.pg_session.lock_timeout,
          "PostgreSQL lock_timeout of the worker's session: a statement waiting "
          "longer for a coupon's row lock fails, and the batch is retried.");
ABSL_FLAG(absl::Duration, pg_statement_timeout, kDefaults.pg_session.statement_timeout,
          "PostgreSQL statement_timeout of the worker's session.");
ABSL_FLAG(absl::Duration, pg_idle_in_transaction_timeout,
          kDefaults.pg_session.idle_in_transaction_timeout,
          "PostgreSQL idle_in_transaction_session_timeout: a worker frozen "
          "inside its transaction has its session ended by the server after "
          "this long, which releases its coupons for the partition's new owner; "
          "its COMMIT then fails. Keep it at or below --session_timeout_ms.");
ABSL_FLAG(absl::Duration, pg_keepalives_idle, kDefaults.pg_session.keepalives_idle,
          "TCP keepalive idle time on both ends of the worker's PostgreSQL "
          "connection.");
ABSL_FLAG(absl::Duration, pg_keepalives_interval,
          kDefaults.pg_session.keepalives_interval,
          "TCP keepalive probe interval on both ends.");
ABSL_FLAG(int, pg_keepalives_count, kDefaults.pg_session.keepalives_count,
          "TCP keepalive probes lost before the connection is dropped.");
ABSL_FLAG(absl::Duration, pg_tcp_user_timeout, kDefaults.pg_session.tcp_user_timeout,
          "TCP user timeout on both ends: data unacknowledged this long drops "
          "the connection.");
ABSL_FLAG(int, metrics_port, 9465,
          "Port of /metrics (Prometheus), /healthz and /readyz, on every "
          "interface; 0 turns them off.");

int main(int argc, char** argv) {
  coupon::ParseFlagsWithEnv(
      argc, argv,
      "coupon-issuer-worker: decides coupon issuance from the request topic. "
      "Every flag can also be set by the environment variable of its name in "
      "upper case.");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  coupon::worker::WorkerConfig config;
  config.kafka_brokers = absl::GetFlag(FLAGS_kafka_brokers);
  config.pg_dsn = absl::GetFlag(FLAGS_pg_dsn);
  config.group_id = absl::GetFlag(FLAGS_group_id);
  config.request_topic = absl::GetFlag(FLAGS_request_topic);
  config.result_topic = absl::GetFlag(FLAGS_result_topic);
  config.dead_letter_topic = absl::GetFlag(FLAGS_dead_letter_topic);
  config.max_batch = absl::GetFlag(FLAGS_max_batch);
  config.batch_wait = absl::GetFlag(FLAGS_batch_wait);
  config.publish_timeout = absl::GetFlag(FLAGS_publish_timeout);
  config.session_timeout_ms = absl::GetFlag(FLAGS_session_timeout_ms);
  config.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  config.pg_session.lock_timeout = absl::GetFlag(FLAGS_pg_lock_timeout);
  config.pg_session.statement_timeout = absl::GetFlag(FLAGS_pg_statement_timeout);
  config.pg_session.idle_in_transaction_timeout =
      absl::GetFlag(FLAGS_pg_idle_in_transaction_timeout);
  config.pg_session.keepalives_idle = absl::GetFlag(FLAGS_pg_keepalives_idle);
  config.pg_session.keepalives_interval = absl::GetFlag(FLAGS_pg_keepalives_interval);
  config.pg_session.keepalives_count = absl::GetFlag(FLAGS_pg_keepalives_count);
  config.pg_session.tcp_user_timeout = absl::GetFlag(FLAGS_pg_tcp_user_timeout);
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

  // Before Create: a SIGTERM while starting up then stops the worker cleanly
  // too (Run returns at once and leaves the group).
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  auto worker = coupon::worker::IssuerWorker::Create(config);
  if (!worker.ok()) {
    LOG(ERROR) << "worker cannot start: " << worker.status();
    return 1;
  }
  absl::Status ran = (*worker)->Run(g_stop);
  if (!ran.ok()) {
    LOG(ERROR) << "worker: " << ran;
    return 1;
  }
  LOG(INFO) << "worker: stopped";
  return 0;
}
