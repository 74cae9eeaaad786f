#include "gateway/store/pg_gateway_store.h"

#include "absl/strings/str_cat.h"
#include "common/pg/rows.h"
#include "common/domain/status_macros.h"

namespace coupon::gateway {
namespace {

pg::Param OptionalMicros(const std::optional<UnixMicros>& t) {
  if (!t) return std::nullopt;
  return absl::StrCat(*t);
}

}  // namespace

absl::StatusOr<CouponInfo> PgGatewayStore::CreateCoupon(const NewCoupon& c) {
  ASSIGN_OR_RETURN(auto conn, pool_->Acquire(absl::Now() + timeout_));
  CouponInfo created;
  // In a transaction, for its durable commit (pg::InTransaction).
  RETURN_IF_ERROR(pg::InTransaction(*conn, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(
        pg::Result r,
        conn->Exec(absl::StrCat("INSERT INTO coupons (name, total_quantity, "
                                "remaining_quantity, starts_at, ends_at) "
                                "VALUES ($1, $2, $2, ",
                                pg::MicrosToTimestamp("$3::bigint"), ", ",
                                pg::MicrosToTimestamp("$4::bigint"), ") RETURNING ",
                                pg::kCouponColumns),
                   {c.name, absl::StrCat(c.total_quantity), OptionalMicros(c.starts_at),
                    OptionalMicros(c.ends_at)}));
    created = pg::CouponFromRow(r, 0);
    return absl::OkStatus();
  }));
  return created;
}

absl::StatusOr<CouponInfo> PgGatewayStore::GetCoupon(int64_t coupon_id) {
  ASSIGN_OR_RETURN(
      pg::Result r,
      pool_->Read(absl::Now() + timeout_,
                  absl::StrCat("SELECT ", pg::kCouponColumns,
                               " FROM coupons WHERE coupon_id = $1"),
                  {absl::StrCat(coupon_id)}));
  if (r.rows() == 0) {
    return absl::NotFoundError(
        absl::StrCat("coupon_id: no coupon ", coupon_id));
  }
  return pg::CouponFromRow(r, 0);
}

absl::StatusOr<std::vector<IssueResult>> PgGatewayStore::FindResults(
    const std::vector<std::string>& request_ids) {
  ASSIGN_OR_RETURN(
      pg::Result r,
      pool_->Read(absl::Now() + timeout_,
                  pg::IssueResultsByRequestIdsSql(), {pg::TextArray(request_ids)}));
  std::vector<IssueResult> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) out.push_back(pg::IssueResultFromRow(r, i));
  return out;
}

absl::StatusOr<std::vector<UserCouponRow>> PgGatewayStore::ListUserCoupons(
    const std::string& user_id, int64_t after_user_coupon_id, int limit) {
  ASSIGN_OR_RETURN(
      pg::Result r,
      pool_->Read(absl::Now() + timeout_,
                 "SELECT user_coupon_id, coupon_id, user_id, request_id, "
                 "(extract(epoch from issued_at) * 1000000)::bigint "
                 "FROM user_coupons WHERE user_id = $1 AND user_coupon_id > $2 "
                 "ORDER BY user_coupon_id LIMIT $3",
                 {user_id, absl::StrCat(after_user_coupon_id),
                  absl::StrCat(limit)}));
  std::vector<UserCouponRow> out;
  for (int i = 0; i < r.rows(); ++i) {
    UserCouponRow row;
    row.user_coupon_id = r.GetInt64(i, 0);
    row.coupon_id = r.GetInt64(i, 1);
    row.user_id = std::string(r.Get(i, 2));
    row.request_id = std::string(r.Get(i, 3));
    row.issued_at = r.GetInt64(i, 4);
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace coupon::gateway
