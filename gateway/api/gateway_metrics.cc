#include "gateway/api/gateway_metrics.h"

#include <array>
#include <string>

namespace coupon::gateway {
namespace {

// In the enum's order: indexed by Outcome.
constexpr Outcome kOutcomes[] = {Outcome::kAccepted,      Outcome::kIssued,
                                 Outcome::kSoldOut,       Outcome::kAlreadyIssued,
                                 Outcome::kNotStarted,    Outcome::kExpired,
                                 Outcome::kRequestIdReused, Outcome::kQueued};
constexpr int kCodes = 17;  // absl::StatusCode 0 (OK) .. 16 (UNAUTHENTICATED)

/// Every child the hot path needs, looked up once: an IssueCoupon answer
/// costs a few atomic operations and no lock.
struct IssueMetrics {
  metrics::Gauge* in_flight;
  std::array<metrics::Counter*, std::size(kOutcomes)> ok;  // by Outcome
  std::array<metrics::Histogram*, std::size(kOutcomes)> ok_latency;
  std::array<metrics::Counter*, kCodes> failed;  // by status code
  metrics::Histogram* failed_latency;

  explicit IssueMetrics(metrics::Registry& r) {
    in_flight = &r.AddGauge("coupon_gateway_issue_in_flight",
                            "IssueCoupon calls being answered (most wait for "
                            "the broker's acknowledgement).")
                     .WithLabelValues();
    auto& requests = r.AddCounter(
        "coupon_gateway_issue_requests_total",
        "IssueCoupon calls answered, by outcome (NONE when the call failed) "
        "and gRPC status code.",
        {"outcome", "code"});
    auto& latency = r.AddHistogram(
        "coupon_gateway_issue_latency_seconds",
        "IssueCoupon time from the handler to the answer, by outcome (NONE "
        "when the call failed).",
        {"outcome"}, metrics::LatencyBuckets());
    for (Outcome o : kOutcomes) {
      const std::string name(OutcomeName(o));
      ok[static_cast<size_t>(o)] = &requests.WithLabelValues({name, "OK"});
      ok_latency[static_cast<size_t>(o)] = &latency.WithLabelValues({name});
    }
    for (int code = 1; code < kCodes; ++code) {
      failed[code] = &requests.WithLabelValues(
          {"NONE", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))});
    }
    failed_latency = &latency.WithLabelValues({"NONE"});
  }
};

}  // namespace

absl::Time IssueCallStarted() {
  metrics::Instance<IssueMetrics>().in_flight->Inc();
  return absl::Now();
}

void IssueCallFinished(absl::Time started, const absl::StatusOr<IssueReply>& reply) {
  IssueMetrics& m = metrics::Instance<IssueMetrics>();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - started);
  m.in_flight->Dec();
  if (reply.ok()) {
    const auto o = static_cast<size_t>(reply->outcome);
    m.ok[o]->Inc();
    m.ok_latency[o]->Observe(seconds);
    return;
  }
  int code = static_cast<int>(reply.status().code());
  if (code <= 0 || code >= kCodes) code = static_cast<int>(absl::StatusCode::kUnknown);
  m.failed[code]->Inc();
  m.failed_latency->Observe(seconds);
}

metrics::Gauge& WatchStreamsGauge() {
  static metrics::Gauge* g =
      &metrics::Registry::Default()
           .AddGauge("coupon_gateway_watch_streams", "Open WatchIssueResults streams.")
           .WithLabelValues();
  return *g;
}

metrics::Gauge& ServingGauge() {
  static metrics::Gauge* g =
      &metrics::Registry::Default()
           .AddGauge("coupon_gateway_serving",
                     "1 while the gRPC health service says SERVING: the result "
                     "feed is ready and the gateway is not shutting down.")
           .WithLabelValues();
  return *g;
}

}  // namespace coupon::gateway
