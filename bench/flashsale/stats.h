#pragma once

// Latency summaries: nearest-rank percentiles over samples in microseconds.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace coupon::bench {

struct LatencySummary {
  size_t count = 0;
  int64_t p50_us = 0;
  int64_t p95_us = 0;
  int64_t p99_us = 0;
  int64_t p999_us = 0;
  int64_t max_us = 0;
  double mean_us = 0;
};

// The smallest sample with at least `q` of the samples at or below it.
// `sorted` must be sorted ascending and non-empty.
inline int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

inline LatencySummary Summarize(std::vector<int64_t> micros) {
  LatencySummary s;
  s.count = micros.size();
  if (micros.empty()) return s;
  std::sort(micros.begin(), micros.end());
  s.p50_us = Percentile(micros, 0.50);
  s.p95_us = Percentile(micros, 0.95);
  s.p99_us = Percentile(micros, 0.99);
  s.p999_us = Percentile(micros, 0.999);
  s.max_us = micros.back();
  double sum = 0;
  for (int64_t v : micros) sum += static_cast<double>(v);
  s.mean_us = sum / static_cast<double>(micros.size());
  return s;
}

}  // namespace coupon::bench
