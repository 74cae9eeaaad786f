#pragma once

// Prometheus metrics: a registry of counter, gauge and histogram families with
// labels, rendered in the text exposition format 0.0.4. Kept small because no
// Prometheus C++ client is packaged for Debian; see README.md for the rules.
//
// One-liner for a new metric anywhere in a binary (the family is created on
// first use, the same family is returned after that):
//
//   static metrics::Counter& limited =
//       metrics::Registry::Default()
//           .AddCounter("coupon_gateway_rate_limited_total",
//                       "IssueCoupon calls refused by the per-user limit.")
//           .WithLabelValues();
//   limited.Inc();

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace coupon::metrics {

/// A value that only goes up. Inc is one atomic compare-and-swap: call it from
/// any thread.
class Counter {
 public:
  void Inc(double by = 1);  // `by` < 0 is ignored: counters never go down
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// A value that goes up and down. Any thread.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Inc(double by = 1);
  void Dec(double by = 1) { Inc(-by); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// Counts observations into buckets by upper bound (inclusive), plus their
/// sum. Observe is a few relaxed atomic operations: any thread.
class Histogram {
 public:
  // `bounds`: finite upper bounds, strictly increasing; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double value);  // NaN is dropped
  void ObserveDuration(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }

  struct Snapshot {
    std::vector<double> bounds;       // without +Inf
    std::vector<uint64_t> cumulative; // bounds.size() + 1 entries, last: +Inf
    double sum = 0;
    uint64_t count() const { return cumulative.back(); }
  };
  // Buckets read one by one, each count exactly; _count is taken from the
  // buckets, so it always equals the +Inf bucket.
  Snapshot Take() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0};
};

// Bucket bounds for latencies in seconds: 0.5 ms .. 10 s.
std::vector<double> LatencyBuckets();
// `count` bounds from `start`, each `factor` times the one before.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

enum class Type { kCounter, kGauge, kHistogram };

/// One metric name with its label names, and one child per set of label
/// values. Children live as long as the family (Remove excepted), so callers
/// on hot paths look them up once and keep the reference.
template <typename Metric>
class Family {
 public:
  // `values` in the order of the family's label names (CHECKed). The child
  // is created at first use. Looking up takes a shared lock.
  Metric& WithLabelValues(const std::vector<std::string>& values = {});
  // Drops a child, e.g. a partition no longer owned. Only for children that
  // nobody keeps a reference to.
  void Remove(const std::vector<std::string>& values);
  // Label values of every child, in rendering order.
  std::vector<std::vector<std::string>> Children() const;

  const std::string& name() const { return name_; }

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::vector<double> buckets)
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        buckets_(std::move(buckets)) {}
  void Render(std::string* out) const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> labels_;
  const std::vector<double> buckets_;  // histograms only
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_
      ABSL_GUARDED_BY(mu_);
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

/// The metric families of a process. Thread-safe. Add* returns the existing
/// family when the name is registered already with the same type and labels,
/// and CHECK-fails when it is not (two meanings for one name is a bug).
/// Families are never removed: references stay valid for the registry's life.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The process's registry, served on /metrics by the binaries. Tests that
  // check exact values use a Registry of their own.
  static Registry& Default();

  // Names: [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total. Label names:
  // [a-zA-Z_][a-zA-Z0-9_]*, not starting with __, and not "le" for
  // histograms. CHECKed: they are constants in our code.
  CounterFamily& AddCounter(const std::string& name, const std::string& help,
                            const std::vector<std::string>& labels = {});
  GaugeFamily& AddGauge(const std::string& name, const std::string& help,
                        const std::vector<std::string>& labels = {});
  HistogramFamily& AddHistogram(const std::string& name, const std::string& help,
                                const std::vector<std::string>& labels,
                                std::vector<double> buckets);

  // The text exposition format 0.0.4, families in name order.
  std::string Render() const;

 private:
  struct Entry {
    Type type;
    std::vector<std::string> labels;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
  };
  Entry& Add(Type type, const std::string& name, const std::string& help,
             const std::vector<std::string>& labels, std::vector<double> buckets);

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> families_ ABSL_GUARDED_BY(mu_);
};

// Content-Type of Render()'s output.
inline constexpr char kExpositionContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

// Exposed for the tests and the renderer: a label value with \ " and newline
// escaped; a sample value (integers without exponent, +Inf, -Inf, NaN).
std::string EscapeLabelValue(const std::string& value);
std::string FormatValue(double value);

// A binary's set of metrics, made once over the process's registry: `T` is a
// struct of the children it needs, built by a constructor taking a Registry
// (resolving labels once, so the hot path costs an atomic add). Never
// destroyed: /metrics reads it until the process ends. Any thread.
template <typename T>
T& Instance() {
  static T* const instance = new T(Registry::Default());
  return *instance;
}

}  // namespace coupon::metrics
