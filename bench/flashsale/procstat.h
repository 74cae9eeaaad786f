#pragma once

// CPU accounting from /proc, for "CPU seconds per 1000 requests".

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace coupon::bench {

struct NamedPid {
  std::string name;
  int pid = 0;
};

// "gateway=123,worker=456" and "gateway=.local/run/gateway.pid,..." (files
// holding a pid), in that order. INVALID_ARGUMENT for a malformed entry,
// NOT_FOUND for an unreadable pid file.
absl::StatusOr<std::vector<NamedPid>> ParsePidList(absl::string_view pids,
                                                   absl::string_view pid_files);

// User + system CPU seconds used so far by `pid` and its descendants: all
// threads, plus the children they reaped (PostgreSQL's backends are children
// of the postmaster). NOT_FOUND when the process is gone.
absl::StatusOr<double> ProcessTreeCpuSeconds(int pid);

// Busy CPU seconds of the whole machine since boot (all CPUs, /proc/stat).
absl::StatusOr<double> MachineBusyCpuSeconds();

}  // namespace coupon::bench
