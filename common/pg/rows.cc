#include "common/pg/rows.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace coupon::pg {

const char* const kCouponColumns =
    "coupon_id, name, total_quantity, remaining_quantity, "
    "(extract(epoch from starts_at) * 1000000)::bigint, "
    "(extract(epoch from ends_at) * 1000000)::bigint, "
    "(extract(epoch from created_at) * 1000000)::bigint";

CouponInfo CouponFromRow(const Result& r, int row) {
  CouponInfo c;
  c.coupon_id = r.GetInt64(row, 0);
  c.name = std::string(r.Get(row, 1));
  c.total_quantity = r.GetInt64(row, 2);
  c.remaining_quantity = r.GetInt64(row, 3);
  c.starts_at = r.GetOptionalInt64(row, 4);
  c.ends_at = r.GetOptionalInt64(row, 5);
  c.created_at = r.GetInt64(row, 6);
  return c;
}

const char* const kIssueResultColumns =
    "request_id, coupon_id, user_id, outcome, coalesce(user_coupon_id, 0), "
    "remaining_quantity, (extract(epoch from decided_at) * 1000000)::bigint";

const std::string& IssueResultsByRequestIdsSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "SELECT r.* FROM unnest($1::text[]) AS k(id) CROSS JOIN LATERAL (SELECT ",
      kIssueResultColumns, " FROM issue_results WHERE request_id = k.id LIMIT 1) r"));
  return *sql;
}

IssueResult IssueResultFromRow(const Result& r, int row) {
  IssueResult res;
  res.request_id = std::string(r.Get(row, 0));
  res.coupon_id = r.GetInt64(row, 1);
  res.user_id = std::string(r.Get(row, 2));
  auto outcome = OutcomeFromName(r.Get(row, 3));
  CHECK(outcome.has_value()) << "unknown outcome in issue_results: "
                             << r.Get(row, 3);
  res.outcome = *outcome;
  res.user_coupon_id = r.GetInt64(row, 4);
  res.remaining_quantity = r.GetInt64(row, 5);
  res.decided_at = r.GetInt64(row, 6);
  return res;
}

}  // namespace coupon::pg
