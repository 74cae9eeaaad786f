#include "issuer-worker/pg_issuance_store.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
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
    const std::vector<IssueRequest>& requests, UnixMicros now) {
  // A gateway may store an answer for one of the batch's ids while the
  // transaction runs (the same request resent after the coupon sold out):
  // the id's first result stands, so the batch is decided again at once
  // and republishes it.
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<BatchDecision> decided = DecideAndStoreOnce(requests, now);
    if (decided.ok() || !absl::IsAlreadyExists(decided.status()) || attempt == 3) {
      return decided;
    }
    VLOG(1) << "worker: " << decided.status() << "; deciding the batch again";
  }
}

absl::StatusOr<BatchDecision> PgIssuanceStore::DecideAndStoreOnce(
    const std::vector<IssueRequest>& requests, UnixMicros now) {
  RETURN_IF_ERROR(Connect());
  BatchDecision decision;
  RETURN_IF_ERROR(pg::InTransaction(*conn_, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(decision, InTransaction(*conn_, requests, now));
    return absl::OkStatus();
  }));
  return decision;
}

absl::StatusOr<BatchDecision> PgIssuanceStore::InTransaction(
    pg::Connection& conn, const std::vector<IssueRequest>& requests,
    UnixMicros now) {
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
  coupon_ids.erase(std::unique(coupon_ids.begin(), coupon_ids.end()),
                   coupon_ids.end());

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
  ASSIGN_OR_RETURN(
      pg::Result decided,
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

  BatchDecision decision = DecideBatch(requests, std::move(snap), now);

  if (!decision.issuances.empty()) {
    std::vector<int64_t> c;
    std::vector<std::string> u, r;
    for (const NewIssuance& n : decision.issuances) {
      c.push_back(n.coupon_id);
      u.push_back(n.user_id);
      r.push_back(n.request_id);
    }
    ASSIGN_OR_RETURN(
        pg::Result inserted,
        conn.Exec(absl::StrCat(
                      "INSERT INTO user_coupons (coupon_id, user_id, request_id,"
                      " issued_at) SELECT c, u, r, ",
                      pg::MicrosToTimestamp("$4::bigint"),
                      " FROM unnest($1::bigint[], $2::text[], $3::text[])"
                      " AS x(c, u, r) RETURNING request_id, user_coupon_id"),
                  {pg::Int64Array(c), pg::TextArray(u), pg::TextArray(r),
                   absl::StrCat(now)}));
    absl::flat_hash_map<std::string, int64_t> ids;
    for (int i = 0; i < inserted.rows(); ++i) {
      ids[std::string(inserted.Get(i, 0))] = inserted.GetInt64(i, 1);
    }
    for (size_t idx : decision.fresh) {
      IssueResult& res = decision.results[idx];
      if (res.outcome == Outcome::kIssued) res.user_coupon_id = ids.at(res.request_id);
    }
  }

  if (!decision.fresh.empty()) {
    std::vector<std::string> rid, uid, outcome;
    std::vector<int64_t> cid, ucid, remaining;
    for (size_t idx : decision.fresh) {
      const IssueResult& res = decision.results[idx];
      rid.push_back(res.request_id);
      cid.push_back(res.coupon_id);
      uid.push_back(res.user_id);
      outcome.emplace_back(OutcomeName(res.outcome));
      ucid.push_back(res.user_coupon_id);
      remaining.push_back(res.remaining_quantity);
    }
    RETURN_IF_ERROR(
        conn.Exec(absl::StrCat(
                      "INSERT INTO issue_results (request_id, coupon_id,"
                      " user_id, outcome, user_coupon_id, remaining_quantity,"
                      " decided_at) SELECT r, c, u, o, nullif(uc, 0), rem, ",
                      pg::MicrosToTimestamp("$7::bigint"),
                      " FROM unnest($1::text[], $2::bigint[], $3::text[],"
                      " $4::text[], $5::bigint[], $6::bigint[])"
                      " AS x(r, c, u, o, uc, rem)"),
                  {pg::TextArray(rid), pg::Int64Array(cid), pg::TextArray(uid),
                   pg::TextArray(outcome), pg::Int64Array(ucid),
                   pg::Int64Array(remaining), absl::StrCat(now)})
            .status());
  }

  if (!decision.taken.empty()) {
    std::vector<int64_t> ids, counts;
    for (const auto& [id, n] : decision.taken) {
      ids.push_back(id);
      counts.push_back(n);
    }
    RETURN_IF_ERROR(
        conn.Exec("UPDATE coupons AS c"
                  " SET remaining_quantity = c.remaining_quantity - d.n"
                  " FROM unnest($1::bigint[], $2::bigint[]) AS d(id, n)"
                  " WHERE c.coupon_id = d.id",
                  {pg::Int64Array(ids), pg::Int64Array(counts)})
            .status());
  }
  return decision;
}

}  // namespace coupon::worker
