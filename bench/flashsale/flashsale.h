#pragma once

// One flash-sale run against a live service: create the coupons, open a
// result stream per coupon, fire IssueCoupon calls, wait for every ACCEPTED
// request's result, then check the invariants against PostgreSQL.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/flashsale/procstat.h"
#include "bench/flashsale/report.h"

namespace coupon::bench {

struct FlashSaleConfig {
  std::string target = "127.0.0.1:50051";
  std::string pg_dsn = "postgresql://coupon:coupon@127.0.0.1:5432/coupon";
  int64_t coupons = 1;
  int64_t stock = 10000;  // per coupon
  int64_t users = 100000;
  int64_t requests = 200000;
  int64_t repeat = 2;  // times each user asks, each with a new request id
  // The gateway's issuer, for the invariants: "kafka" or "redis".
  std::string issuer = "kafka";
  int64_t concurrency = 512;
  double rate = 0;  // requests/s; 0 = closed loop at `concurrency`
  absl::Duration deadline = absl::Seconds(5);
  // After the last answer: how long to wait for every ACCEPTED result on the
  // coupon streams, and how long without any new result before giving up
  // early; what is still missing then is fetched by request id ("late").
  absl::Duration watch_timeout = absl::Seconds(120);
  absl::Duration watch_idle_timeout = absl::Seconds(15);
  uint64_t seed = 1;  // the order in which users ask
  bool progress = true;
  std::vector<NamedPid> pids;  // processes whose CPU is accounted

  absl::Status Validate() const;
};

// Blocks until the run is over. An error means the run could not be carried
// out (service or database unreachable); broken invariants are in
// report.verification.
absl::StatusOr<RunReport> RunFlashSale(const FlashSaleConfig& config);

}  // namespace coupon::bench
