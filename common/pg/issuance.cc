#include "common/pg/issuance.h"

#include "absl/strings/str_cat.h"
#include "common/domain/status_macros.h"

namespace coupon::pg {
namespace {

// The copies' columns, as array parameters: coupon ids, user ids, request ids.
struct CopyColumns {
  std::vector<int64_t> c;
  std::vector<std::string> u, r;
  explicit CopyColumns(const std::vector<CopyToInsert>& copies) {
    for (const CopyToInsert& copy : copies) {
      c.push_back(copy.coupon_id);
      u.push_back(copy.user_id);
      r.push_back(copy.request_id);
    }
  }
};

// The results' columns, as array parameters.
struct ResultColumns {
  std::vector<std::string> rid, uid, outcome;
  std::vector<int64_t> cid, ucid, remaining, at;
  explicit ResultColumns(const std::vector<IssueResult>& results) {
    for (const IssueResult& r : results) {
      rid.push_back(r.request_id);
      cid.push_back(r.coupon_id);
      uid.push_back(r.user_id);
      outcome.emplace_back(OutcomeName(r.outcome));
      ucid.push_back(r.user_coupon_id);
      remaining.push_back(r.remaining_quantity);
      at.push_back(r.decided_at);
    }
  }
};

}  // namespace

absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> InsertCopies(
    Connection& conn, const std::vector<CopyToInsert>& copies, UnixMicros issued_at,
    bool skip_written) {
  absl::flat_hash_map<std::string, int64_t> ids;
  if (copies.empty()) return ids;
  const CopyColumns x(copies);
  ASSIGN_OR_RETURN(
      Result inserted,
      conn.Exec(absl::StrCat("INSERT INTO user_coupons (coupon_id, user_id, request_id,"
                             " issued_at) SELECT c, u, r, ",
                             MicrosToTimestamp("$4::bigint"),
                             " FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(c, u, r)",
                             skip_written ? " ON CONFLICT (request_id) DO NOTHING" : "",
                             " RETURNING request_id, user_coupon_id"),
                {Int64Array(x.c), TextArray(x.u), TextArray(x.r), absl::StrCat(issued_at)}));
  for (int i = 0; i < inserted.rows(); ++i) {
    ids[std::string(inserted.Get(i, 0))] = inserted.GetInt64(i, 1);
  }
  return ids;
}

absl::Status InsertResults(Connection& conn, const std::vector<IssueResult>& results) {
  if (results.empty()) return absl::OkStatus();
  const ResultColumns x(results);
  return conn
      .Exec(absl::StrCat("INSERT INTO issue_results (request_id, coupon_id, user_id,"
                         " outcome, user_coupon_id, remaining_quantity, decided_at)"
                         " SELECT r, c, u, o, nullif(uc, 0), rem, ",
                         MicrosToTimestamp("at"),
                         " FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[],"
                         " $5::bigint[], $6::bigint[], $7::bigint[])"
                         " AS x(r, c, u, o, uc, rem, at)"),
            {TextArray(x.rid), Int64Array(x.cid), TextArray(x.uid), TextArray(x.outcome),
             Int64Array(x.ucid), Int64Array(x.remaining), Int64Array(x.at)})
      .status();
}

Statement InsertCopiesAndResults(const std::vector<CopyToInsert>& copies,
                                 const std::vector<IssueResult>& results,
                                 UnixMicros issued_at) {
  const CopyColumns x(copies);
  const ResultColumns y(results);
  return {absl::StrCat(
              "WITH copies AS (INSERT INTO user_coupons (coupon_id, user_id, request_id,"
              " issued_at) SELECT c, u, r, ",
              MicrosToTimestamp("$4::bigint"),
              " FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(c, u, r)"
              " RETURNING request_id, user_coupon_id)"
              " INSERT INTO issue_results (request_id, coupon_id, user_id, outcome,"
              " user_coupon_id, remaining_quantity, decided_at)"
              " SELECT x.r, x.c, x.u, x.o, copies.user_coupon_id, x.rem, ",
              MicrosToTimestamp("x.at"),
              " FROM unnest($5::text[], $6::bigint[], $7::text[], $8::text[],"
              " $9::bigint[], $10::bigint[]) AS x(r, c, u, o, rem, at)"
              " LEFT JOIN copies ON copies.request_id = x.r"
              " RETURNING request_id, user_coupon_id"),
          {Int64Array(x.c), TextArray(x.u), TextArray(x.r), absl::StrCat(issued_at),
           TextArray(y.rid), Int64Array(y.cid), TextArray(y.uid), TextArray(y.outcome),
           Int64Array(y.remaining), Int64Array(y.at)}};
}

}  // namespace coupon::pg
