#pragma once

// One batch, start to end (the events of one poll, from any partitions, each
// partition's in offset order): decode the events, decide and store them in
// one transaction, publish the results and dead letters, and wait for the
// broker's acknowledgements. Only when Process returns OK may the batch's
// offsets be committed. No Kafka consumer here: consume_loop.cc owns it.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/domain/event_publisher.h"
#include "issuer-worker/issuance_store.h"

namespace coupon::worker {

struct RawEvent {
  std::string key;
  std::string payload;
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};

struct BatchStats {
  size_t events = 0;
  size_t decided = 0;      // fresh decisions stored
  std::map<Outcome, size_t> decided_by_outcome;  // the same, by outcome
  size_t republished = 0;  // results of replayed requests sent again
  size_t reused = 0;       // REQUEST_ID_REUSED results (never stored)
  size_t issued = 0;
  size_t dead_letters = 0;
  absl::Duration store_time;    // the transaction
  absl::Duration publish_time;  // results out until acknowledged
};

struct TopicNames {
  std::string result = "coupon-issue-result";
  std::string dead_letter = "coupon-issue-request.dlq";
};

/// Not thread-safe: one batch at a time, from the worker loop's thread. The
/// store and publisher must outlive it. The results are encoded and handed
/// to the publisher on a thread of the processor's own, batch after batch in
/// the order they were submitted, so that the loop's thread goes on to the
/// next batch meanwhile; the destructor publishes what was submitted, then
/// joins it.
class BatchProcessor {
 public:
  using Clock = std::function<absl::Time()>;

  BatchProcessor(IssuanceStore* store, EventPublisher* publisher,
                 TopicNames topics, Clock clock = absl::Now);
  ~BatchProcessor();
  BatchProcessor(const BatchProcessor&) = delete;
  BatchProcessor& operator=(const BatchProcessor&) = delete;

  class Acks;
  /// A batch decided, stored and published, whose acknowledgements may be
  /// on their way still.
  struct Submitted {
    std::shared_ptr<Acks> acks;
    absl::Time deadline;
    absl::Time publish_start;
  };

  // OK: every event is decided and stored, and its result (or dead letter)
  // is acknowledged by the broker. Otherwise nothing is lost: processing the
  // same events again republishes the stored results and decides the rest.
  // Submit, then Wait.
  absl::Status Process(const std::vector<RawEvent>& events,
                       absl::Duration publish_timeout, BatchStats* stats);
  // Decides and stores the batch, and queues its results and dead letters
  // for the publishing thread, without waiting for the broker. An error:
  // nothing was sent. `meanwhile` runs while the store commits
  // (IssuanceStore::DecideAndStore).
  absl::StatusOr<Submitted> Submit(const std::vector<RawEvent>& events,
                                   absl::Duration publish_timeout, BatchStats* stats,
                                   const IssuanceStore::Meanwhile& meanwhile = {});
  // Waits for what Submit sent to be acknowledged, at most until its
  // deadline; fills stats->publish_time. OK as Process's.
  absl::Status Wait(const Submitted& submitted, BatchStats* stats);

 private:
  struct Outgoing;
  // The publishing thread: each Outgoing in turn.
  void PublishLoop();
  void Send(Outgoing& out);

  IssuanceStore* store_;
  EventPublisher* publisher_;
  const TopicNames topics_;
  const Clock clock_;

  std::mutex mu_;
  std::condition_variable queued_;
  std::deque<std::unique_ptr<Outgoing>> queue_;  // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_
  std::thread publishing_;
};

}  // namespace coupon::worker
