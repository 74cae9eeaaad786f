#pragma once

// One flash-sale run against a live service: create the coupons, open a
// result stream per coupon, fire IssueCoupon calls, wait for every ACCEPTED
// request's result, then check the invariants against PostgreSQL.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bench/flashsale/procstat.h"
#include "bench/flashsale/report.h"

namespace coupon::bench {

// A named workload's sizes; FlashSaleConfig fields left at -1 take them.
struct Workload {
  std::string name;
  int64_t coupons, stock, users, requests, repeat, resend, presell;
};
// hot, spread, retry, soldout (see bench/README.md); nullptr if unknown.
const Workload* FindWorkload(absl::string_view name);
std::string WorkloadNames();

struct FlashSaleConfig {
  // One or more CouponService addresses, comma-separated: call c goes to
  // target c % targets, a retry to the next one.
  std::string target = "127.0.0.1:50051";
  std::string pg_dsn = "postgresql://coupon:coupon@127.0.0.1:5432/coupon";
  std::string workload = "hot";
  // -1: the workload's value.
  int64_t coupons = -1;
  int64_t stock = -1;     // per coupon
  int64_t users = -1;     // measured-phase users at most
  int64_t requests = -1;  // measured-phase calls
  int64_t repeat = -1;    // request ids per user, each new
  int64_t resend = -1;    // extra calls re-sending each user's first id
  int64_t presell = -1;   // users who buy first, before the measured phase
  // The gateway's issuer, for the invariants: "kafka" or "redis".
  std::string issuer = "kafka";
  int64_t concurrency = 512;
  double rate = 0;  // requests/s; 0 = closed loop at `concurrency`
  absl::Duration deadline = absl::Seconds(5);
  int64_t retries = 0;  // resends of a call failing UNAVAILABLE/DEADLINE
  absl::Duration retry_backoff = absl::Milliseconds(200);
  // After the last answer: how long to wait for every ACCEPTED result on the
  // coupon streams, and how long without any new result before giving up
  // early; what is still missing then is fetched by request id ("late").
  absl::Duration watch_timeout = absl::Seconds(120);
  absl::Duration watch_idle_timeout = absl::Seconds(15);
  uint64_t seed = 1;  // the order in which users ask
  bool progress = true;
  // false: a ceiling run against a server that is no coupon service (the
  // bare gRPC server): no result streams, no invariants, no database.
  bool verify = true;
  // For decisions/s of the Redis issuer (INFO commandstats); "" skips it.
  std::string redis_addr;
  // Sent as `authorization: Bearer <token>` with CreateCoupon, which the
  // gateway allows only to admins; empty sends none.
  std::string admin_token;
  std::vector<NamedPid> pids;  // processes whose CPU is accounted
  // Called once with the run's coupon ids, after they are created and
  // before the first IssueCoupon call: a test starts there what must touch
  // only this run's coupons (the Redis mode's outbox scheduler). Empty: none.
  std::function<void(const std::vector<int64_t>& coupon_ids)> on_coupons;

  // Fills the -1 sizes from the workload, then checks every field.
  absl::Status Resolve();
  std::vector<std::string> Targets() const;
};

// Blocks until the run is over. An error means the run could not be carried
// out (service or database unreachable); broken invariants are in
// report.verification.
absl::StatusOr<RunReport> RunFlashSale(const FlashSaleConfig& config);

}  // namespace coupon::bench
