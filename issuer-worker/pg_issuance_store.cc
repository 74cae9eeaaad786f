#include "issuer-worker/pg_issuance_store.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
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
    const std::vector<IssueRequest>& requests, UnixMicros now, const Decide& decide) {
  // A gateway may store an answer for one of the batch's ids while the
  // transaction runs (the same request resent after the coupon sold out):
  // the id's first result stands, so the batch is decided again at once
  // and republishes it.
  for (int attempt = 1;; ++attempt) {
    RETURN_IF_ERROR(Connect());
    BatchDecision decision;
    absl::Status done = pg::InTransaction(*conn_, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(Snapshot snap, Load(*conn_, requests));
      decision = decide(requests, std::move(snap), now);
      return Store(*conn_, decision, now);
    });
    if (done.ok()) return decision;
    if (!absl::IsAlreadyExists(done) || attempt == 3) return done;
    VLOG(1) << "worker: " << done << "; deciding the batch again";
  }
}

absl::StatusOr<Snapshot> PgIssuanceStore::Load(pg::Connection& conn,
                                               const std::vector<IssueRequest>& requests) {
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

  Snapshot snap;
  // Lock first, in id order (no deadlock between workers): every read below
  // then sees what any earlier owner of this partition committed.
  ASSIGN_OR_RETURN(
      pg::Result coupons,
      conn.Exec(absl::StrCat("SELECT ", pg::kCouponColumns,
                             " FROM coupons WHERE coupon_id = ANY($1::bigint[])"
                             " ORDER BY coupon_id FOR UPDATE"),
                {pg::Int64Array(coupon_ids)}));
  for (int i = 0; i < coupons.rows(); ++i) {
    CouponInfo c = pg::CouponFromRow(coupons, i);
    snap.coupons.emplace(c.coupon_id, std::move(c));
  }
  ASSIGN_OR_RETURN(pg::Result decided,
                   conn.Exec(absl::StrCat("SELECT ", pg::kIssueResultColumns,
                                          " FROM issue_results"
                                          " WHERE request_id = ANY($1::text[])"),
                             {pg::TextArray(request_ids)}));
  for (int i = 0; i < decided.rows(); ++i) {
    IssueResult r = pg::IssueResultFromRow(decided, i);
    snap.decided.emplace(r.request_id, std::move(r));
  }
  ASSIGN_OR_RETURN(
      pg::Result holders,
      // One index probe per (coupon, user) of the batch. LIMIT keeps the
      // planner from flattening this into a hash join, which scans the whole
      // table: 20 ms per batch at 60k rows, growing with every sale.
      conn.Exec("SELECT h.coupon_id, h.user_id, h.request_id"
                " FROM unnest($1::bigint[], $2::text[]) AS k(c, u)"
                " CROSS JOIN LATERAL (SELECT coupon_id, user_id, request_id"
                "   FROM user_coupons uc"
                "   WHERE uc.coupon_id = k.c AND uc.user_id = k.u LIMIT 1) h",
                {pg::Int64Array(pair_coupons), pg::TextArray(user_ids)}));
  for (int i = 0; i < holders.rows(); ++i) {
    snap.holders[{holders.GetInt64(i, 0), std::string(holders.Get(i, 1))}] =
        std::string(holders.Get(i, 2));
  }
  return snap;
}

absl::Status PgIssuanceStore::Store(pg::Connection& conn, BatchDecision& decision,
                                    UnixMicros now) {
  std::vector<pg::CopyToInsert> copies;
  for (const NewIssuance& n : decision.issuances) {
    copies.push_back({n.coupon_id, n.user_id, n.request_id});
  }
  ASSIGN_OR_RETURN(auto ids, pg::InsertCopies(conn, copies, now));
  std::vector<IssueResult> fresh;
  for (size_t idx : decision.fresh) {
    IssueResult& res = decision.results[idx];
    if (res.outcome == Outcome::kIssued) res.user_coupon_id = ids.at(res.request_id);
    fresh.push_back(res);
  }
  RETURN_IF_ERROR(pg::InsertResults(conn, fresh));
  if (decision.taken.empty()) return absl::OkStatus();
  std::vector<int64_t> coupon_ids, counts;
  for (const auto& [id, n] : decision.taken) {
    coupon_ids.push_back(id);
    counts.push_back(n);
  }
  return conn
      .Exec("UPDATE coupons AS c"
            " SET remaining_quantity = c.remaining_quantity - d.n"
            " FROM unnest($1::bigint[], $2::bigint[]) AS d(id, n)"
            " WHERE c.coupon_id = d.id",
            {pg::Int64Array(coupon_ids), pg::Int64Array(counts)})
      .status();
}

}  // namespace coupon::worker
