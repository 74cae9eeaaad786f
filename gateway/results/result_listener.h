#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gateway/results/result_hub.h"

namespace coupon::kafka {
class GroupOffsets;
class TopicReader;
}

namespace coupon::gateway {

struct ResultListenerConfig {
  std::string brokers;
  std::string topic = "coupon-issue-result";
  // On start, results decided this long ago are read again, so a new replica
  // knows what is sold out and who holds a copy.
  absl::Duration replay_window = absl::Minutes(10);
  std::map<std::string, std::string> extra;  // librdkafka properties
  // The issuer-workers' consumer group and its topic: their committed
  // offsets, read this often (never joining the group), say how far a
  // partition with no recent result is decided, for the place in line. An
  // empty group reads none: such partitions' requests then have no place
  // until a result of theirs comes.
  std::string worker_group;
  std::string request_topic = "coupon-issue-request";
  absl::Duration progress_interval = absl::Seconds(10);
};

/// Reads every partition of the result topic (no consumer group: each gateway
/// replica needs all results) and publishes each result to the hub, with how
/// far each request partition is decided (the results' header, and the
/// workers' committed offsets). Owns two threads, started by Start and
/// joined by the destructor. The hub must outlive it.
class ResultListener {
 public:
  ResultListener(ResultListenerConfig config, ResultHub* hub);
  ~ResultListener();

  // Creates the consumer; INVALID_ARGUMENT for bad properties. The partitions
  // are assigned by the thread, which retries until the topic is reachable.
  absl::Status Start();

  // True once the listener has read every partition up to where it ended
  // when the listener started: the hub then knows the replay window's
  // results (what is sold out, who holds a copy) and misses no new one.
  bool ready() const { return ready_.load(); }

 private:
  void Run();
  void ReadProgress();
  void Track(int32_t partition, int64_t offset);

  const ResultListenerConfig config_;
  ResultHub* hub_;
  std::unique_ptr<kafka::TopicReader> reader_;
  std::unique_ptr<kafka::GroupOffsets> offsets_;  // null: no worker_group
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::map<int32_t, int64_t> behind_;  // partition -> end offset; thread only
  std::thread thread_;
  std::thread progress_thread_;
};

}  // namespace coupon::gateway
