#pragma once

#include <atomic>
#include <memory>

#include "absl/status/statusor.h"
#include "issuer-worker/config.h"
#include "issuer-worker/consume_loop.h"

namespace coupon::worker {

/// The issuer-worker: a member of consumer group `group_id` that decides the
/// events of the partitions it owns, in order, one transaction per poll's
/// batch (ConsumeLoop). Run() blocks on the calling thread until `stop` is
/// set; then it finishes the batch in hand, commits, and leaves the group so
/// its partitions move at once. Create and Run from one thread. With
/// config.metrics_port set, a thread of its own serves /metrics, /healthz and
/// /readyz (ready()) from Create until the destructor.
class IssuerWorker {
 public:
  static absl::StatusOr<std::unique_ptr<IssuerWorker>> Create(
      const WorkerConfig& config);
  ~IssuerWorker();

  absl::Status Run(const std::atomic<bool>& stop);

  // Totals since start, readable from any thread.
  const LoopCounters& counters() const;
  // Partitions this member owns now; any thread.
  int owned_partitions() const;
  // True from the first assignment the group gave this member (possibly of
  // no partitions: it is a member) until Run starts to stop; what /readyz
  // answers. Any thread.
  bool ready() const;

 private:
  struct Parts;
  explicit IssuerWorker(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace coupon::worker
