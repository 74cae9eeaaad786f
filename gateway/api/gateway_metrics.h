#pragma once

// The gateway's own metrics (docs/operations.md, "Metrics"), in the process's
// registry. The producer's delivery metrics live in common/kafka/producer.cc.

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "gateway/issue/issuer.h"

namespace coupon::gateway {

// An IssueCoupon call begins: counted in flight. Returns its start time, for
// IssueCallFinished.
absl::Time IssueCallStarted();

// The call's answer: counted by outcome (ACCEPTED, ISSUED, ...; NONE when it
// failed) and status code, its latency observed, no longer in flight. Any
// thread; no locks.
void IssueCallFinished(absl::Time started, const absl::StatusOr<IssueReply>& reply);

// Open WatchIssueResults streams.
metrics::Gauge& WatchStreamsGauge();

// 1 while the health service says SERVING.
metrics::Gauge& ServingGauge();

}  // namespace coupon::gateway
