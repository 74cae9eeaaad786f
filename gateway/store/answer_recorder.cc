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
                          .WithLabelValues()) {}
};

// The id's first result stands; a SOLD_OUT for a user who holds a copy is
// ALREADY_ISSUED, as the worker would decide it. The holder is probed by
// index, row by row: as a join the planner may scan all of user_coupons.
// Answers back only what the caller cannot know: the ids that held a result
// already (outcome NULL), and the rows stored ALREADY_ISSUED; usually none.
constexpr char kStoreAnswers[] = "coupon_gateway_store_answers";
const std::string& StoreAnswersSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "WITH p AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[],"
      "   $4::text[], $5::bigint[], $6::bigint[]) AS p(r, c, u, o, rem, at)),"
      " ins AS (INSERT INTO issue_results (request_id, coupon_id, user_id,"
      "   outcome, remaining_quantity, decided_at)"
      "   SELECT p.r, p.c, p.u,"
      "     CASE WHEN p.o = 'SOLD_OUT' AND (SELECT 1 FROM user_coupons uc"
      "       WHERE uc.coupon_id = p.c AND uc.user_id = p.u LIMIT 1) IS NOT NULL"
      "     THEN 'ALREADY_ISSUED' ELSE p.o END,"
      "     p.rem, ",
      pg::MicrosToTimestamp("p.at"),
      "   FROM p ON CONFLICT (request_id) DO NOTHING"
      "   RETURNING request_id, outcome)"
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
    RETURN_IF_ERROR(conn->Prepare(kStoreAnswers, StoreAnswersSql()));
    conn_ = std::move(conn);
  }
  // One proposal per request id: the same request sent twice at once.
  absl::flat_hash_map<std::string, size_t> first;  // id -> index into batch
  std::vector<std::string> r, u, o;
  std::vector<int64_t> c, rem, at;
  for (size_t i = 0; i < batch.size(); ++i) {
    const IssueResult& p = batch[i].proposed;
    if (!first.try_emplace(p.request_id, i).second) continue;
    r.push_back(p.request_id);
    c.push_back(p.coupon_id);
    u.push_back(p.user_id);
    o.emplace_back(OutcomeName(p.outcome));
    rem.push_back(std::max<int64_t>(0, p.remaining_quantity));
    at.push_back(p.decided_at);
  }
  absl::StatusOr<pg::Result> told = conn_->ExecPrepared(
      kStoreAnswers, {pg::TextArray(r), pg::Int64Array(c), pg::TextArray(u),
                      pg::TextArray(o), pg::Int64Array(rem), pg::Int64Array(at)});
  if (!told.ok()) {
    if (!conn_->healthy()) conn_.reset();
    return told.status();
  }
  absl::flat_hash_map<std::string, Outcome> turned;  // stored ALREADY_ISSUED
  std::vector<std::string> taken;                    // held a result already
  for (int i = 0; i < told->rows(); ++i) {
    std::string id(told->Get(i, 0));
    if (told->IsNull(i, 1)) {
      taken.push_back(std::move(id));
    } else {
      turned.emplace(std::move(id), Outcome::kAlreadyIssued);
    }
  }
  absl::flat_hash_map<std::string, IssueResult> existing;
  if (!taken.empty()) {
    absl::StatusOr<pg::Result> rows = conn_->Exec(
        absl::StrCat("SELECT ", pg::kIssueResultColumns,
                     " FROM issue_results WHERE request_id = ANY($1::text[])"),
        {pg::TextArray(taken)});
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

}  // namespace coupon::gateway
