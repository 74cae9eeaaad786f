#pragma once

#include <string>

#include "common/event_publisher.h"
#include "gateway/issuer.h"
#include "gateway/result_hub.h"

namespace coupon::gateway {

/// Answers from what the result topic taught the hub, else produces an
/// IssueRequested event keyed by coupon id and answers ACCEPTED once the
/// broker acknowledged it. Thread-safe; the hub and publisher must outlive it.
class KafkaIssuer final : public Issuer {
 public:
  using Clock = std::function<absl::Time()>;

  KafkaIssuer(ResultHub* hub, EventPublisher* publisher,
              std::string request_topic, std::string gateway_id,
              Clock clock = absl::Now);

  void Issue(IssueCommand command, const CouponInfo& coupon,
             absl::Time deadline, IssueDone done) override;

 private:
  ResultHub* hub_;
  EventPublisher* publisher_;
  const std::string request_topic_;
  const std::string gateway_id_;
  const Clock clock_;
};

}  // namespace coupon::gateway
