#pragma once

// Topics of a test's own on the real broker: made by the test, led before it
// uses them, deleted when it is done. A test that decides events on topics
// of its own cannot have them decided by any other consumer group: not by a
// worker that scripts/up left running, nor by another test run.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;

namespace coupon::testing {

struct TopicSpec {
  std::string name;
  int partitions = 1;
};

// "coupon-it-<pid>-<unix seconds>-<tag>": the prefix of every topic and
// group a test process makes. The pid lets SweepDeadRunTopics tell the
// topics of runs that died (a CHECK, a timeout's SIGKILL) from live ones.
std::string RunPrefix(const std::string& tag);

/// librdkafka's admin API (the C API: the C++ one has none) on a producer
/// handle of its own, which it owns and destroys. Use from one thread at a
/// time; every call blocks until the broker answered or `timeout` passed.
class TopicAdmin {
 public:
  explicit TopicAdmin(const std::string& brokers);
  ~TopicAdmin();
  TopicAdmin(const TopicAdmin&) = delete;
  TopicAdmin& operator=(const TopicAdmin&) = delete;

  // Creates the topics (replication factor 1) and waits until every
  // partition of each has a leader. An existing topic is an error.
  absl::Status Create(const std::vector<TopicSpec>& topics,
                      absl::Duration timeout = absl::Seconds(30));
  // Deletes the topics; one that does not exist is no error.
  absl::Status Delete(const std::vector<std::string>& names,
                      absl::Duration timeout = absl::Seconds(30));
  // The names of every topic on the broker.
  absl::StatusOr<std::vector<std::string>> List(
      absl::Duration timeout = absl::Seconds(10));
  // The client ids of the consumer group's members, as its coordinator
  // lists them now. A member that left the group is gone at once; one that
  // vanished without leaving stays until its session times out.
  absl::StatusOr<std::vector<std::string>> GroupMembers(
      const std::string& group, absl::Duration timeout = absl::Seconds(10));

 private:
  // Every partition of every topic in `topics` has a leader.
  absl::StatusOr<bool> Led(const std::vector<TopicSpec>& topics);

  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;
};

// Deletes the topics of RunPrefix whose process no longer runs on this
// machine (they leak when a test dies before it can delete them). Returns
// how many it deleted. Topics of live processes, and all others, stay.
absl::StatusOr<int> SweepDeadRunTopics(TopicAdmin& admin);

}  // namespace coupon::testing
