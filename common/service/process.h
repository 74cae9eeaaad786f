#pragma once

// What every binary of ours does first, before its threads start.

namespace coupon::service {

// Logs to stderr through glog, named `argv0`, and turns off abseil's mutex
// deadlock detection. Debian builds abseil without NDEBUG, so the detection
// is on by default: every absl::Mutex lock, gRPC's own included, then
// updates a process-wide lock graph behind one global lock. In a sold-out
// storm that was about 9% of the gateway's CPU (perf: GraphCycles and
// absl::Mutex). The detection is a debugging aid; the tests' sanitizer
// builds keep their own checks.
void InitProcess(const char* argv0);

}  // namespace coupon::service
