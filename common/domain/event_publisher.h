#pragma once

// The narrow interface through which domain code publishes events. The Kafka
// implementation is common/kafka/producer.h; tests use a fake.

#include <functional>
#include <string>

#include "absl/status/status.h"

namespace coupon {

class EventPublisher {
 public:
  // Called exactly once, on the publisher's own thread, when the broker has
  // acknowledged the event (OK) or it cannot be delivered (UNAVAILABLE,
  // DEADLINE_EXCEEDED, ...). Must not block.
  using DeliveryCallback = std::function<void(absl::Status)>;

  virtual ~EventPublisher() = default;

  // Queues one event; never blocks. `done` is called even when queueing
  // fails: then at once, on the calling thread. A full local queue fails
  // UNAVAILABLE at once (the broker is slow or down: waiting for room would
  // hold the caller's thread, a gRPC thread on the gateway).
  virtual void Publish(const std::string& topic, std::string key,
                       std::string payload, DeliveryCallback done) = 0;

  // False when no broker is reachable, so callers can fail fast.
  virtual bool Available() const = 0;
};

}  // namespace coupon
