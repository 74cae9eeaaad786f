#include "gateway/issue/rate_limiter.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace coupon::gateway {

absl::Status UserRateLimit::Validate() const {
  if (!std::isfinite(per_second) || per_second < 0 || per_second > 1e6) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--user_rate_limit: must be 0 (off) to 1000000 calls per second, got ",
        per_second));
  }
  if (enabled() && (burst < 1 || burst > 1'000'000)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--user_burst: must be 1 to 1000000 when --user_rate_limit is on, got ",
        burst));
  }
  if (enabled() && max_users < 1) {
    return absl::InvalidArgumentError("rate limit max_users: must be positive");
  }
  return absl::OkStatus();
}

int64_t UserRateLimiter::SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

UserRateLimiter::UserRateLimiter(UserRateLimit limit, Clock clock)
    : limit_(limit),
      clock_(std::move(clock)),
      max_per_shard_(std::max<size_t>(1, limit.max_users / kShards)),
      sweep_every_ns_(limit.enabled()
                          ? std::max<int64_t>(
                                1'000'000'000,
                                static_cast<int64_t>(std::ceil(
                                    limit.burst / limit.per_second * 1e9)))
                          : 0) {}

double UserRateLimiter::Refilled(const Bucket& b, int64_t now_ns) const {
  // A clock that went back (only an injected one can) refills nothing.
  const int64_t elapsed = std::max<int64_t>(0, now_ns - b.last_ns);
  return std::min<double>(
      limit_.burst,
      b.tokens + static_cast<double>(elapsed) * limit_.per_second / 1e9);
}

void UserRateLimiter::Sweep(Shard& shard, int64_t now_ns) {
  shard.next_sweep_ns = now_ns + sweep_every_ns_;
  // A full bucket behaves exactly like a missing one, so dropping it changes
  // no answer.
  absl::erase_if(shard.buckets, [&](const auto& entry) {
    return Refilled(entry.second, now_ns) >= limit_.burst;
  });
}

absl::Status UserRateLimiter::Refuse(absl::string_view user_id,
                                     double tokens) const {
  const absl::Duration wait = absl::Ceil(
      absl::Seconds((1.0 - tokens) / limit_.per_second), absl::Milliseconds(1));
  return absl::ResourceExhaustedError(absl::StrFormat(
      "user_id: \"%s\" is over the limit of %d IssueCoupon calls at once, "
      "then %g per second; retry in %s",
      user_id, limit_.burst, limit_.per_second, absl::FormatDuration(wait)));
}

absl::Status UserRateLimiter::Admit(absl::string_view user_id) {
  if (!limit_.enabled()) return absl::OkStatus();
  const int64_t now = clock_();
  // The map hashes the same key: take the shard from other bits than the
  // low ones it uses for its control bytes.
  const size_t hash = absl::Hash<absl::string_view>{}(user_id);
  Shard& shard = shards_[(hash >> 40) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.buckets.find(user_id);
  if (it == shard.buckets.end()) {
    if (now >= shard.next_sweep_ns) Sweep(shard, now);
    // Full even after the sweep: let the user through untracked.
    if (shard.buckets.size() >= max_per_shard_) return absl::OkStatus();
    shard.buckets.emplace(std::string(user_id),
                          Bucket{static_cast<double>(limit_.burst) - 1, now});
    return absl::OkStatus();
  }
  Bucket& b = it->second;
  b.tokens = Refilled(b, now);
  b.last_ns = std::max(b.last_ns, now);
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return absl::OkStatus();
  }
  return Refuse(user_id, b.tokens);
}

size_t UserRateLimiter::tracked_users() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    n += shard.buckets.size();
  }
  return n;
}

}  // namespace coupon::gateway
