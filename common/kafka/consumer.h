#pragma once

// librdkafka's consumers behind our types: a group member (the worker's
// GroupConsumer, an interface so the worker's loop is tested without a
// broker) and a reader of every partition with no group (the gateway's
// result listener), plus the check that a topic exists.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace RdKafka {
class Handle;
class KafkaConsumer;
}  // namespace RdKafka

namespace coupon::kafka {

// One consumed event, copied out of librdkafka.
struct Record {
  std::string key;
  std::string payload;
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  // The event's headers (name, value), in order.
  std::vector<std::pair<std::string, std::string>> headers;

  // The first header called `name`, or nullptr.
  const std::string* Header(const std::string& name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return &v;
    }
    return nullptr;
  }
};

// The partitions of `topic`, as the cluster that `handle` talks to knows
// them: UNAVAILABLE when no broker answers within `timeout`, NOT_FOUND when
// the topic does not exist (with the command that makes it).
absl::StatusOr<std::vector<int32_t>> TopicPartitions(RdKafka::Handle& handle,
                                                     const std::string& topic,
                                                     absl::Duration timeout);

/// A member of a consumer group, on one topic, committing offsets by hand.
/// What the worker's consume loop needs of it; KafkaGroupConsumer is the
/// real one. One thread only: the loop's.
class GroupConsumer {
 public:
  virtual ~GroupConsumer() = default;
  // The next event within `timeout`, or nullopt (nothing came, or an error,
  // which is logged). Rebalances are served in here.
  virtual std::optional<Record> Poll(absl::Duration timeout) = 0;
  // Whether this member owns `partition` now (as of the last Poll).
  virtual bool Owns(int32_t partition) const = 0;
  // Commits, per partition, the offset of the next event to read. Sends the
  // commit without waiting for the broker's answer: an error here is one
  // found before sending; a later failure is logged. A lost commit only
  // makes the next owner replay what it covered, as the loop allows.
  virtual absl::Status Commit(
      const std::map<int32_t, int64_t>& next_offsets) = 0;
  // Makes the next Poll of `partition` start again at `offset`.
  virtual absl::Status Seek(int32_t partition, int64_t offset) = 0;
  // Leaves the group, so the others take its partitions at once.
  virtual void Close() = 0;
};

struct GroupConsumerConfig {
  std::string brokers;
  std::string group_id;
  std::string topic;
  std::string client_id;
  int session_timeout_ms = 10000;
  // librdkafka's partition.assignment.strategy: range (eager: every
  // partition is revoked and handed out again) or cooperative-sticky (only
  // the partitions that change owner move). librdkafka 2.0.2 loses a
  // cooperative member's assignment when it commits during a rebalance
  // (librdkafka#4059), which this consumer does, so range is the default.
  std::string assignment = "range";
  std::map<std::string, std::string> extra;  // librdkafka properties
  // Called from Poll when the partitions owned change (their number), and
  // every few seconds with each owned partition's lag (events not committed
  // by the group yet; -1 removes a partition that moved away).
  std::function<void(int owned)> on_assignment;
  std::function<void(int32_t partition, int64_t lag)> on_lag;
};

/// The librdkafka group member: read_committed, no auto-commit, eager or
/// cooperative rebalances (a revoked partition is given back before the next
/// Poll).
/// One thread only; Close before destroying it, or the destructor does.
class KafkaGroupConsumer final : public GroupConsumer {
 public:
  // INVALID_ARGUMENT for properties librdkafka refuses.
  static absl::StatusOr<std::unique_ptr<KafkaGroupConsumer>> Create(
      GroupConsumerConfig config);
  ~KafkaGroupConsumer() override;

  std::optional<Record> Poll(absl::Duration timeout) override;
  bool Owns(int32_t partition) const override;
  absl::Status Commit(const std::map<int32_t, int64_t>& next_offsets) override;
  absl::Status Seek(int32_t partition, int64_t offset) override;
  void Close() override;

  // Partitions owned now, and whether the group has ever assigned this
  // member (possibly nothing: it is a member). Any thread.
  int owned_count() const;
  bool joined() const;

 private:
  class Callbacks;
  explicit KafkaGroupConsumer(GroupConsumerConfig config);

  const GroupConsumerConfig config_;
  std::unique_ptr<Callbacks> callbacks_;  // outlives consumer_
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
};

/// Reads a consumer group's committed offsets without joining the group
/// (it never subscribes, never commits). One thread at a time.
class GroupOffsets {
 public:
  // INVALID_ARGUMENT for properties librdkafka refuses.
  static absl::StatusOr<std::unique_ptr<GroupOffsets>> Create(
      const std::string& brokers, const std::string& group,
      const std::map<std::string, std::string>& extra);
  ~GroupOffsets();

  // Per partition of `topic`, the next event the group will read: its
  // committed offset, or, where it has none, the partition's first event
  // (where the workers start: auto.offset.reset=earliest). UNAVAILABLE when
  // the brokers or the group's coordinator do not answer within `timeout`.
  absl::StatusOr<std::map<int32_t, int64_t>> NextToRead(const std::string& topic,
                                                        absl::Duration timeout);

 private:
  explicit GroupOffsets(std::unique_ptr<RdKafka::KafkaConsumer> consumer);
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
};

/// Reads every partition of one topic with no group (each reader needs all
/// of it), from a point in time on. One thread only.
class TopicReader {
 public:
  // INVALID_ARGUMENT for properties librdkafka refuses.
  static absl::StatusOr<std::unique_ptr<TopicReader>> Create(
      const std::string& brokers, const std::string& topic,
      const std::map<std::string, std::string>& extra);
  ~TopicReader();

  // Assigns every partition from the first event at or after `since` (the
  // end where none is), and returns, per partition with events to read up
  // to now, the end offset to reach: what "caught up" means.
  absl::StatusOr<std::map<int32_t, int64_t>> AssignFrom(absl::Time since);
  // The next event within `timeout`, or nullopt (nothing came, or an error,
  // logged).
  std::optional<Record> Poll(absl::Duration timeout);

 private:
  TopicReader(std::string topic,
              std::unique_ptr<RdKafka::KafkaConsumer> consumer);

  const std::string topic_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
};

}  // namespace coupon::kafka
