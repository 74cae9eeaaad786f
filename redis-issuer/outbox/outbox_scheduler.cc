#include "redis-issuer/outbox/outbox_scheduler.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/metrics/http_server.h"
#include "common/metrics/metrics.h"
#include "common/wire/event_codec.h"
#include "common/pg/pg.h"
#include "common/redis/redis.h"
#include "common/domain/status_macros.h"
#include "glog/logging.h"
#include "redis-issuer/outbox/outbox_state.h"
#include "redis-issuer/copies.h"
#include "redis-issuer/records.h"

namespace coupon::outbox {

namespace {

using C = OutboxConfig;
using service::InRange;
using service::Setting;

absl::Status AcrossSettings(const C& c) {
  if (c.redis_addr.empty()) return absl::OkStatus();
  redis::RedisConfig rc;
  rc.addr = c.redis_addr;
  rc.command_timeout = c.redis_timeout;
  return rc.Validate();
}

}  // namespace

const service::Schema<OutboxConfig>& OutboxSchema() {
  static const auto* schema = new service::Schema<C>(
      service::Schema<C>({
          Setting<C, std::string>("pg_dsn",
                                  "PostgreSQL connection string (URI or key=value; "
                                  "sslmode and several hosts too).",
                                  &C::pg_dsn, service::NonEmpty()),
          Setting<C, absl::Duration>("outbox_interval",
                                     "A pass over the due PENDING rows this often (a full "
                                     "batch is followed by the next pass at once).",
                                     &C::interval,
                                     InRange(absl::Milliseconds(100), absl::Hours(1))),
          Setting<C, absl::Duration>("outbox_retry_interval",
                                     "A row whose coupon failed is tried again this long "
                                     "after.",
                                     &C::retry_interval,
                                     InRange(absl::ZeroDuration(), absl::Hours(24))),
          Setting<C, int>("outbox_max_attempts",
                          "Attempts per row, the first included, before it becomes FAILED "
                          "(4: the first attempt and 3 retries).",
                          &C::max_attempts, InRange(1, 100)),
          Setting<C, int>("outbox_batch_size",
                          "Rows claimed per pass, in one transaction, and reservations "
                          "settled per pass at most.",
                          &C::batch_size, InRange(1, 100000)),
          Setting<C, std::string>(
              "redis_addr",
              "Redis host:port of the gateways, whose copies reserved there but never "
              "written to PostgreSQL each pass settles; empty: none.",
              &C::redis_addr),
          Setting<C, std::string>("redis_password",
                                  "Redis AUTH password; prefer the REDIS_PASSWORD "
                                  "environment variable. Never logged.",
                                  &C::redis_password)
              .Secret(),
          Setting<C, absl::Duration>("redis_timeout", "Redis connect and command timeout.",
                                     &C::redis_timeout),
          Setting<C, absl::Duration>(
              "reconcile_after",
              "A copy reserved in Redis this long ago and still not in PostgreSQL is "
              "written by the scheduler (its gateway died or gave up).",
              &C::reconcile_after,
              service::AtLeast(absl::Seconds(1), ": a gateway writes its copy within its call")),
          Setting<C, absl::Duration>("redis_record_ttl",
                                     "How long a settled request's record stays in Redis: "
                                     "the gateways' --redis_record_ttl.",
                                     &C::record_ttl, service::AtLeast(absl::Minutes(1))),
          Setting<C, int>("metrics_port",
                          "Port of /metrics (Prometheus), /healthz and /readyz, on every "
                          "interface; 0 turns them off.",
                          &C::metrics_port, InRange(0, 65535, " (0: off)")),
      })
          .Defaults([](C& c) { c.metrics_port = 9466; })
          .Check(AcrossSettings));
  return *schema;
}

absl::Status OutboxConfig::Validate() const { return OutboxSchema().Validate(*this); }

namespace {

constexpr const char* kStates[] = {"PENDING", "DONE", "FAILED"};

/// The scheduler's metrics, in the process's registry.
struct OutboxMetrics {
  metrics::GaugeFamily& rows;
  metrics::CounterFamily& passes;
  metrics::CounterFamily& processed;
  metrics::CounterFamily& reconciled;

  explicit OutboxMetrics(metrics::Registry& r)
      : rows(r.AddGauge("coupon_outbox_rows",
                        "coupon_outbox rows by state, counted in PostgreSQL "
                        "after a pass (at most once a second).",
                        {"state"})),
        passes(r.AddCounter("coupon_outbox_passes_total",
                            "Passes: ok (committed) or error (nothing "
                            "committed, e.g. PostgreSQL down).",
                            {"result"})),
        processed(r.AddCounter("coupon_outbox_rows_processed_total",
                               "Claimed rows by what the pass did: done (stock "
                               "taken), retried (PENDING again), failed "
                               "(FAILED for good).",
                               {"result"})),
        reconciled(r.AddCounter("coupon_outbox_reconciled_total",
                                "Copies reserved in Redis that no gateway wrote "
                                "to PostgreSQL, settled by the scheduler: "
                                "written (the user holds it now) or duplicate "
                                "(PostgreSQL holds the user's other copy: "
                                "ALREADY_ISSUED) or released (the request id "
                                "holds another user's copy: back to the "
                                "stock); refused counts the tries "
                                "PostgreSQL refused (the copy stays reserved).",
                                {"result"})) {
    for (const char* r : {"written", "duplicate", "released", "refused"}) reconciled.WithLabelValues({r});
    passes.WithLabelValues({"ok"});
    passes.WithLabelValues({"error"});
    for (const char* r : {"done", "retried", "failed"}) processed.WithLabelValues({r});
  }
};

struct ClaimedRow {
  int64_t outbox_id = 0;
  int64_t coupon_id = 0;
  int attempts = 0;
  std::string request_id;
};

// At most `max_bytes` of `s`, cut at a UTF-8 character boundary: PostgreSQL
// refuses a text parameter that ends inside a character, and the error text
// quotes the coupon's name.
std::string Truncated(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

constexpr size_t kMaxErrorBytes = 2000;

// Takes the group's copies from the coupon's stock and marks its rows DONE
// (what NextOutboxState says of a success, for the whole group at once).
// FAILED_PRECONDITION when the stock is too small (remaining_quantity >= 0).
absl::Status TakeStock(pg::Connection& conn, int64_t coupon_id,
                       const std::vector<int64_t>& outbox_ids) {
  ASSIGN_OR_RETURN(
      pg::Result marked,
      conn.Exec(
          "WITH stock AS ("
          "  UPDATE coupons SET remaining_quantity = remaining_quantity - "
          "$2::bigint"
          "  WHERE coupon_id = $1::bigint RETURNING coupon_id)"
          " UPDATE coupon_outbox AS o"
          " SET state = 'DONE', attempts = o.attempts + 1, processed_at = now()"
          " FROM stock"
          " WHERE o.outbox_id = ANY($3::bigint[]) AND o.coupon_id = "
          "stock.coupon_id"
          " RETURNING o.outbox_id",
          {absl::StrCat(coupon_id), absl::StrCat(outbox_ids.size()),
           pg::Int64Array(outbox_ids)}));
  if (marked.rows() != static_cast<int>(outbox_ids.size())) {
    // The foreign key makes this unreachable; rolled back all the same.
    return absl::NotFoundError(absl::StrCat("coupon ", coupon_id, ": marked ",
                                            marked.rows(), " of ",
                                            outbox_ids.size(), " outbox rows"));
  }
  return absl::OkStatus();
}

// A row that became FAILED, logged once the pass is committed.
struct FailedRow {
  ClaimedRow row;
  int attempts;
  std::string error;
};

// One pass's work on its claimed rows, inside the pass's transaction.
struct PassWork {
  pg::Connection& conn;
  const OutboxConfig& config;
  absl::Time now;  // the transaction's start, by the database's clock
  PassStats& stats;
  std::vector<FailedRow>& failed_rows;

  // Locks the coupon and applies the oldest rows its stock still covers;
  // only the copies beyond it fail: those are the ones issued over the stock
  // (e.g. by a Redis that lost its data), one FAILED row per extra copy. A
  // coupon's other failure (a lock wait cancelled, ...) undoes its part and
  // charges its rows an attempt. An error return ends the pass uncommitted.
  absl::Status ApplyCoupon(int64_t coupon_id,
                           const std::vector<ClaimedRow>& rows) {
    RETURN_IF_ERROR(conn.Exec("SAVEPOINT coupon_group").status());
    // FOR NO KEY UPDATE, what the UPDATE below takes anyway: it orders the
    // scheduler's replicas, and leaves the gateways' copies be, whose
    // foreign-key checks share the coupon's key (FOR KEY SHARE) and would
    // wait for the whole pass behind FOR UPDATE.
    absl::StatusOr<pg::Result> stock = conn.Exec(
        "SELECT remaining_quantity FROM coupons WHERE coupon_id = $1"
        " FOR NO KEY UPDATE",
        {absl::StrCat(coupon_id)});
    size_t fit = rows.size();
    if (stock.ok() && stock->rows() == 1) {
      fit = static_cast<size_t>(std::clamp<int64_t>(
          stock->GetInt64(0, 0), 0, static_cast<int64_t>(rows.size())));
    }
    const std::vector<ClaimedRow> covered(rows.begin(), rows.begin() + fit);
    const std::vector<ClaimedRow> excess(rows.begin() + fit, rows.end());
    absl::Status applied = stock.status();
    if (applied.ok() && !covered.empty()) {
      std::vector<int64_t> ids;
      ids.reserve(covered.size());
      for (const ClaimedRow& r : covered) ids.push_back(r.outbox_id);
      applied = TakeStock(conn, coupon_id, ids);
    }
    if (applied.ok()) {
      RETURN_IF_ERROR(conn.Exec("RELEASE SAVEPOINT coupon_group").status());
      stats.done += static_cast<int>(covered.size());
      if (excess.empty()) return absl::OkStatus();
      return Charge(
          coupon_id, excess,
          absl::FailedPreconditionError(absl::StrCat(
              "coupon ", coupon_id, " has no stock left in PostgreSQL for ",
              excess.size(), " more issued copies: issued beyond the stock")));
    }
    // The connection is gone: nothing of this pass is committed and no row
    // loses an attempt to the outage.
    if (applied.code() == absl::StatusCode::kUnavailable || !conn.healthy()) {
      return applied;
    }
    RETURN_IF_ERROR(conn.Exec("ROLLBACK TO SAVEPOINT coupon_group").status());
    RETURN_IF_ERROR(conn.Exec("RELEASE SAVEPOINT coupon_group").status());
    return Charge(coupon_id, rows, applied);
  }

  // Charges `rows` an attempt for `applied`: retried later, or FAILED.
  absl::Status Charge(int64_t coupon_id, const std::vector<ClaimedRow>& rows,
                      const absl::Status& applied) {
    std::vector<int64_t> ids;
    ids.reserve(rows.size());
    for (const ClaimedRow& r : rows) ids.push_back(r.outbox_id);
    std::vector<int64_t> attempts, next_us;
    std::vector<std::string> states;
    int retried = 0;
    std::string error;
    for (const ClaimedRow& r : rows) {
      OutboxTransition t = NextOutboxState(
          r.attempts, applied, config.max_attempts, now, config.retry_interval);
      states.emplace_back(OutboxStateName(t.state));
      attempts.push_back(t.attempts);
      next_us.push_back(t.state == OutboxState::kPending
                            ? absl::ToUnixMicros(t.next_attempt_at)
                            : 0);
      error = Truncated(t.last_error, kMaxErrorBytes);
      if (t.state == OutboxState::kFailed) {
        failed_rows.push_back({r, t.attempts, error});
      } else {
        ++retried;
      }
    }
    RETURN_IF_ERROR(
        conn.Exec(absl::StrCat(
                      "UPDATE coupon_outbox AS o SET state = u.state,"
                      " attempts = u.attempts,"
                      " next_attempt_at = CASE WHEN u.state = 'PENDING' THEN ",
                      pg::MicrosToTimestamp("u.next_us"),
                      " ELSE o.next_attempt_at END,"
                      " last_error = $5,"
                      " processed_at = CASE WHEN u.state = 'PENDING' THEN NULL"
                      " ELSE now() END"
                      " FROM unnest($1::bigint[], $2::text[], $3::int[], "
                      "$4::bigint[])"
                      " AS u(id, state, attempts, next_us)"
                      " WHERE o.outbox_id = u.id"),
                  {pg::Int64Array(ids), pg::TextArray(states),
                   pg::Int64Array(attempts), pg::Int64Array(next_us), error})
            .status());
    stats.retried += retried;
    stats.failed += static_cast<int>(rows.size()) - retried;
    LOG(WARNING) << "outbox: coupon " << coupon_id << ": " << rows.size()
                 << " rows not applied (" << retried << " retried in "
                 << config.retry_interval << ", "
                 << static_cast<int>(rows.size()) - retried
                 << " FAILED): " << applied;
    return absl::OkStatus();
  }
};

}  // namespace

struct OutboxScheduler::Pass {
  PassStats stats;
  std::vector<FailedRow> failed_rows;
};

absl::StatusOr<std::unique_ptr<OutboxScheduler>> OutboxScheduler::Create(
    const OutboxConfig& config) {
  RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<OutboxScheduler> scheduler(new OutboxScheduler(config));
  if (absl::Status db = scheduler->Connect(); !db.ok()) {
    LOG(WARNING) << "outbox: " << db << "; retrying with the first pass";
  }
  if (!config.redis_addr.empty()) {
    redis::RedisConfig rc;
    rc.addr = config.redis_addr;
    rc.password = config.redis_password;
    rc.pool_size = 1;
    rc.command_timeout = config.redis_timeout;
    ASSIGN_OR_RETURN(scheduler->redis_, redis::Client::Create(rc));
  }
  if (config.metrics_port != 0) {
    auto http = metrics::ServeMetrics("0.0.0.0", config.metrics_port,
                                      [s = scheduler.get()] { return s->ready(); });
    if (!http.ok()) {
      return absl::Status(http.status().code(),
                          absl::StrCat("--metrics_port: ", http.status().message()));
    }
    scheduler->http_ = std::move(*http);
    LOG(INFO) << "outbox: /metrics, /healthz, /readyz on port " << config.metrics_port;
  }
  return scheduler;
}

OutboxScheduler::OutboxScheduler(const OutboxConfig& config)
    : config_(config) {}

OutboxScheduler::~OutboxScheduler() { http_.reset(); }

absl::Status OutboxScheduler::Connect() {
  if (conn_ && conn_->Reusable()) return absl::OkStatus();
  conn_.reset();
  ready_.store(false);
  ASSIGN_OR_RETURN(conn_, pg::Connection::Connect(config_.pg_dsn,
                                                  config_.pg_connect_timeout));
  ready_.store(!stopping_.load());
  return absl::OkStatus();
}

absl::Status OutboxScheduler::CountRows() {
  RETURN_IF_ERROR(Connect());
  ASSIGN_OR_RETURN(pg::Result counted,
                   conn_->Exec("SELECT state, count(*) FROM coupon_outbox "
                               "GROUP BY state"));
  std::map<std::string, int64_t> by_state;
  for (int i = 0; i < counted.rows(); ++i) {
    by_state[std::string(counted.Get(i, 0))] = counted.GetInt64(i, 1);
  }
  for (const char* state : kStates) {
    metrics::Instance<OutboxMetrics>().rows.WithLabelValues({state}).Set(
        static_cast<double>(by_state[state]));
  }
  last_count_ = absl::Now();
  return absl::OkStatus();
}

absl::StatusOr<PassStats> OutboxScheduler::RunOnce() {
  const absl::Time start = absl::Now();
  Pass pass;
  if (absl::Status settled = Reconcile(pass.stats); !settled.ok()) {
    LOG_EVERY_N(WARNING, 10) << "outbox: settling reserved copies: " << settled;
  }
  absl::Status status = Connect();
  if (status.ok()) {
    status = pg::InTransaction(*conn_, [&] { return RunPass(pass); });
  }
  OutboxMetrics& m = metrics::Instance<OutboxMetrics>();
  if (!status.ok()) {
    counters_.pass_errors++;
    m.passes.WithLabelValues({"error"}).Inc();
    if (conn_ && !conn_->healthy()) {
      conn_.reset();
      ready_.store(false);
    }
    return status;
  }
  const PassStats& s = pass.stats;
  counters_.passes++;
  counters_.done += s.done;
  counters_.retried += s.retried;
  counters_.failed += s.failed;
  m.passes.WithLabelValues({"ok"}).Inc();
  m.processed.WithLabelValues({"done"}).Inc(s.done);
  m.processed.WithLabelValues({"retried"}).Inc(s.retried);
  m.processed.WithLabelValues({"failed"}).Inc(s.failed);
  if (absl::Now() - last_count_ >= absl::Seconds(1)) {
    if (absl::Status counted = CountRows(); !counted.ok()) {
      LOG(WARNING) << "outbox: counting rows by state: " << counted;
    }
  }
  for (const FailedRow& f : pass.failed_rows) {
    LOG(WARNING) << "outbox: FAILED coupon " << f.row.coupon_id << " outbox_id "
                 << f.row.outbox_id << " request " << f.row.request_id
                 << " after " << f.attempts
                 << " attempts; its copy was never taken from the "
                 << "stock: " << f.error;
  }
  if (s.claimed > 0) {
    LOG(INFO) << "outbox: pass claimed " << s.claimed << " rows of "
              << s.coupons << " coupons: " << s.done << " done, " << s.retried
              << " retried, " << s.failed << " failed, in "
              << absl::Now() - start;
  }
  return s;
}

absl::Status OutboxScheduler::Reconcile(PassStats& stats) {
  if (!redis_) return absl::OkStatus();
  using redis_issuer::kReservedKey;
  const int64_t before =
      absl::ToUnixMicros(absl::Now() - config_.reconcile_after);
  ASSIGN_OR_RETURN(redis::Reply stale,
                   redis_->Command({"ZRANGEBYSCORE", kReservedKey, "-inf",
                                    absl::StrCat(before), "LIMIT", "0",
                                    absl::StrCat(config_.batch_size)}));
  OutboxMetrics& m = metrics::Instance<OutboxMetrics>();
  for (const redis::Reply& member : stale.elements) {
    const std::string& request_id = member.str;
    ASSIGN_OR_RETURN(redis::Reply text,
                     redis_->Command({"GET", redis_issuer::RequestKey(request_id)}));
    absl::StatusOr<redis_issuer::Record> record =
        text.type == redis::Reply::Type::kString
            ? redis_issuer::ParseRecord(request_id, text.str)
            : absl::NotFoundError("no record");
    if (!record.ok() || !record->reserved) {
      // Settled meanwhile (or, for a missing record, nothing left to do).
      if (!record.ok()) {
        LOG(WARNING) << "outbox: reserved request " << request_id << ": "
                     << record.status() << "; dropped from " << kReservedKey;
      }
      RETURN_IF_ERROR(redis_->Command({"ZREM", kReservedKey, request_id}).status());
      continue;
    }
    IssueResult& r = record->result;
    if (!config_.only_coupon_ids.empty() &&
        std::find(config_.only_coupon_ids.begin(), config_.only_coupon_ids.end(),
                  r.coupon_id) == config_.only_coupon_ids.end()) {
      continue;
    }
    RETURN_IF_ERROR(Connect());
    absl::StatusOr<IssueResult> ended = redis_issuer::StoreCopy(*conn_, r);
    if (absl::IsAlreadyExists(ended.status())) {
      // The request id holds another coupon's or user's copy (its record
      // expired or was lost, and the id was reused): nobody holds this
      // reservation, and its copy goes back to the stock.
      LOG(WARNING) << "outbox: request " << request_id << " of coupon " << r.coupon_id
                   << " was reserved for " << r.user_id << ": " << ended.status().message()
                   << "; the reservation is released";
      RETURN_IF_ERROR(redis_issuer::ReleaseReservation(*redis_, r));
      ++stats.reconciled_released;
      m.reconciled.WithLabelValues({"released"}).Inc();
      continue;
    }
    if (!ended.ok() && !conn_->healthy()) {
      conn_.reset();  // PostgreSQL is gone: the pass ends here
      return ended.status();
    }
    if (!ended.ok()) {
      // PostgreSQL refused this copy itself (a constraint, a trigger, its
      // coupon row deleted by hand). It stays reserved and goes to the back
      // of the line, so that the copies reserved after it are not held up:
      // a pass begins with the oldest.
      LOG(WARNING) << "outbox: request " << request_id << " of coupon " << r.coupon_id
                   << ": its reserved copy could not be written: " << ended.status()
                   << "; tried again in " << config_.reconcile_after;
      ++stats.reconcile_failures;
      m.reconciled.WithLabelValues({"refused"}).Inc();
      RETURN_IF_ERROR(redis_->Command({"ZADD", kReservedKey, "XX",
                                       absl::StrCat(absl::ToUnixMicros(absl::Now())),
                                       request_id})
                          .status());
      continue;
    }
    r = *ended;
    if (r.outcome == Outcome::kAlreadyIssued) {
      ++stats.reconciled_duplicates;
      m.reconciled.WithLabelValues({"duplicate"}).Inc();
    } else {
      ++stats.reconciled;
      m.reconciled.WithLabelValues({"written"}).Inc();
    }
    RETURN_IF_ERROR(redis_issuer::SettleReservation(*redis_, r, config_.record_ttl));
    LOG(WARNING) << "outbox: request " << request_id << " of coupon " << r.coupon_id
                 << " had its copy reserved in Redis but not written; settled "
                 << OutcomeName(r.outcome);
    // For the gateways' live watches; request-id lookups read the stores.
    (void)redis_->Command(
        {"PUBLISH", redis_issuer::kResultChannel, EncodeIssueResult(r)});
  }
  return absl::OkStatus();
}

absl::Status OutboxScheduler::RunPass(Pass& pass) {
  pg::Connection& conn = *conn_;
  // now() is the transaction's start: the same instant the claim compared
  // next_attempt_at with, and the database's clock, not ours.
  ASSIGN_OR_RETURN(
      pg::Result claimed,
      conn.Exec("SELECT outbox_id, coupon_id, attempts, request_id,"
                " floor(extract(epoch FROM now()) * 1000000)::bigint"
                " FROM coupon_outbox"
                " WHERE state = 'PENDING' AND next_attempt_at <= now()"
                "   AND (cardinality($2::bigint[]) = 0 OR coupon_id = "
                "ANY($2::bigint[]))"
                " ORDER BY outbox_id LIMIT $1"
                " FOR UPDATE SKIP LOCKED",
                {absl::StrCat(config_.batch_size),
                 pg::Int64Array(config_.only_coupon_ids)}));
  if (claimed.rows() == 0) return absl::OkStatus();
  const absl::Time now = absl::FromUnixMicros(claimed.GetInt64(0, 4));

  // Ordered by coupon id: every replica (and the Kafka worker) locks coupons
  // in ascending order, so two passes never deadlock.
  std::map<int64_t, std::vector<ClaimedRow>> by_coupon;
  for (int i = 0; i < claimed.rows(); ++i) {
    ClaimedRow row;
    row.outbox_id = claimed.GetInt64(i, 0);
    row.coupon_id = claimed.GetInt64(i, 1);
    row.attempts = static_cast<int>(claimed.GetInt64(i, 2));
    row.request_id = std::string(claimed.Get(i, 3));
    by_coupon[row.coupon_id].push_back(std::move(row));
  }
  pass.stats.claimed = claimed.rows();
  pass.stats.coupons = static_cast<int>(by_coupon.size());

  PassWork work{conn, config_, now, pass.stats, pass.failed_rows};
  for (const auto& [coupon_id, rows] : by_coupon) {
    RETURN_IF_ERROR(work.ApplyCoupon(coupon_id, rows));
  }
  return absl::OkStatus();
}

absl::Status OutboxScheduler::Run(const std::atomic<bool>& stop) {
  LOG(INFO) << "outbox: a pass every " << config_.interval << ", up to "
            << config_.batch_size << " rows; failed rows retried every "
            << config_.retry_interval << ", " << config_.max_attempts
            << " attempts in all";
  while (!stop.load()) {
    const absl::Time next = absl::Now() + config_.interval;
    absl::StatusOr<PassStats> stats = RunOnce();
    if (!stats.ok()) {
      if (stats.status().code() == absl::StatusCode::kUnavailable) {
        LOG(WARNING) << "outbox: pass failed, next in " << config_.interval
                     << ": " << stats.status();
      } else {
        LOG(ERROR) << "outbox: pass failed, next in " << config_.interval
                   << ": " << stats.status();
      }
    } else if (stats->claimed >= config_.batch_size) {
      continue;  // a backlog: the next pass at once
    }
    for (absl::Time now = absl::Now(); !stop.load() && now < next;
         now = absl::Now()) {
      absl::SleepFor(std::min(absl::Milliseconds(100), next - now));
    }
  }
  stopping_.store(true);
  ready_.store(false);
  LOG(INFO) << "outbox: stopped after " << counters_.passes.load()
            << " passes: " << counters_.done.load() << " done, "
            << counters_.retried.load() << " retried, "
            << counters_.failed.load() << " failed";
  return absl::OkStatus();
}

}  // namespace coupon::outbox
