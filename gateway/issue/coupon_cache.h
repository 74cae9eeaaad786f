#pragma once

// Coupon metadata for IssueCoupon's checks without a database round trip per
// request. A coupon's name, quantity and window never change after creation,
// so a found coupon is kept (up to max_entries); an unknown id is remembered
// for a short time only, since it may be created any moment.

#include <functional>
#include <memory>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/domain/domain.h"

namespace coupon::gateway {

/// Thread-safe. Concurrent misses for one id share a single lookup, so the
/// first second of a flash sale costs one query per gateway, not thousands.
class CouponCache {
 public:
  using Loader = std::function<absl::StatusOr<CouponInfo>(int64_t coupon_id)>;
  using Clock = std::function<absl::Time()>;

  CouponCache(Loader loader, absl::Duration not_found_ttl, size_t max_entries,
              Clock clock = absl::Now);

  // NOT_FOUND for an unknown coupon; the loader's error (UNAVAILABLE, ...)
  // when it fails, which is not cached.
  absl::StatusOr<CouponInfo> Find(int64_t coupon_id);

 private:
  struct Entry {
    absl::Notification loaded;
    absl::StatusOr<CouponInfo> value;  // set before `loaded` is notified
    absl::Time expires = absl::InfiniteFuture();
  };

  const Loader loader_;
  const absl::Duration not_found_ttl_;
  const size_t max_entries_;
  const Clock clock_;
  std::mutex mu_;
  absl::flat_hash_map<int64_t, std::shared_ptr<Entry>> entries_;
};

}  // namespace coupon::gateway
