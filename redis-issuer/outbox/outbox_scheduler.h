#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/service/settings.h"

namespace coupon::pg {
class Connection;
}
namespace coupon::metrics {
class HttpServer;
}
namespace coupon::redis {
class Client;
}

namespace coupon::outbox {

struct OutboxConfig {
  std::string pg_dsn = "postgresql://coupon:coupon@127.0.0.1:5432/coupon";
  // A pass every `interval` (the seed: PENDING events every 10 s). A pass that
  // claims a full batch is followed by the next one at once, so a flash sale's
  // backlog drains at database speed rather than batch_size per interval.
  absl::Duration interval = absl::Seconds(10);
  // A failed row is tried again this long after its failed attempt (the seed:
  // every minute); 0 retries it in the next pass.
  absl::Duration retry_interval = absl::Minutes(1);
  // Attempts per row, the first one included, before it becomes FAILED. The
  // seed's "retried at most 3 times" is 1 attempt + 3 retries = 4.
  int max_attempts = 4;
  // Rows claimed per pass (one transaction).
  int batch_size = 1000;
  absl::Duration pg_connect_timeout = absl::Seconds(3);
  // Port of /metrics, /healthz and /readyz on every interface; 0: none. The
  // binary's flag defaults to 9466; a library user opens no port unasked.
  int metrics_port = 0;
  // Only rows of these coupons; empty: every coupon. Not a flag: the tests
  // use it to stay clear of rows other tests or benchmarks left behind.
  std::vector<int64_t> only_coupon_ids;
  // The Redis of the gateways, to settle the copies they reserved there but
  // did not write to PostgreSQL (a gateway that died, or met a PostgreSQL
  // error its caller did not retry): each pass writes those reserved longer
  // than `reconcile_after` ago, so every copy Redis counts is held by its
  // user and reaches the stock. Empty: no reconciliation.
  std::string redis_addr = "127.0.0.1:6379";
  std::string redis_password;
  absl::Duration redis_timeout = absl::Milliseconds(500);
  absl::Duration reconcile_after = absl::Seconds(30);
  // How long a settled request's record stays in Redis: the gateways'
  // --redis_record_ttl.
  absl::Duration record_ttl = absl::Hours(24);

  // OutboxSchema().Validate(*this): INVALID_ARGUMENT naming the flag, e.g.
  // "--outbox_max_attempts: must be 1..100, got 0".
  absl::Status Validate() const;
};

// The scheduler's settings: flags, their environment twins, defaults, checks,
// and the rows of docs/operations.md's table.
const service::Schema<OutboxConfig>& OutboxSchema();

// The figures of one pass.
struct PassStats {
  int claimed = 0;  // due PENDING rows claimed
  int done = 0;     // rows whose copy was taken from the stock: DONE
  int retried = 0;  // rows that failed and stay PENDING for a later attempt
  int failed = 0;   // rows that failed their last attempt: FAILED
  int coupons = 0;  // distinct coupons among the claimed rows
  // Reservations settled: copies written to PostgreSQL for their users, and
  // those PostgreSQL refused as the user's second copy (ALREADY_ISSUED).
  int reconciled = 0;
  int reconciled_duplicates = 0;
  // Reservations undone: their request id holds another user's copy.
  int reconciled_released = 0;
  // Reserved copies PostgreSQL refused this pass (kept for a later one).
  int reconcile_failures = 0;
};

/// Applies the Redis mode's stock events: each pass claims the due PENDING
/// coupon_outbox rows (FOR UPDATE SKIP LOCKED, so any number of replicas may
/// run at once and no row is applied twice), decrements each coupon's
/// remaining_quantity by its row count and marks the rows DONE, one SAVEPOINT
/// per coupon so one coupon's failure does not hold back the others; a
/// failing coupon's rows get NextOutboxState (retry later, or FAILED).
///
/// Owns one PostgreSQL connection, made lazily and again after it breaks.
/// RunOnce and Run from one thread at a time (Run calls RunOnce); counters()
/// and ready() from any thread. Destroy it after Run has returned. With
/// config.metrics_port set, a thread of its own serves /metrics, /healthz and
/// /readyz (ready()) from Create until the destructor.
class OutboxScheduler {
 public:
  // INVALID_ARGUMENT for a bad config. An unreachable database is not an
  // error here: it is logged and every pass tries again.
  static absl::StatusOr<std::unique_ptr<OutboxScheduler>> Create(
      const OutboxConfig& config);
  ~OutboxScheduler();

  // Settles the stale reservations (see OutboxConfig::redis_addr), then one
  // pass, in one transaction. An error (UNAVAILABLE when PostgreSQL is down)
  // means nothing of the pass was committed: its rows are still PENDING with
  // their attempts unchanged. A reservation settled before stays settled.
  absl::StatusOr<PassStats> RunOnce();

  // A pass every config.interval until `stop` is set (looked at every 100 ms
  // at least); a pass that fails is logged and the loop goes on. Returns OK
  // once stopped.
  absl::Status Run(const std::atomic<bool>& stop);

  // Totals since start, readable from any thread. `failed` counts the rows
  // that became FAILED: each one is stock PostgreSQL still shows as left.
  struct Counters {
    std::atomic<int64_t> passes{0};       // passes committed
    std::atomic<int64_t> pass_errors{0};  // passes that committed nothing
    std::atomic<int64_t> done{0};
    std::atomic<int64_t> retried{0};
    std::atomic<int64_t> failed{0};
  };
  const Counters& counters() const { return counters_; }

  // True while the database connection is up (it connected, and the last
  // pass did not lose it) and Run is not stopping: what /readyz answers.
  // Any thread.
  bool ready() const { return ready_.load(); }

  // Counts coupon_outbox rows by state into the coupon_outbox_rows gauge.
  // RunOnce calls it after each pass, at most once a second.
  absl::Status CountRows();

 private:
  explicit OutboxScheduler(const OutboxConfig& config);
  absl::Status Connect();
  struct Pass;
  absl::Status RunPass(Pass& pass);
  absl::Status Reconcile(PassStats& stats);

  const OutboxConfig config_;
  std::unique_ptr<pg::Connection> conn_;
  std::unique_ptr<redis::Client> redis_;  // when config.redis_addr is set
  Counters counters_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  absl::Time last_count_ = absl::InfinitePast();
  // Last: its /readyz handler reads ready_, so it stops first.
  std::unique_ptr<metrics::HttpServer> http_;
};

}  // namespace coupon::outbox
