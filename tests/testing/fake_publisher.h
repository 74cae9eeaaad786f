#pragma once

// An in-memory EventPublisher for unit tests of domain classes. Integration
// tests use the real broker.

#include <mutex>
#include <string>
#include <vector>

#include "common/domain/event_publisher.h"

namespace coupon::testing {

class FakePublisher : public EventPublisher {
 public:
  struct Sent {
    std::string topic, key, payload;
    Headers headers;
  };

  // Acknowledged events get offsets 0, 1, 2, ... in partition 0.
  void Publish(const std::string& topic, std::string key, std::string payload,
               Headers headers, DeliveryCallback done) override {
    int64_t offset;
    {
      std::lock_guard<std::mutex> lock(mu_);
      offset = static_cast<int64_t>(sent_.size());
      sent_.push_back({topic, std::move(key), std::move(payload), std::move(headers)});
    }
    done(next_status_, next_status_.ok() ? Placement{0, offset} : Placement{});
  }
  bool Available() const override { return available_; }

  std::vector<Sent> sent() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }
  void set_available(bool available) { available_ = available; }
  // What the next deliveries report.
  void set_delivery_status(absl::Status s) { next_status_ = std::move(s); }

 private:
  mutable std::mutex mu_;
  std::vector<Sent> sent_;
  bool available_ = true;
  absl::Status next_status_;
};

}  // namespace coupon::testing
