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

// Counts per time step of the measured phase, for the plots.
struct TimelineStep {
  double t = 0;           // seconds since the measured phase began
  int64_t answered = 0;   // calls answered in this step
  int64_t accepted = 0;   // calls answered ACCEPTED in this step
  int64_t results = 0;    // results arriving in this step
  int64_t issued_total = 0;  // ISSUED results arrived so far
};

// (quantile, milliseconds) points of a latency distribution.
using LatencyCdf = std::vector<std::pair<double, double>>;

struct RunReport {
  std::string run_id;
  std::string target;
  std::string workload;
  std::string issuer;
  std::string mode;  // "closed loop, 512 in flight" or "open loop, 20000/s"
  int64_t coupons = 0;
  int64_t stock = 0;
  int64_t users = 0;  // distinct users that sent, presell included
  int64_t requests = 0;  // calls of the measured phase
  int64_t repeat = 0;
  int64_t resend = 0;
  int64_t presell = 0;  // calls of the sell-out phase, before measuring
  bool verified = true;  // false: a ceiling run, no invariants checked

  // The measured phase's calls.
  int64_t measured_answered = 0;
  int64_t measured_accepted = 0;  // calls answered ACCEPTED
  int64_t retries = 0;            // resends after UNAVAILABLE/DEADLINE

  Ledger::Counters counters;
  std::map<std::string, int64_t> final_at_gateway;  // by outcome
  std::map<std::string, int64_t> errors;            // by gRPC code
  std::map<std::string, int64_t> results;           // by outcome
  int64_t results_live = 0;
  int64_t results_late = 0;
  int64_t accepted_missing = 0;  // ACCEPTED, no result even after the fallback
  int64_t max_in_flight = 0;
  std::vector<std::string> watch_problems;

  // Decisions taken by the issuer (worker transactions' issue_results rows,
  // or Redis script runs) per second while it was deciding; source says how.
  int64_t decisions = 0;
  double decisions_seconds = 0;
  std::string decisions_source;

  std::vector<TimelineStep> timeline;
  double timeline_step_seconds = 0.1;
  LatencyCdf issue_cdf, e2e_cdf;

  // Redis issuer: last answer -> no outbox row of the run PENDING, i.e. until
  // PostgreSQL's stock agrees with the copies issued. < 0: not measured.
  double stock_sync_seconds = -1;
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
// One Markdown table of the headline figures.
absl::Status WriteMarkdown(const RunReport& report, const std::string& path);
// <prefix>.timeline.tsv and <prefix>.latency.tsv, for gnuplot.
absl::Status WritePlotData(const RunReport& report, const std::string& prefix);

}  // namespace coupon::bench
