#pragma once

// The issuer-worker's metrics (docs/operations.md, "Metrics").

#include "common/metrics/metrics.h"

namespace coupon::worker {

/// The worker's metrics, in the process's registry.
struct WorkerMetrics {
  metrics::Histogram& batch_events;
  metrics::Histogram& transaction_seconds;
  metrics::Histogram& batch_seconds;
  metrics::CounterFamily& decisions;
  metrics::Counter& republished;
  metrics::Counter& reused;
  metrics::Counter& dead_letters;
  metrics::Counter& retries;
  metrics::Gauge& assigned;
  metrics::GaugeFamily& lag;

  // The process's: metrics::Instance<WorkerMetrics>().
  explicit WorkerMetrics(metrics::Registry& r);
};

}  // namespace coupon::worker
