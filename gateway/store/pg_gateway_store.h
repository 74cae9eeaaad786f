#pragma once

#include "absl/time/time.h"
#include "common/pg/pg.h"
#include "gateway/store/gateway_store.h"

namespace coupon::gateway {

/// GatewayStore on a PostgreSQL pool. Thread-safe; each call leases one
/// pooled connection for the length of the call. Does not own the pool.
class PgGatewayStore final : public GatewayStore {
 public:
  PgGatewayStore(pg::Pool* pool, absl::Duration timeout)
      : pool_(pool), timeout_(timeout) {}

  absl::StatusOr<CouponInfo> CreateCoupon(const NewCoupon& coupon) override;
  absl::StatusOr<CouponInfo> GetCoupon(int64_t coupon_id) override;
  absl::StatusOr<std::vector<IssueResult>> FindResults(
      const std::vector<std::string>& request_ids) override;
  absl::StatusOr<std::vector<UserCouponRow>> ListUserCoupons(
      const std::string& user_id, int64_t after_user_coupon_id,
      int limit) override;

 private:
  pg::Pool* pool_;
  absl::Duration timeout_;
};

}  // namespace coupon::gateway
