// coupon-outbox-scheduler: applies the Redis issuance mode's stock events
// (coupon_outbox rows) to coupons.remaining_quantity. Any number of replicas
// may run. Flags (each with an environment twin in upper case) are listed by
// --help.

#include <atomic>
#include <csignal>
#include <iostream>

#include "absl/flags/flag.h"
#include "common/service/flags_env.h"
#include "glog/logging.h"
#include "redis-issuer/outbox/outbox_scheduler.h"

namespace {
const coupon::outbox::OutboxConfig kDefaults;
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }
}  // namespace

ABSL_FLAG(std::string, pg_dsn, kDefaults.pg_dsn,
          "PostgreSQL connection string (URI or key=value; sslmode too).");
ABSL_FLAG(absl::Duration, outbox_interval, kDefaults.interval,
          "A pass over the due PENDING rows this often (a full batch is "
          "followed by the next pass at once).");
ABSL_FLAG(absl::Duration, outbox_retry_interval, kDefaults.retry_interval,
          "A row whose coupon failed is tried again this long after.");
ABSL_FLAG(int, outbox_max_attempts, kDefaults.max_attempts,
          "Attempts per row, the first included, before it becomes FAILED "
          "(4: the first attempt and 3 retries).");
ABSL_FLAG(int, outbox_batch_size, kDefaults.batch_size,
          "Rows claimed per pass, in one transaction.");
ABSL_FLAG(std::string, redis_addr, kDefaults.redis_addr,
          "Redis host:port of the gateways, whose copies reserved there but "
          "never written to PostgreSQL each pass settles; empty: none.");
ABSL_FLAG(std::string, redis_password, "",
          "Redis AUTH password; prefer the REDIS_PASSWORD environment "
          "variable. Never logged.");
ABSL_FLAG(absl::Duration, redis_timeout, kDefaults.redis_timeout,
          "Redis connect and command timeout.");
ABSL_FLAG(absl::Duration, reconcile_after, kDefaults.reconcile_after,
          "A copy reserved in Redis this long ago and still not in PostgreSQL "
          "is written by the scheduler (its gateway died or gave up).");
ABSL_FLAG(absl::Duration, redis_record_ttl, kDefaults.record_ttl,
          "How long a settled request's record stays in Redis: the gateways' "
          "--redis_record_ttl.");
ABSL_FLAG(int, metrics_port, 9466,
          "Port of /metrics (Prometheus), /healthz and /readyz, on every "
          "interface; 0 turns them off.");

int main(int argc, char** argv) {
  coupon::ParseFlagsWithEnv(
      argc, argv,
      "coupon-outbox-scheduler: takes the copies the Redis mode issued from "
      "the coupons' PostgreSQL stock. Every flag can also be set by the "
      "environment variable of its name in upper case.");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  coupon::outbox::OutboxConfig config;
  config.pg_dsn = absl::GetFlag(FLAGS_pg_dsn);
  config.interval = absl::GetFlag(FLAGS_outbox_interval);
  config.retry_interval = absl::GetFlag(FLAGS_outbox_retry_interval);
  config.max_attempts = absl::GetFlag(FLAGS_outbox_max_attempts);
  config.batch_size = absl::GetFlag(FLAGS_outbox_batch_size);
  config.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  config.redis_addr = absl::GetFlag(FLAGS_redis_addr);
  config.redis_password = absl::GetFlag(FLAGS_redis_password);
  config.redis_timeout = absl::GetFlag(FLAGS_redis_timeout);
  config.reconcile_after = absl::GetFlag(FLAGS_reconcile_after);
  config.record_ttl = absl::GetFlag(FLAGS_redis_record_ttl);
  if (absl::Status s = config.Validate(); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 2;
  }

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  auto scheduler = coupon::outbox::OutboxScheduler::Create(config);
  if (!scheduler.ok()) {
    LOG(ERROR) << "outbox scheduler cannot start: " << scheduler.status();
    return 1;
  }
  absl::Status ran = (*scheduler)->Run(g_stop);
  if (!ran.ok()) {
    LOG(ERROR) << "outbox scheduler: " << ran;
    return 1;
  }
  return 0;
}
