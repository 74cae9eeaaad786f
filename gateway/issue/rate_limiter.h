#pragma once

// A token bucket per user id for IssueCoupon: bots hammering a flash sale
// get RESOURCE_EXHAUSTED instead of a place in the queue. Each gateway keeps
// its own buckets, so behind N gateways a user gets up to N times the limit.
// The user id is what the caller claims; callers inventing new ids are not
// stopped here (that is the job of whatever authenticates users upstream).
//
// Memory is bounded: a bucket that has refilled is the same as no bucket and
// is dropped by a periodic sweep, and at most `max_users` are tracked. Past
// that, new users are let through untracked (a limiter that fails closed
// would turn a flood of new ids into an outage for everyone).

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace coupon::gateway {

struct UserRateLimit {
  double per_second = 0;  // sustained calls per second per user; 0 = off
  int burst = 0;          // calls a user may make at once
  size_t max_users = 1'000'000;

  bool enabled() const { return per_second > 0; }
  // INVALID_ARGUMENT naming the flag.
  absl::Status Validate() const;
};

/// Thread-safe: gRPC threads call Admit concurrently. The buckets are split
/// over shards, each under its own mutex, so calls for different users
/// rarely wait for each other. Owned by the gateway; outlives IssueService.
class UserRateLimiter {
 public:
  // Monotonic nanoseconds; injected by tests.
  using Clock = std::function<int64_t()>;
  static int64_t SteadyNanos();

  explicit UserRateLimiter(UserRateLimit limit, Clock clock = SteadyNanos);

  // OK and one token taken, or RESOURCE_EXHAUSTED naming the limit and how
  // long to wait. Always OK when the limit is off.
  absl::Status Admit(absl::string_view user_id);

  // Users with a bucket now (for tests and memory checks).
  size_t tracked_users() const;

  static constexpr int kShards = 64;

 private:
  struct Bucket {
    double tokens;
    int64_t last_ns;
  };
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, Bucket> buckets;
    int64_t next_sweep_ns = 0;
  };

  double Refilled(const Bucket& b, int64_t now_ns) const;
  // Drops the buckets that are full again; the shard's lock is held.
  void Sweep(Shard& shard, int64_t now_ns);
  absl::Status Refuse(absl::string_view user_id, double tokens) const;

  const UserRateLimit limit_;
  const Clock clock_;
  const size_t max_per_shard_;
  // How long an empty bucket takes to fill, at least 1 s: the sweep period.
  const int64_t sweep_every_ns_;
  std::array<Shard, kShards> shards_;
};

}  // namespace coupon::gateway
