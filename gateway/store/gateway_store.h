#pragma once

// What the gateway reads from and writes to the database. None of it is on
// the IssueCoupon hot path except the first lookup of a coupon (then cached).

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/domain/domain.h"

namespace coupon::gateway {

struct NewCoupon {
  std::string name;
  int64_t total_quantity = 0;
  std::optional<UnixMicros> starts_at;
  std::optional<UnixMicros> ends_at;
};

class GatewayStore {
 public:
  virtual ~GatewayStore() = default;
  virtual absl::StatusOr<CouponInfo> CreateCoupon(const NewCoupon& coupon) = 0;
  // NOT_FOUND when there is no such coupon.
  virtual absl::StatusOr<CouponInfo> GetCoupon(int64_t coupon_id) = 0;
  // The stored results of those of `request_ids` that are decided.
  virtual absl::StatusOr<std::vector<IssueResult>> FindResults(
      const std::vector<std::string>& request_ids) = 0;
  virtual absl::StatusOr<std::vector<UserCouponRow>> ListUserCoupons(
      const std::string& user_id, int64_t after_user_coupon_id, int limit) = 0;
};

}  // namespace coupon::gateway
