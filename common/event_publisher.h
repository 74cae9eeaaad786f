#pragma once

// The narrow interface through which domain code publishes events. The Kafka
// implementation is common/kafka/producer.h; tests use a fake.

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace coupon {

class EventPublisher {
 public:
  // Called exactly once, on the publisher's own thread, when the broker has
  // acknowledged the event (OK) or it cannot be delivered (UNAVAILABLE,
  // DEADLINE_EXCEEDED, ...). Must not block.
  using DeliveryCallback = std::function<void(absl::Status)>;

  virtual ~EventPublisher() = default;

  // Queues one event. `done` is called even when queueing fails. When the
  // local queue is full, retries until `deadline`, then fails UNAVAILABLE.
  virtual void Publish(const std::string& topic, std::string key,
                       std::string payload, absl::Time deadline,
                       DeliveryCallback done) = 0;

  // False when no broker is reachable, so callers can fail fast.
  virtual bool Available() const = 0;
};

}  // namespace coupon
