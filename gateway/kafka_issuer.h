#pragma once

#include <string>

#include "common/event_publisher.h"
#include "gateway/issuer.h"

namespace coupon::gateway {

/// Produces an IssueRequested event keyed by coupon id and answers ACCEPTED
/// once the broker acknowledged it (or NOT_STARTED / EXPIRED outside the
/// coupon's window). Thread-safe; the publisher must outlive it.
class KafkaIssuer final : public Issuer {
 public:
  using Clock = std::function<absl::Time()>;

  KafkaIssuer(EventPublisher* publisher,
              std::string request_topic, std::string gateway_id,
              Clock clock = absl::Now);

  void Issue(IssueCommand command, const CouponInfo& coupon,
             absl::Time deadline, IssueDone done) override;

 private:
  EventPublisher* publisher_;
  const std::string request_topic_;
  const std::string gateway_id_;
  const Clock clock_;
};

}  // namespace coupon::gateway
