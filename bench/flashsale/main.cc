// flashsale: a flash-sale load generator for CouponService. Creates coupons,
// fires IssueCoupon calls from many users at once, collects every result and
// checks the invariants in PostgreSQL. Every flag can also be set by the
// environment variable of its name in upper case. See bench/README.md.

#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/strip.h"
#include "bench/flashsale/flashsale.h"
#include "common/service/flags_env.h"
#include "common/service/process.h"
#include "glog/logging.h"

namespace {
const coupon::bench::FlashSaleConfig kDefaults;
}

ABSL_FLAG(std::string, target, kDefaults.target,
          "CouponService address, or several comma-separated: calls go round "
          "robin, a retry to the next one.");
ABSL_FLAG(std::string, pg_dsn, kDefaults.pg_dsn,
          "PostgreSQL the invariants are checked in.");
ABSL_FLAG(std::string, workload, kDefaults.workload,
          "hot (1 coupon of 10000, 100000 users x 2 calls), spread (100 "
          "coupons of 1000), retry (40000 users x 5 calls: one request id 3 "
          "times, 2 new ones), soldout (10000 buyers first, then 100000 calls "
          "measured). The size flags below override it; -1 keeps its value.");
ABSL_FLAG(int64_t, coupons, -1, "Coupons on sale at once.");
ABSL_FLAG(int64_t, stock, -1, "Copies of each coupon.");
ABSL_FLAG(int64_t, users, -1,
          "Users of the measured phase at most; user u asks for coupon u % "
          "coupons.");
ABSL_FLAG(int64_t, requests, -1, "IssueCoupon calls of the measured phase.");
ABSL_FLAG(int64_t, repeat, -1, "Request ids per user, each new.");
ABSL_FLAG(int64_t, resend, -1,
          "Extra calls re-sending each user's first request id (a client "
          "retrying with its idempotency key).");
ABSL_FLAG(int64_t, presell, -1,
          "Users who each call once and get their results before the "
          "measured phase (a sold-out storm: set it to the stock).");
ABSL_FLAG(std::string, issuer, kDefaults.issuer,
          "The gateway's issuer (kafka or redis), for the invariants; the same "
          "ISSUER variable scripts/services reads.");
ABSL_FLAG(int64_t, concurrency, kDefaults.concurrency,
          "Closed loop: calls kept in flight.");
ABSL_FLAG(double, rate, kDefaults.rate,
          "Open loop: calls started per second, whatever the answers do; 0 "
          "means closed loop.");
ABSL_FLAG(absl::Duration, deadline, kDefaults.deadline, "Deadline of each call.");
ABSL_FLAG(int64_t, retries, kDefaults.retries,
          "Resend a call failing UNAVAILABLE or DEADLINE_EXCEEDED with the same "
          "request id, on the next target, this many times at most.");
ABSL_FLAG(absl::Duration, retry_backoff, kDefaults.retry_backoff,
          "Wait before each resend.");
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
ABSL_FLAG(bool, verify, kDefaults.verify,
          "Watch results and check the invariants; false for a ceiling run "
          "against bench/bare-grpc-server.");
ABSL_FLAG(std::string, admin_token, "",
          "Admin bearer token for CreateCoupon; prefer the ADMIN_TOKEN "
          "environment variable or --admin_token_file. Never printed.");
ABSL_FLAG(std::string, admin_token_file, "",
          "File whose first line is the admin bearer token (scripts/lib.sh "
          "exports ADMIN_TOKEN_FILE=.local/admin-token); used when "
          "--admin_token is empty. A missing file only warns.");
ABSL_FLAG(std::string, redis_addr, "",
          "With --issuer=redis: read Redis' EVALSHA count for decisions/s, "
          "and before the checks wait until Redis lists none of the run's "
          "copies as reserved (the outbox scheduler writes those of callers "
          "who gave up after its --reconcile_after).");
ABSL_FLAG(std::string, json_out, "", "Also write the report as JSON here.");
ABSL_FLAG(std::string, markdown_out, "",
          "Also write the headline figures as a Markdown table here.");
ABSL_FLAG(std::string, plot_data, "",
          "Also write <prefix>.timeline.tsv and <prefix>.latency.tsv for "
          "gnuplot.");

int main(int argc, char** argv) {
  coupon::ParseFlagsWithEnv(
      argc, argv,
      "flash-sale load generator and invariant check for "
      "CouponService. Every flag can also be set by the environment "
      "variable of its name in upper case.");
  coupon::service::InitProcess(argv[0]);

  coupon::bench::FlashSaleConfig config;
  config.target = absl::GetFlag(FLAGS_target);
  config.pg_dsn = absl::GetFlag(FLAGS_pg_dsn);
  config.workload = absl::GetFlag(FLAGS_workload);
  config.coupons = absl::GetFlag(FLAGS_coupons);
  config.stock = absl::GetFlag(FLAGS_stock);
  config.users = absl::GetFlag(FLAGS_users);
  config.requests = absl::GetFlag(FLAGS_requests);
  config.repeat = absl::GetFlag(FLAGS_repeat);
  config.resend = absl::GetFlag(FLAGS_resend);
  config.presell = absl::GetFlag(FLAGS_presell);
  config.issuer = absl::GetFlag(FLAGS_issuer);
  config.concurrency = absl::GetFlag(FLAGS_concurrency);
  config.rate = absl::GetFlag(FLAGS_rate);
  config.deadline = absl::GetFlag(FLAGS_deadline);
  config.retries = absl::GetFlag(FLAGS_retries);
  config.retry_backoff = absl::GetFlag(FLAGS_retry_backoff);
  config.watch_timeout = absl::GetFlag(FLAGS_watch_timeout);
  config.watch_idle_timeout = absl::GetFlag(FLAGS_watch_idle_timeout);
  config.seed = absl::GetFlag(FLAGS_seed);
  config.progress = absl::GetFlag(FLAGS_progress);
  config.verify = absl::GetFlag(FLAGS_verify);
  config.redis_addr = absl::GetFlag(FLAGS_redis_addr);
  config.admin_token = absl::GetFlag(FLAGS_admin_token);
  if (const std::string path = absl::GetFlag(FLAGS_admin_token_file);
      config.admin_token.empty() && !path.empty()) {
    std::ifstream in(path);
    std::getline(in, config.admin_token);
    config.admin_token = std::string(absl::StripAsciiWhitespace(config.admin_token));
    // Not fatal: lib.sh names the file whether or not it exists yet, and a
    // gateway with --admin_auth=none needs no token. Otherwise CreateCoupon
    // fails UNAUTHENTICATED, which says what is missing.
    if (config.admin_token.empty()) {
      LOG(WARNING) << "--admin_token_file: no token in \"" << path
                   << "\" (scripts/services start makes .local/admin-token); "
                      "CreateCoupon goes without one";
    }
  }
  auto pids = coupon::bench::ParsePidList(absl::GetFlag(FLAGS_pids),
                                          absl::GetFlag(FLAGS_pid_files));
  if (!pids.ok()) {
    std::cerr << pids.status().message() << "\n";
    return 2;
  }
  config.pids = *pids;
  if (absl::Status s = config.Resolve(); !s.ok()) {
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
  if (const std::string path = absl::GetFlag(FLAGS_markdown_out); !path.empty()) {
    if (absl::Status s = coupon::bench::WriteMarkdown(*report, path); !s.ok()) {
      std::cerr << "--markdown_out: " << s.message() << "\n";
      return 3;
    }
  }
  if (const std::string prefix = absl::GetFlag(FLAGS_plot_data); !prefix.empty()) {
    if (absl::Status s = coupon::bench::WritePlotData(*report, prefix); !s.ok()) {
      std::cerr << "--plot_data: " << s.message() << "\n";
      return 3;
    }
  }
  if (report->verified && !report->verification.ok()) {
    std::cerr << "\n*** flashsale: INVARIANTS VIOLATED ***\n";
    for (const std::string& line : report->verification.violations) {
      std::cerr << "*** " << line << "\n";
    }
    return 1;
  }
  return 0;
}
