#pragma once

// The run's report: built once after the run, printed for people (stdout)
// and written as JSON for tools (--json_out).

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/flashsale/load.h"
#include "bench/flashsale/stats.h"
#include "bench/flashsale/verify.h"

namespace coupon::bench {

struct CpuUsage {
  std::string name;
  int pid = 0;          // 0 for the machine-wide line
  double seconds = -1;  // < 0 when unknown; `error` says why
  std::string error;
};

struct RunReport {
  std::string run_id;
  std::string target;
  std::string mode;  // "closed loop, 512 in flight" or "open loop, 20000/s"
  int64_t coupons = 0;
  int64_t stock = 0;
  int64_t users = 0;  // distinct users that sent
  int64_t requests = 0;
  int64_t repeat = 0;

  Ledger::Counters counters;
  std::map<std::string, int64_t> final_at_gateway;  // by outcome
  std::map<std::string, int64_t> errors;            // by gRPC code
  std::map<std::string, int64_t> results;           // by outcome
  int64_t results_live = 0;
  int64_t results_late = 0;
  int64_t accepted_missing = 0;  // ACCEPTED, no result even after the fallback
  int64_t max_in_flight = 0;
  std::vector<std::string> watch_problems;

  double send_seconds = 0;  // first send -> last answer
  double first_send_to_last_result_seconds = 0;
  LatencySummary issue_latency;  // send -> answer, OK calls
  LatencySummary e2e_latency;    // send -> result on a coupon stream, ACCEPTED

  double cpu_window_seconds = 0;
  std::vector<CpuUsage> cpu;  // processes, the client, the machine

  Verification verification;
};

void PrintReport(const RunReport& report, std::ostream& out);
absl::Status WriteJson(const RunReport& report, const std::string& path);

}  // namespace coupon::bench
