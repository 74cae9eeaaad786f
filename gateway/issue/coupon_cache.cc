#include "gateway/issue/coupon_cache.h"

namespace coupon::gateway {

CouponCache::CouponCache(Loader loader, absl::Duration not_found_ttl,
                         size_t max_entries, Clock clock)
    : loader_(std::move(loader)),
      not_found_ttl_(not_found_ttl),
      max_entries_(max_entries),
      clock_(std::move(clock)) {}

absl::StatusOr<CouponInfo> CouponCache::Find(int64_t coupon_id) {
  std::shared_ptr<Entry> entry;
  bool load = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(coupon_id);
    if (it != entries_.end() && (!it->second->loaded.HasBeenNotified() ||
                                 clock_() < it->second->expires)) {
      entry = it->second;
    } else {
      if (entries_.size() >= max_entries_) entries_.clear();
      entry = std::make_shared<Entry>();
      entries_[coupon_id] = entry;
      load = true;
    }
  }
  if (load) {
    entry->value = loader_(coupon_id);
    if (absl::IsNotFound(entry->value.status())) {
      entry->expires = clock_() + not_found_ttl_;
    } else if (!entry->value.ok()) {
      entry->expires = absl::InfinitePast();  // retry on the next call
    }
    entry->loaded.Notify();
    return entry->value;
  }
  entry->loaded.WaitForNotification();
  return entry->value;
}

}  // namespace coupon::gateway
