#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/domain/event_publisher.h"

namespace RdKafka {
class Producer;
}

namespace coupon::kafka {

struct ProducerConfig {
  std::string brokers;
  std::string client_id = "coupon";
  // How long librdkafka keeps retrying one event before failing it.
  int message_timeout_ms = 10000;
  int linger_ms = 2;
  // Bounds the producer's memory: at most this many events in flight.
  int max_queued_messages = 100000;
  // Extra librdkafka properties (security.protocol, sasl.*, ssl.*, ...).
  std::map<std::string, std::string> extra;
};

/// An idempotent (enable.idempotence, acks=all) librdkafka producer.
/// Thread-safe: Publish may be called from any thread. Delivery callbacks run
/// on the producer's own poll thread, which runs from Create until the
/// destructor; the destructor flushes (up to message_timeout_ms) and then
/// fails whatever is left, so every callback runs exactly once.
class Producer final : public EventPublisher {
 public:
  static absl::StatusOr<std::unique_ptr<Producer>> Create(
      const ProducerConfig& config);
  ~Producer() override;

  void Publish(const std::string& topic, std::string key, std::string payload,
               Headers headers, DeliveryCallback done) override;
  bool Available() const override { return brokers_up_.load(); }

  // Connects and fetches `topic`'s metadata, so the first events do not pay
  // for it. NOT_FOUND when the topic does not exist, UNAVAILABLE when no
  // broker answers within `timeout`.
  absl::Status WarmUp(const std::string& topic, absl::Duration timeout);

  // Waits until every queued event has its delivery callback, or `timeout`.
  absl::Status Flush(absl::Duration timeout);

 private:
  class Callbacks;
  Producer();
  void PollLoop();

  std::atomic<bool> brokers_up_{true};
  std::unique_ptr<Callbacks> callbacks_;  // outlives producer_
  std::unique_ptr<RdKafka::Producer> producer_;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

}  // namespace coupon::kafka
