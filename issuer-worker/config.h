#pragma once

// The issuer-worker's settings, checked once at start (Validate) and passed
// to the worker; main.cc fills them from the command line and the
// environment (WorkerSchema), tests directly.

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/pg/pg.h"
#include "common/service/settings.h"

namespace coupon::worker {

struct WorkerConfig {
  std::string kafka_brokers = "127.0.0.1:9092";
  std::string pg_dsn = "postgresql://coupon:coupon@127.0.0.1:5432/coupon";
  std::string group_id = "coupon-issuer";
  std::string request_topic = "coupon-issue-request";
  std::string result_topic = "coupon-issue-result";
  std::string dead_letter_topic = "coupon-issue-request.dlq";
  // At most this many events of one poll go into one transaction.
  int max_batch = 500;
  // After the first event, how long to wait for more to fill a batch.
  absl::Duration batch_wait = absl::Milliseconds(5);
  // How long a batch's results may take to be acknowledged.
  absl::Duration publish_timeout = absl::Seconds(30);
  absl::Duration pg_connect_timeout = absl::Seconds(3);
  // Kafka group session timeout: how soon a dead worker's partitions move.
  int session_timeout_ms = 10000;
  // librdkafka's partition.assignment.strategy (see the setting's help).
  std::string partition_assignment = "range";
  // The worker's PostgreSQL session, so that a worker frozen inside its
  // transaction (a paused VM, a stalled node, a cut-off host) cannot hold its
  // coupons' row locks: the server ends a transaction left idle this long,
  // releasing the locks, and the frozen worker's COMMIT then fails. With the
  // session timeout above, the partition's new owner decides within about
  // session timeout + idle_in_transaction_timeout (+ its own retry). The
  // keepalives and the TCP user timeout notice a dead peer on either end.
  pg::SessionSettings pg_session = DefaultSession();
  // Port of /metrics, /healthz and /readyz on every interface; 0: none. The
  // binary's flag defaults to 9465; a library user opens no port unasked.
  int metrics_port = 0;
  std::map<std::string, std::string> kafka_extra;

  absl::Status Validate() const;

  static pg::SessionSettings DefaultSession() {
    pg::SessionSettings s;
    s.lock_timeout = absl::Seconds(5);
    s.statement_timeout = absl::Seconds(30);
    s.idle_in_transaction_timeout = absl::Seconds(10);
    s.keepalives_idle = absl::Seconds(10);
    s.keepalives_interval = absl::Seconds(2);
    s.keepalives_count = 3;
    s.tcp_user_timeout = absl::Seconds(15);
    s.key_lookups_only = true;
    return s;
  }
};

// The worker's settings: flags, their environment twins, defaults, checks,
// and the rows of docs/operations.md's tables.
const service::Schema<WorkerConfig>& WorkerSchema();

}  // namespace coupon::worker
