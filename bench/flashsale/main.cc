// flashsale: a flash-sale load generator for CouponService. Creates coupons,
// fires IssueCoupon calls from many users at once, collects every result and
// checks the invariants in PostgreSQL. Every flag can also be set by the
// environment variable of its name in upper case. See bench/README.md.

#include <iostream>

#include "absl/flags/flag.h"
#include "bench/flashsale/flashsale.h"
#include "common/flags_env.h"
#include "glog/logging.h"

namespace {
const coupon::bench::FlashSaleConfig kDefaults;
}

ABSL_FLAG(std::string, target, kDefaults.target, "CouponService address.");
ABSL_FLAG(std::string, pg_dsn, kDefaults.pg_dsn,
          "PostgreSQL the invariants are checked in.");
ABSL_FLAG(int64_t, coupons, kDefaults.coupons, "Coupons on sale at once.");
ABSL_FLAG(int64_t, stock, kDefaults.stock, "Copies of each coupon.");
ABSL_FLAG(int64_t, users, kDefaults.users,
          "Users at most; user u asks for coupon u % coupons.");
ABSL_FLAG(int64_t, requests, kDefaults.requests, "IssueCoupon calls in all.");
ABSL_FLAG(int64_t, repeat, kDefaults.repeat,
          "Calls per user, each with a new request id: min(users, "
          "requests/repeat) users take part.");
ABSL_FLAG(std::string, issuer, kDefaults.issuer,
          "The gateway's issuer (kafka or redis), for the invariants; the same "
          "ISSUER variable scripts/services reads.");
ABSL_FLAG(int64_t, concurrency, kDefaults.concurrency,
          "Closed loop: calls kept in flight.");
ABSL_FLAG(double, rate, kDefaults.rate,
          "Open loop: calls started per second, whatever the answers do; 0 "
          "means closed loop.");
ABSL_FLAG(absl::Duration, deadline, kDefaults.deadline, "Deadline of each call.");
ABSL_FLAG(absl::Duration, watch_timeout, kDefaults.watch_timeout,
          "After the last answer, how long to wait for the results of every "
          "ACCEPTED request before fetching the missing ones by request id.");
ABSL_FLAG(absl::Duration, watch_idle_timeout, kDefaults.watch_idle_timeout,
          "Stop waiting earlier when no result arrived for this long.");
ABSL_FLAG(uint64_t, seed, kDefaults.seed, "Seed of the order users ask in.");
ABSL_FLAG(bool, progress, kDefaults.progress,
          "Print a progress line to stderr every second.");
ABSL_FLAG(std::string, pids, "",
          "CPU accounting: name=pid,name=pid (a process and its children).");
ABSL_FLAG(std::string, pid_files, "",
          "CPU accounting: name=path,... of files holding a pid.");
ABSL_FLAG(std::string, json_out, "", "Also write the report as JSON here.");

int main(int argc, char** argv) {
  coupon::ParseFlagsWithEnv(
      argc, argv,
      "flash-sale load generator and invariant check for "
      "CouponService. Every flag can also be set by the environment "
      "variable of its name in upper case.");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  coupon::bench::FlashSaleConfig config;
  config.target = absl::GetFlag(FLAGS_target);
  config.pg_dsn = absl::GetFlag(FLAGS_pg_dsn);
  config.coupons = absl::GetFlag(FLAGS_coupons);
  config.stock = absl::GetFlag(FLAGS_stock);
  config.users = absl::GetFlag(FLAGS_users);
  config.requests = absl::GetFlag(FLAGS_requests);
  config.repeat = absl::GetFlag(FLAGS_repeat);
  config.issuer = absl::GetFlag(FLAGS_issuer);
  if (config.issuer != "kafka" && config.issuer != "redis") {
    std::cerr << "--issuer: must be kafka or redis, got \"" << config.issuer << "\"\n";
    return 2;
  }
  config.concurrency = absl::GetFlag(FLAGS_concurrency);
  config.rate = absl::GetFlag(FLAGS_rate);
  config.deadline = absl::GetFlag(FLAGS_deadline);
  config.watch_timeout = absl::GetFlag(FLAGS_watch_timeout);
  config.watch_idle_timeout = absl::GetFlag(FLAGS_watch_idle_timeout);
  config.seed = absl::GetFlag(FLAGS_seed);
  config.progress = absl::GetFlag(FLAGS_progress);
  auto pids = coupon::bench::ParsePidList(absl::GetFlag(FLAGS_pids),
                                          absl::GetFlag(FLAGS_pid_files));
  if (!pids.ok()) {
    std::cerr << pids.status().message() << "\n";
    return 2;
  }
  config.pids = *pids;
  if (absl::Status s = config.Validate(); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 2;
  }

  absl::StatusOr<coupon::bench::RunReport> report =
      coupon::bench::RunFlashSale(config);
  if (!report.ok()) {
    std::cerr << "flashsale: the run failed: " << report.status() << "\n";
    return 3;
  }
  coupon::bench::PrintReport(*report, std::cout);
  std::cout.flush();
  if (const std::string path = absl::GetFlag(FLAGS_json_out); !path.empty()) {
    if (absl::Status s = coupon::bench::WriteJson(*report, path); !s.ok()) {
      std::cerr << "--json_out: " << s.message() << "\n";
      return 3;
    }
  }
  if (!report->verification.ok()) {
    std::cerr << "\n*** flashsale: INVARIANTS VIOLATED ***\n";
    for (const std::string& line : report->verification.violations) {
      std::cerr << "*** " << line << "\n";
    }
    return 1;
  }
  return 0;
}
