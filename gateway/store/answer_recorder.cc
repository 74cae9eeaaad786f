#include "gateway/store/answer_recorder.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/metrics/metrics.h"
#include "common/pg/rows.h"
#include "common/domain/status_macros.h"
#include "glog/logging.h"

namespace coupon::gateway {
namespace {

struct RecorderMetrics {
  metrics::Counter& stored;
  metrics::Counter& existing;
  metrics::Counter& failed;
  metrics::Histogram& batch_answers;
  metrics::Histogram& batch_seconds;
  metrics::Counter& by_insert;
  metrics::Counter& by_on_conflict;

  metrics::Counter& stored_by(bool on_conflict) {
    return on_conflict ? by_on_conflict : by_insert;
  }

  explicit RecorderMetrics(metrics::Registry& r)
      : RecorderMetrics(
            r, r.AddCounter(
                   "coupon_gateway_answers_stored_total",
                   "Answers the gateway gave without the worker, by what storing "
                   "them found: stored (the id's first result), existing (the id "
                   "held a result already, which was answered instead), failed "
                   "(not stored: the worker decided instead).",
                   {"found"})) {}

 private:
  RecorderMetrics(metrics::Registry& r, metrics::CounterFamily& found)
      : RecorderMetrics(
            r, found,
            r.AddCounter("coupon_gateway_answer_batches_total",
                         "Batches of answers stored, by the statement that stored "
                         "them: insert (a plain INSERT: no id of the batch held a "
                         "result), on_conflict (INSERT ... ON CONFLICT, after a plain "
                         "INSERT found an id taken, or the batch before did).",
                         {"statement"})) {}
  RecorderMetrics(metrics::Registry& r, metrics::CounterFamily& found,
                  metrics::CounterFamily& statement)
      : stored(found.WithLabelValues({"stored"})),
        existing(found.WithLabelValues({"existing"})),
        failed(found.WithLabelValues({"failed"})),
        batch_answers(r.AddHistogram("coupon_gateway_answer_batch_answers",
                                     "Answers stored per statement (group commit).",
                                     {}, {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000})
                          .WithLabelValues()),
        batch_seconds(r.AddHistogram("coupon_gateway_answer_batch_seconds",
                                     "One statement storing a batch of answers, "
                                     "commit included.",
                                     {}, metrics::LatencyBuckets())
                          .WithLabelValues()),
        by_insert(statement.WithLabelValues({"insert"})),
        by_on_conflict(statement.WithLabelValues({"on_conflict"})) {}
};

// The batch's proposals, one array per column.
// `chk`: whether a SOLD_OUT is checked against the user's copies.
constexpr char kProposals[] =
    "unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[],"
    " $6::bigint[], $7::boolean[]) AS p(r, c, u, o, rem, at, chk)";

// The proposals in `from` stored as rows of issue_results. A SOLD_OUT for a
// user who holds a copy is ALREADY_ISSUED, as the worker would decide it. The
// holder is probed by index, row by row (as a join the planner may scan all
// of user_coupons), unless the gateway knows the user holds none (`chk`
// false: AND stops at it).
std::string InsertSql(absl::string_view from) {
  return absl::StrCat(
      "INSERT INTO issue_results (request_id, coupon_id, user_id,"
      "   outcome, remaining_quantity, decided_at)"
      " SELECT p.r, p.c, p.u,"
      "   CASE WHEN p.o = 'SOLD_OUT' AND p.chk AND (SELECT 1 FROM user_coupons uc"
      "     WHERE uc.coupon_id = p.c AND uc.user_id = p.u LIMIT 1) IS NOT NULL"
      "   THEN 'ALREADY_ISSUED' ELSE p.o END,"
      "   p.rem, ",
      pg::MicrosToTimestamp("p.at"), " FROM ", from);
}

// Usually no id of a batch holds a result yet. Then a plain INSERT stores
// them all and answers each row's outcome. When one id is taken, it fails
// whole (unique_violation), and the batch is stored by kStoreTaken instead.
// Timed with pgbench on this schema, 120 rows a statement, the plain INSERT
// costs PostgreSQL about 15 µs a row and ON CONFLICT about 23: speculative
// insertion probes the index twice and logs each row twice.
constexpr char kStoreNew[] = "coupon_gateway_store_new_answers";
const std::string& StoreNewSql() {
  static const std::string* sql = new std::string(
      absl::StrCat(InsertSql(kProposals), " RETURNING request_id, outcome"));
  return *sql;
}

// The id's first result stands, whoever stored it. Answers back only what
// the caller cannot know: the ids that held a result already (outcome NULL),
// and the rows stored ALREADY_ISSUED.
constexpr char kStoreTaken[] = "coupon_gateway_store_answers";
const std::string& StoreTakenSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "WITH p AS (SELECT * FROM ", kProposals, "),"
      " ins AS (", InsertSql("p"),
      "   ON CONFLICT (request_id) DO NOTHING RETURNING request_id, outcome)"
      " SELECT request_id, outcome FROM ins WHERE outcome = 'ALREADY_ISSUED'"
      " UNION ALL"
      " SELECT p.r, NULL FROM p WHERE p.r NOT IN (SELECT request_id FROM ins)"));
  return *sql;
}

}  // namespace

AnswerRecorder::AnswerRecorder(RecorderConfig config)
    : config_(std::move(config)) {
  metrics::Instance<RecorderMetrics>();
  rounds_ = std::make_unique<service::GroupCommit<Item>>(
      service::GroupCommitOptions{config_.max_waiting, config_.max_batch,
                                  config_.batch_wait},
      [this](std::vector<Item>& batch, bool stopping) { Handle(batch, stopping); });
}

// Stops the rounds first: the last one still uses the connection.
AnswerRecorder::~AnswerRecorder() { rounds_.reset(); }

void AnswerRecorder::Record(IssueResult proposed, Done done) {
  Item item{std::move(proposed), std::move(done)};
  if (rounds_->Add(item)) return;
  metrics::Instance<RecorderMetrics>().failed.Inc();
  item.done(absl::UnavailableError(
      "postgres: the gateway's answers are waiting to be stored at their limit"));
}

void AnswerRecorder::Handle(std::vector<Item>& batch, bool stopping) {
  const absl::Time start = absl::Now();
  // The insert may be repeated: a batch whose commit was lost with the
  // connection is found stored by its second try, as the ids' results.
  absl::Status stored =
      stopping ? absl::UnavailableError("gateway: shutting down") : Store(batch);
  if (!stored.ok() && !stopping) {
    LOG_EVERY_N(WARNING, 10) << "gateway: storing " << batch.size()
                             << " answers: " << stored << "; trying again";
    stored = Store(batch);
  }
  RecorderMetrics& m = metrics::Instance<RecorderMetrics>();
  if (stored.ok()) {
    m.batch_answers.Observe(static_cast<double>(batch.size()));
    m.batch_seconds.ObserveDuration(absl::Now() - start);
    backoff_ = absl::Milliseconds(50);
  } else {
    LOG_EVERY_N(WARNING, 10) << "gateway: " << batch.size()
                             << " answers not stored: " << stored;
    m.failed.Inc(static_cast<double>(batch.size()));
  }
  for (Item& item : batch) {
    item.done(stored.ok() ? std::move(item.stored)
                          : absl::StatusOr<IssueResult>(stored));
  }
  // After the callers heard their answers: they do not wait for this.
  if (stored.ok() && !stopping) LearnCopies();
  // Not in a tight loop against a database that is down: the callers fall
  // back on the worker meanwhile.
  if (!stored.ok() && !stopping) {
    absl::SleepFor(backoff_);
    backoff_ = std::min(backoff_ * 2, absl::Seconds(2));
  }
}

absl::Status AnswerRecorder::Store(std::vector<Item>& batch) {
  if (!conn_ || !conn_->Reusable()) {
    conn_.reset();
    ASSIGN_OR_RETURN(auto conn, pg::Connection::Connect(config_.pg_dsn,
                                                        config_.connect_timeout,
                                                        config_.session));
    RETURN_IF_ERROR(conn->Prepare(kStoreNew, StoreNewSql()));
    RETURN_IF_ERROR(conn->Prepare(kStoreTaken, StoreTakenSql()));
    conn_ = std::move(conn);
  }
  // One proposal per request id: the same request sent twice at once.
  absl::flat_hash_map<std::string, size_t> first;  // id -> index into batch
  std::vector<std::string> r, u, o;
  std::vector<int64_t> c, rem, at;
  std::vector<bool> chk;
  copies_wanted_.clear();
  for (size_t i = 0; i < batch.size(); ++i) {
    const IssueResult& p = batch[i].proposed;
    if (!first.try_emplace(p.request_id, i).second) continue;
    const bool sold_out = p.outcome == Outcome::kSoldOut;
    const bool check = sold_out && !(config_.knows_no_copy &&
                                     config_.knows_no_copy(p.coupon_id, p.user_id));
    if (check) copies_wanted_.insert(p.coupon_id);
    chk.push_back(check);
    r.push_back(p.request_id);
    c.push_back(p.coupon_id);
    u.push_back(p.user_id);
    o.emplace_back(OutcomeName(p.outcome));
    rem.push_back(std::max<int64_t>(0, p.remaining_quantity));
    at.push_back(p.decided_at);
  }
  const std::vector<pg::Param> params = {pg::TextArray(r),   pg::Int64Array(c),
                                         pg::TextArray(u),   pg::TextArray(o),
                                         pg::Int64Array(rem), pg::Int64Array(at),
                                         pg::BoolArray(chk)};
  absl::StatusOr<pg::Result> told = absl::UnknownError("not run");
  if (!taken_seen_) {
    told = conn_->ExecPrepared(kStoreNew, params);
    // Some id holds a result: nothing of the batch was stored.
    taken_seen_ = absl::IsAlreadyExists(told.status()) && conn_->healthy();
  }
  const bool careful = taken_seen_;
  if (careful) told = conn_->ExecPrepared(kStoreTaken, params);
  if (!told.ok()) {
    if (!conn_->healthy()) conn_.reset();
    return told.status();
  }
  absl::flat_hash_map<std::string, Outcome> turned;  // stored ALREADY_ISSUED
  std::vector<std::string> taken;                    // held a result already
  for (int i = 0; i < told->rows(); ++i) {
    if (told->IsNull(i, 1)) {
      taken.emplace_back(told->Get(i, 0));
    } else if (told->Get(i, 1) == OutcomeName(Outcome::kAlreadyIssued)) {
      turned.emplace(std::string(told->Get(i, 0)), Outcome::kAlreadyIssued);
    }
  }
  // Back to the plain INSERT once a batch finds no id taken: while callers
  // resend ids that other gateways answered, every batch would fail it.
  if (careful && taken.empty()) taken_seen_ = false;
  metrics::Instance<RecorderMetrics>()
      .stored_by(careful)
      .Inc();
  absl::flat_hash_map<std::string, IssueResult> existing;
  if (!taken.empty()) {
    absl::StatusOr<pg::Result> rows =
        conn_->Exec(pg::IssueResultsByRequestIdsSql(), {pg::TextArray(taken)});
    if (!rows.ok()) {
      if (!conn_->healthy()) conn_.reset();
      return rows.status();
    }
    for (int i = 0; i < rows->rows(); ++i) {
      IssueResult stored = pg::IssueResultFromRow(*rows, i);
      existing.emplace(stored.request_id, std::move(stored));
    }
  }
  const absl::flat_hash_set<std::string> taken_set(taken.begin(), taken.end());
  RecorderMetrics& m = metrics::Instance<RecorderMetrics>();
  m.stored.Inc(static_cast<double>(r.size() - taken.size()));
  m.existing.Inc(static_cast<double>(taken.size()));
  for (Item& item : batch) {
    const std::string& id = item.proposed.request_id;
    if (auto it = existing.find(id); it != existing.end()) {
      item.stored = it->second;
      continue;
    }
    if (taken_set.contains(id)) {
      // Held at the insert, gone at the read: only a row deleted in
      // between, which the service never does.
      return absl::InternalError(absl::StrCat(
          "postgres: request ", id, " held a result, then none"));
    }
    // This batch stored the id's result; a duplicate of the same request in
    // the batch gets it too (its identity is checked by the caller).
    item.stored = batch[first.at(id)].proposed;
    if (auto it = turned.find(id); it != turned.end()) item.stored->outcome = it->second;
  }
  return absl::OkStatus();
}

// The coupon's every copy, if its stock is gone and it has at most $2: one
// row of NULLs when it has none; no row at all otherwise. One statement, so
// one snapshot: the copies are those of the decisions that took the stock.
constexpr char kSoldOutCopiesSql[] =
    "SELECT uc.user_coupon_id, uc.user_id, uc.request_id"
    " FROM coupons c LEFT JOIN user_coupons uc ON uc.coupon_id = c.coupon_id"
    " WHERE c.coupon_id = $1 AND c.remaining_quantity = 0 AND c.total_quantity <= $2";

void AnswerRecorder::LearnCopies() {
  if (!config_.learn_copies || copies_wanted_.empty() || !conn_) return;
  const absl::Time now = absl::Now();
  if (copies_read_at_.size() > 100000) copies_read_at_.clear();  // bounded
  for (int64_t coupon_id : copies_wanted_) {
    auto [it, added] = copies_read_at_.try_emplace(coupon_id, now);
    if (!added && now - it->second < config_.copies_retry) continue;
    it->second = now;
    absl::StatusOr<pg::Result> rows =
        conn_->Exec(kSoldOutCopiesSql, {absl::StrCat(coupon_id),
                                        absl::StrCat(config_.max_copies)});
    if (!rows.ok()) {
      LOG_EVERY_N(WARNING, 10) << "gateway: reading the copies of coupon "
                               << coupon_id << ": " << rows.status();
      if (!conn_->healthy()) conn_.reset();
      return;
    }
    if (rows->rows() == 0) continue;  // stock left, or too many copies
    std::vector<UserCouponRow> copies;
    for (int i = 0; i < rows->rows(); ++i) {
      if (rows->IsNull(i, 0)) continue;  // sold out with no copy
      UserCouponRow copy;
      copy.user_coupon_id = rows->GetInt64(i, 0);
      copy.coupon_id = coupon_id;
      copy.user_id = std::string(rows->Get(i, 1));
      copy.request_id = std::string(rows->Get(i, 2));
      copies.push_back(std::move(copy));
    }
    VLOG(1) << "gateway: coupon " << coupon_id << " is sold out with "
            << copies.size() << " copies, all known now";
    config_.learn_copies(coupon_id, copies);
  }
}

}  // namespace coupon::gateway
