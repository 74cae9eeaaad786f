#pragma once

// The worker's loop over its consumer group: collect a batch, decide it
// (BatchProcessor), commit its offsets; on failure give it back to the log
// and try again. The next batch is collected while this one's transaction
// commits, and decided while up to two before it wait for their results'
// acknowledgements. No librdkafka here: it runs on a kafka::GroupConsumer,
// so unit tests drive it with a fake one.

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/kafka/consumer.h"
#include "issuer-worker/batch_processor.h"

namespace coupon::worker {

struct LoopConfig {
  // At most this many events of one poll (any partitions) in one batch.
  int max_batch = 500;
  // After the first event, how long to wait for more to fill a batch.
  absl::Duration batch_wait = absl::Milliseconds(5);
  // How long a batch's results may take to be acknowledged.
  absl::Duration publish_timeout = absl::Seconds(30);
};

/// Totals since start, readable from any thread.
struct LoopCounters {
  std::atomic<int64_t> events{0};
  std::atomic<int64_t> decided{0};
  std::atomic<int64_t> issued{0};
  std::atomic<int64_t> dead_letters{0};
  std::atomic<int64_t> batches{0};
  std::atomic<int64_t> retries{0};
};

/// Runs on the thread that calls Run, which is the consumer's thread. The
/// consumer and the processor must outlive it.
class ConsumeLoop {
 public:
  ConsumeLoop(kafka::GroupConsumer* consumer, BatchProcessor* processor,
              LoopConfig config)
      : consumer_(consumer), processor_(processor), config_(config) {}

  // Until `stop` is set: the batch in hand is finished (committed, or given
  // back) first. Then leaves the group. INTERNAL when a failed batch cannot
  // be given back to the log for a partition this member still owns (a
  // failed seek): reading on would commit past undecided events, so the loop
  // leaves the group and stops instead, and its partitions start again from
  // the committed offsets, elsewhere or after a restart.
  absl::Status Run(const std::atomic<bool>& stop);

  const LoopCounters& counters() const { return counters_; }

 private:
  struct Batch;
  struct InFlight;
  // One poll's events of the partitions still owned, up to max_batch: those
  // that come within `gather` of the first (which comes within first_wait),
  // and those fetched already.
  Batch Collect(const std::atomic<bool>& stop, absl::Duration first_wait,
                absl::Duration gather);
  // Waits for the batch's acknowledgements, then commits it.
  absl::Status Settle(InFlight& done);
  // The batches failed (`why`): each is given back, then a pause. An error
  // when one cannot be (see Run): the loop stops.
  absl::Status Retry(const std::vector<const Batch*>& batches, const absl::Status& why,
                     absl::Duration& backoff);
  // The batch is done: its offsets are committed and its figures counted.
  void Commit(const Batch& batch, const BatchStats& stats, absl::Time batch_start);
  // The batch failed: each owned partition is read again from its start.
  absl::Status GiveBack(const Batch& batch);

  kafka::GroupConsumer* consumer_;
  BatchProcessor* processor_;
  const LoopConfig config_;
  LoopCounters counters_;
};

}  // namespace coupon::worker
