#include "common/metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace coupon::metrics {
namespace {

void AtomicAdd(std::atomic<double>& target, double by) {
  double old = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(old, old + by, std::memory_order_relaxed)) {
  }
}

bool ValidName(const std::string& name, bool colons) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = absl::ascii_isalpha(c) || c == '_' || (colons && c == ':') ||
                    (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

// Backslash and newline escaped, and with `quote` the double quote too: HELP
// text escapes the first two, label values all three.
std::string Escape(const std::string& text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} with `extra` (already formatted, e.g. le="0.5") appended;
// nothing at all when there are no labels.
void AppendLabels(const std::vector<std::string>& names,
                  const std::vector<std::string>& values, const std::string& extra,
                  std::string* out) {
  if (names.empty() && extra.empty()) return;
  out->push_back('{');
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out->push_back(',');
    absl::StrAppend(out, names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra.empty()) {
    if (!names.empty()) out->push_back(',');
    out->append(extra);
  }
  out->push_back('}');
}

const char* TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

void Counter::Inc(double by) {
  if (!(by > 0)) return;
  AtomicAdd(value_, by);
}

void Gauge::Inc(double by) { AtomicAdd(value_, by); }

namespace {
void CheckBounds(const std::vector<double>& bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    CHECK(std::isfinite(bounds[i])) << "histogram bound " << bounds[i];
    CHECK(i == 0 || bounds[i - 1] < bounds[i]) << "histogram bounds must increase";
  }
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  CheckBounds(bounds_);
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  // The first bound >= value: buckets are "less than or equal".
  const size_t bucket =
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, value);
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,  0.5,    1,     2.5,  5,     10};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  CHECK(start > 0 && factor > 1 && count >= 1);
  std::vector<double> bounds;
  for (double b = start; static_cast<int>(bounds.size()) < count; b *= factor) {
    bounds.push_back(b);
  }
  return bounds;
}

std::string EscapeLabelValue(const std::string& value) {
  return Escape(value, /*quote=*/true);
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buf[32];
  // The shortest text that reads back as the same double, %g style (as Go's
  // client writes it: 0.0005, 1e-05), so bucket bounds look familiar.
  auto [end, ec] =
      std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::general);
  return std::string(buf, end);
}

template <typename Metric>
Metric& Family<Metric>::WithLabelValues(const std::vector<std::string>& values) {
  CHECK_EQ(values.size(), labels_.size()) << "label values for " << name_;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Metric>& child = children_[values];
  if (!child) {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      child = std::make_unique<Histogram>(buckets_);
    } else {
      child = std::make_unique<Metric>();
    }
  }
  return *child;
}

template <typename Metric>
void Family<Metric>::Remove(const std::vector<std::string>& values) {
  absl::MutexLock lock(&mu_);
  children_.erase(values);
}

template <typename Metric>
std::vector<std::vector<std::string>> Family<Metric>::Children() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::vector<std::string>> out;
  for (const auto& [values, child] : children_) out.push_back(values);
  return out;
}

template <typename Metric>
void Family<Metric>::Render(std::string* out) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [values, child] : children_) {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      const Histogram::Snapshot s = child->Take();
      for (size_t i = 0; i <= s.bounds.size(); ++i) {
        absl::StrAppend(out, name_, "_bucket");
        const std::string le =
            i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf";
        AppendLabels(labels_, values, absl::StrCat("le=\"", le, "\""), out);
        absl::StrAppend(out, " ", s.cumulative[i], "\n");
      }
      absl::StrAppend(out, name_, "_sum");
      AppendLabels(labels_, values, "", out);
      absl::StrAppend(out, " ", FormatValue(s.sum), "\n");
      absl::StrAppend(out, name_, "_count");
      AppendLabels(labels_, values, "", out);
      absl::StrAppend(out, " ", s.count(), "\n");
    } else {
      out->append(name_);
      AppendLabels(labels_, values, "", out);
      absl::StrAppend(out, " ", FormatValue(child->Value()), "\n");
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry& Registry::Default() {
  static Registry* registry = new Registry();  // never destroyed
  return *registry;
}

Registry::Entry& Registry::Add(Type type, const std::string& name,
                               const std::string& help,
                               const std::vector<std::string>& labels,
                               std::vector<double> buckets) {
  CHECK(ValidName(name, /*colons=*/true)) << "metric name \"" << name << "\"";
  CHECK(type != Type::kCounter || absl::EndsWith(name, "_total"))
      << "counter " << name << " must end in _total";
  for (const std::string& label : labels) {
    CHECK(ValidName(label, /*colons=*/false) && !absl::StartsWith(label, "__"))
        << "label name \"" << label << "\" of " << name;
    CHECK(type != Type::kHistogram || label != "le") << name << ": label le";
  }
  if (type == Type::kHistogram) CheckBounds(buckets);
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = families_.try_emplace(name);
  Entry& e = it->second;
  if (!inserted) {
    CHECK(e.type == type && e.labels == labels)
        << "metric " << name << " registered again with another type or labels";
    return e;
  }
  e.type = type;
  e.labels = labels;
  switch (type) {
    case Type::kCounter:
      e.counter.reset(new CounterFamily(name, help, labels, {}));
      break;
    case Type::kGauge:
      e.gauge.reset(new GaugeFamily(name, help, labels, {}));
      break;
    case Type::kHistogram:
      e.histogram.reset(
          new HistogramFamily(name, help, labels, std::move(buckets)));
      break;
  }
  return e;
}

CounterFamily& Registry::AddCounter(const std::string& name,
                                    const std::string& help,
                                    const std::vector<std::string>& labels) {
  CounterFamily& f = *Add(Type::kCounter, name, help, labels, {}).counter;
  // A family without labels has exactly one child: show it from the start.
  if (labels.empty()) f.WithLabelValues();
  return f;
}

GaugeFamily& Registry::AddGauge(const std::string& name, const std::string& help,
                                const std::vector<std::string>& labels) {
  GaugeFamily& f = *Add(Type::kGauge, name, help, labels, {}).gauge;
  if (labels.empty()) f.WithLabelValues();
  return f;
}

HistogramFamily& Registry::AddHistogram(const std::string& name,
                                        const std::string& help,
                                        const std::vector<std::string>& labels,
                                        std::vector<double> buckets) {
  HistogramFamily& f =
      *Add(Type::kHistogram, name, help, labels, std::move(buckets)).histogram;
  if (labels.empty()) f.WithLabelValues();
  return f;
}

std::string Registry::Render() const {
  std::string out;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, e] : families_) {
    const std::string& help = e.counter     ? e.counter->help_
                              : e.gauge     ? e.gauge->help_
                                            : e.histogram->help_;
    absl::StrAppend(&out, "# HELP ", name, " ", Escape(help, /*quote=*/false), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", TypeName(e.type), "\n");
    if (e.counter) e.counter->Render(&out);
    if (e.gauge) e.gauge->Render(&out);
    if (e.histogram) e.histogram->Render(&out);
  }
  return out;
}

}  // namespace coupon::metrics
