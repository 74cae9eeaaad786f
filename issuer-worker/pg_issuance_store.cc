#include "issuer-worker/pg_issuance_store.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/pg/issuance.h"
#include "common/pg/rows.h"
#include "common/domain/status_macros.h"
#include "glog/logging.h"

namespace coupon::worker {
absl::Status PgIssuanceStore::Connect() {
  if (conn_ && conn_->Reusable()) return absl::OkStatus();
  conn_.reset();
  ASSIGN_OR_RETURN(conn_, pg::Connection::Connect(dsn_, connect_timeout_, session_));
  return absl::OkStatus();
}

absl::StatusOr<BatchDecision> PgIssuanceStore::DecideAndStore(
    const std::vector<IssueRequest>& requests, UnixMicros now, const Decide& decide,
    const Meanwhile& meanwhile) {
  // A gateway may store an answer for one of the batch's ids while the
  // transaction runs (the same request resent after the coupon sold out):
  // the id's first result stands, so the batch is decided again at once
  // and republishes it.
  bool ran = false;  // meanwhile runs once, however many attempts
  const Meanwhile once = [&] {
    if (ran || !meanwhile) return;
    ran = true;
    meanwhile();
  };
  for (int attempt = 1;; ++attempt) {
    RETURN_IF_ERROR(Connect());
    absl::StatusOr<BatchDecision> decision = DecideOnce(requests, now, decide, once);
    if (decision.ok()) return decision;
    if (conn_->healthy()) (void)conn_->Exec("ROLLBACK");
    if (!absl::IsAlreadyExists(decision.status()) || attempt == 3) {
      return decision.status();
    }
    VLOG(1) << "worker: " << decision.status() << "; deciding the batch again";
  }
}

absl::StatusOr<BatchDecision> PgIssuanceStore::DecideOnce(
    const std::vector<IssueRequest>& requests, UnixMicros now, const Decide& decide,
    const Meanwhile& meanwhile) {
  ASSIGN_OR_RETURN(std::vector<pg::Result> read, conn_->Pipeline(Reads(requests)));
  BatchDecision decision = decide(requests, FromReads(read), now);
  std::vector<pg::Statement> writes = Writes(decision, now);
  // While the server writes and commits, the caller gets on with its own
  // work (the worker collects its next batch).
  ASSIGN_OR_RETURN(std::vector<pg::Result> written, conn_->Pipeline(writes, meanwhile));
  if (decision.fresh.empty()) return decision;
  // The copies' ids, as the results statement returned them.
  absl::flat_hash_map<std::string, int64_t> ids;
  const pg::Result& stored = written.front();
  for (int i = 0; i < stored.rows(); ++i) {
    if (!stored.IsNull(i, 1)) ids[std::string(stored.Get(i, 0))] = stored.GetInt64(i, 1);
  }
  for (size_t idx : decision.fresh) {
    IssueResult& res = decision.results[idx];
    if (res.outcome != Outcome::kIssued) continue;
    auto it = ids.find(res.request_id);
    if (it == ids.end()) {
      return absl::InternalError(absl::StrCat(
          "postgres: the copy of request ", res.request_id, " has no id"));
    }
    res.user_coupon_id = it->second;
  }
  return decision;
}

std::vector<pg::Statement> PgIssuanceStore::Reads(const std::vector<IssueRequest>& requests) {
  std::vector<int64_t> coupon_ids;
  std::vector<std::string> request_ids, user_ids;
  std::vector<int64_t> pair_coupons;
  for (const IssueRequest& r : requests) {
    coupon_ids.push_back(r.coupon_id);
    request_ids.push_back(r.request_id);
    pair_coupons.push_back(r.coupon_id);
    user_ids.push_back(r.user_id);
  }
  std::sort(coupon_ids.begin(), coupon_ids.end());
  coupon_ids.erase(std::unique(coupon_ids.begin(), coupon_ids.end()), coupon_ids.end());
  return {
      {"BEGIN", {}},
      // Lock first, in id order (no deadlock between workers): every read
      // below then sees what any earlier owner of this partition committed.
      {absl::StrCat("SELECT ", pg::kCouponColumns,
                    " FROM coupons WHERE coupon_id = ANY($1::bigint[])"
                    " ORDER BY coupon_id FOR UPDATE"),
       {pg::Int64Array(coupon_ids)}},
      {pg::IssueResultsByRequestIdsSql(), {pg::TextArray(request_ids)}},
      // One index probe per (coupon, user) of the batch. LIMIT keeps the
      // planner from flattening this into a hash join, which scans the whole
      // table: 20 ms per batch at 60k rows, growing with every sale.
      {"SELECT h.coupon_id, h.user_id, h.request_id"
       " FROM unnest($1::bigint[], $2::text[]) AS k(c, u)"
       " CROSS JOIN LATERAL (SELECT coupon_id, user_id, request_id"
       "   FROM user_coupons uc"
       "   WHERE uc.coupon_id = k.c AND uc.user_id = k.u LIMIT 1) h",
       {pg::Int64Array(pair_coupons), pg::TextArray(user_ids)}},
  };
}

Snapshot PgIssuanceStore::FromReads(const std::vector<pg::Result>& rows) {
  // rows[0] is BEGIN's.
  Snapshot snap;
  const pg::Result& coupons = rows[1];
  for (int i = 0; i < coupons.rows(); ++i) {
    CouponInfo c = pg::CouponFromRow(coupons, i);
    snap.coupons.emplace(c.coupon_id, std::move(c));
  }
  const pg::Result& decided = rows[2];
  for (int i = 0; i < decided.rows(); ++i) {
    IssueResult r = pg::IssueResultFromRow(decided, i);
    snap.decided.emplace(r.request_id, std::move(r));
  }
  const pg::Result& holders = rows[3];
  for (int i = 0; i < holders.rows(); ++i) {
    snap.holders[{holders.GetInt64(i, 0), std::string(holders.Get(i, 1))}] =
        std::string(holders.Get(i, 2));
  }
  return snap;
}

std::vector<pg::Statement> PgIssuanceStore::Writes(const BatchDecision& decision,
                                                   UnixMicros now) {
  std::vector<pg::Statement> writes;
  std::vector<pg::CopyToInsert> copies;
  for (const NewIssuance& n : decision.issuances) {
    copies.push_back({n.coupon_id, n.user_id, n.request_id});
  }
  std::vector<IssueResult> fresh;
  for (size_t idx : decision.fresh) fresh.push_back(decision.results[idx]);
  if (!fresh.empty()) writes.push_back(pg::InsertCopiesAndResults(copies, fresh, now));
  if (!decision.taken.empty()) {
    std::vector<int64_t> coupon_ids, counts;
    for (const auto& [id, n] : decision.taken) {
      coupon_ids.push_back(id);
      counts.push_back(n);
    }
    writes.push_back({"UPDATE coupons AS c"
                      " SET remaining_quantity = c.remaining_quantity - d.n"
                      " FROM unnest($1::bigint[], $2::bigint[]) AS d(id, n)"
                      " WHERE c.coupon_id = d.id",
                      {pg::Int64Array(coupon_ids), pg::Int64Array(counts)}});
  }
  // As pg::InTransaction: the commit never times out (see there).
  writes.push_back({"SET LOCAL statement_timeout = 0", {}});
  writes.push_back({"COMMIT", {}});
  return writes;
}

}  // namespace coupon::worker
