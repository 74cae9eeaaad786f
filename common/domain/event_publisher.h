#pragma once

// The narrow interface through which domain code publishes events. The Kafka
// implementation is common/kafka/producer.h; tests use a fake.

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace coupon {

// Where the broker put an acknowledged event; -1 when it is not known.
struct Placement {
  int32_t partition = -1;
  int64_t offset = -1;
};

class EventPublisher {
 public:
  // Called exactly once, on the publisher's own thread, when the broker has
  // acknowledged the event (OK, with where it is) or it cannot be delivered
  // (UNAVAILABLE, DEADLINE_EXCEEDED, ...). Must not block.
  using DeliveryCallback = std::function<void(absl::Status, Placement)>;
  // Event headers (name, value), in order.
  using Headers = std::vector<std::pair<std::string, std::string>>;

  virtual ~EventPublisher() = default;

  // Queues one event; never blocks. `done` is called even when queueing
  // fails: then at once, on the calling thread. A full local queue fails
  // UNAVAILABLE at once (the broker is slow or down: waiting for room would
  // hold the caller's thread, a gRPC thread on the gateway).
  virtual void Publish(const std::string& topic, std::string key,
                       std::string payload, Headers headers,
                       DeliveryCallback done) = 0;

  // False when no broker is reachable, so callers can fail fast.
  virtual bool Available() const = 0;
};

}  // namespace coupon
