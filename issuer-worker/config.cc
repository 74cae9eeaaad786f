#include "issuer-worker/config.h"

namespace coupon::worker {
namespace {

using C = WorkerConfig;
using service::AtLeast;
using service::InRange;
using service::NonEmpty;
using service::Setting;

// What keeps a frozen worker from holding its coupons: never off.
constexpr char kHostage[] =
    " (it keeps a frozen worker from holding its coupons' locks)";

}  // namespace

const service::Schema<WorkerConfig>& WorkerSchema() {
  static const auto* schema = new service::Schema<C>(
      service::Schema<C>(
          {
              Setting<C, std::string>(
                  "kafka_brokers",
                  "Kafka bootstrap servers, host:port[,host:port].",
                  &C::kafka_brokers, NonEmpty()),
              Setting<C, std::map<std::string, std::string>>(
                  "kafka_properties",
                  "Extra librdkafka properties, k=v,k=v (security.protocol, "
                  "sasl.*, ssl.*).",
                  &C::kafka_extra),
              Setting<C, std::string>(
                  "pg_dsn",
                  "PostgreSQL connection string (URI or key=value; "
                  "sslmode and several hosts too).",
                  &C::pg_dsn, NonEmpty()),
              Setting<C, std::string>("group_id", "Kafka consumer group.",
                                      &C::group_id, NonEmpty()),
              Setting<C, std::string>("request_topic",
                                      "Topic of issue requests.",
                                      &C::request_topic, NonEmpty()),
              Setting<C, std::string>("result_topic",
                                      "Topic the results are published to.",
                                      &C::result_topic, NonEmpty()),
              Setting<C, std::string>(
                  "dead_letter_topic",
                  "Topic for events that cannot be decided.",
                  &C::dead_letter_topic, NonEmpty()),
              Setting<C, int>("max_batch",
                              "Events of one poll (any partitions) decided in "
                              "one transaction, "
                              "at most.",
                              &C::max_batch, InRange(1, 100000)),
              Setting<C, absl::Duration>(
                  "batch_wait",
                  "After the first event, how long to wait for more.",
                  &C::batch_wait,
                  InRange(absl::ZeroDuration(), absl::Seconds(1))),
              Setting<C, absl::Duration>(
                  "publish_timeout",
                  "How long a batch's results may take to be "
                  "acknowledged before the batch is retried.",
                  &C::publish_timeout, AtLeast(absl::Seconds(1))),
              Setting<C, int>("session_timeout_ms",
                              "Consumer group session timeout.",
                              &C::session_timeout_ms, AtLeast(1000)),
              Setting<C, std::string>(
                  "partition_assignment",
                  "How the group shares the partitions: range (eager: each "
                  "rebalance revokes and hands out every partition) or "
                  "cooperative-sticky (only the partitions that change owner "
                  "move). With librdkafka 2.0.2 a cooperative worker loses its "
                  "assignment when it commits during a rebalance "
                  "(librdkafka#4059): keep range until librdkafka is newer. "
                  "Every worker of a group must use the same one.",
                  &C::partition_assignment,
                  service::OneOf({"cooperative-sticky", "range", "roundrobin"})),
              Setting<C, absl::Duration>(
                  "pg_lock_timeout",
                  "PostgreSQL lock_timeout of the worker's session: a "
                  "statement waiting longer "
                  "for a coupon's row lock fails, and the batch is retried.",
                  [](C& c) -> absl::Duration& {
                    return c.pg_session.lock_timeout;
                  },
                  InRange(absl::Milliseconds(100), absl::Hours(24), kHostage)),
              Setting<C, absl::Duration>(
                  "pg_statement_timeout",
                  "PostgreSQL statement_timeout of the worker's session.",
                  [](C& c) -> absl::Duration& {
                    return c.pg_session.statement_timeout;
                  },
                  InRange(absl::Seconds(1), absl::Hours(24), kHostage)),
              Setting<C, absl::Duration>(
                  "pg_idle_in_transaction_timeout",
                  "PostgreSQL idle_in_transaction_session_timeout: a worker "
                  "frozen inside its "
                  "transaction has its session ended by the server after this "
                  "long, which "
                  "releases its coupons for the partition's new owner; its "
                  "COMMIT then fails. "
                  "Keep it at or below --session_timeout_ms.",
                  [](C& c) -> absl::Duration& {
                    return c.pg_session.idle_in_transaction_timeout;
                  },
                  InRange(absl::Seconds(1), absl::Hours(24), kHostage)),
              Setting<C, absl::Duration>(
                  "pg_keepalives_idle",
                  "TCP keepalive idle time on both ends of the worker's "
                  "PostgreSQL connection.",
                  [](C& c) -> absl::Duration& {
                    return c.pg_session.keepalives_idle;
                  },
                  InRange(absl::ZeroDuration(), absl::Hours(24),
                          " (0: the system's)")),
              Setting<C, absl::Duration>(
                  "pg_keepalives_interval",
                  "TCP keepalive probe interval on both ends.",
                  [](C& c) -> absl::Duration& {
                    return c.pg_session.keepalives_interval;
                  },
                  InRange(absl::ZeroDuration(), absl::Hours(24),
                          " (0: the system's)")),
              Setting<C, int>(
                  "pg_keepalives_count",
                  "TCP keepalive probes lost before the connection is dropped.",
                  [](C& c) -> int& { return c.pg_session.keepalives_count; },
                  InRange(0, 100, " (0: the system's)")),
              Setting<C, absl::Duration>(
                  "pg_tcp_user_timeout",
                  "TCP user timeout on both ends: data unacknowledged this "
                  "long drops the "
                  "connection.",
                  [](C& c) -> absl::Duration& {
                    return c.pg_session.tcp_user_timeout;
                  },
                  InRange(absl::ZeroDuration(), absl::Hours(24),
                          " (0: the system's)")),
              Setting<C, int>("metrics_port",
                              "Port of /metrics (Prometheus), /healthz and "
                              "/readyz, on every "
                              "interface; 0 turns them off.",
                              &C::metrics_port, InRange(0, 65535, " (0: off)")),
          })
          // A library user opens no port unasked; the binary serves metrics.
          .Defaults([](C& c) { c.metrics_port = 9465; }));
  return *schema;
}

absl::Status WorkerConfig::Validate() const {
  return WorkerSchema().Validate(*this);
}

}  // namespace coupon::worker
