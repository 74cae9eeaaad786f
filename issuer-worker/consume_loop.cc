#include "issuer-worker/consume_loop.h"

#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/domain/status_macros.h"
#include "common/metrics/metrics.h"
#include "glog/logging.h"
#include "issuer-worker/worker_metrics.h"

namespace coupon::worker {

// A batch: each partition's events in offset order, and the offsets it
// spans there.
struct ConsumeLoop::Batch {
  std::vector<RawEvent> events;
  std::map<int32_t, std::pair<int64_t, int64_t>>
      ranges;  // partition -> [first, last]
};

// A batch decided, stored and published, its acknowledgements on their way.
struct ConsumeLoop::InFlight {
  Batch batch;
  BatchStats stats;
  BatchProcessor::Submitted submitted;
  absl::Time start;
};

absl::Status ConsumeLoop::Run(const std::atomic<bool>& stop) {
  absl::Duration backoff = absl::Milliseconds(100);
  // The batches before, oldest first, while their results are on their way
  // to the broker: the next batch is collected and decided meanwhile, and
  // each is committed once both its transaction and its acknowledgements
  // are done, in order. Up to kAwaiting of them wait, so that one batch's
  // slow acknowledgements do not hold up the next transaction. The
  // transactions stay in order, one at a time; a failure of any gives back
  // all of them (a replay republishes what was stored).
  constexpr size_t kAwaiting = 2;
  std::deque<InFlight> pending;
  // The batch after, collected while this one's transaction commits: the
  // events already fetched, no waiting for more.
  std::optional<Batch> ahead;
  // Gives back every batch not committed, latest first (the batch after,
  // this one, the ones before): where two hold a partition, the earlier
  // offset is the one that stands.
  // Settles the oldest batches, in order, until at most `keep` wait; stops
  // at the first failure, which stays at the front.
  auto settle_down_to = [&](size_t keep) {
    absl::Status settled;
    while (settled.ok() && pending.size() > keep) {
      settled = Settle(pending.front());
      if (settled.ok()) pending.pop_front();
    }
    return settled;
  };
  auto give_back = [&](const Batch* current, const absl::Status& why) {
    std::vector<const Batch*> back;
    if (ahead) back.push_back(&*ahead);
    if (current != nullptr) back.push_back(current);
    for (auto it = pending.rbegin(); it != pending.rend(); ++it) back.push_back(&it->batch);
    absl::Status retried = Retry(back, why, backoff);
    pending.clear();
    ahead.reset();
    return retried;
  };
  while (!stop.load()) {
    Batch batch;
    if (ahead) {
      batch = std::move(*ahead);
      ahead.reset();
    } else {
      batch = Collect(stop, pending.empty() ? absl::Milliseconds(100) : absl::ZeroDuration(),
                      config_.batch_wait);
    }
    if (batch.events.empty()) {
      // Nothing new: whatever waits is settled now.
      if (absl::Status settled = settle_down_to(0); !settled.ok()) {
        if (absl::Status back = give_back(nullptr, settled); !back.ok()) return back;
      } else {
        backoff = absl::Milliseconds(100);
      }
      continue;
    }

    InFlight next{std::move(batch), BatchStats{}, {}, absl::Now()};
    absl::StatusOr<BatchProcessor::Submitted> submitted = processor_->Submit(
        next.batch.events, config_.publish_timeout, &next.stats, [&] {
          Batch after = Collect(stop, absl::ZeroDuration(), absl::ZeroDuration());
          if (!after.events.empty()) ahead = std::move(after);
        });
    counters_.batches++;
    // Stored decisions count even when the batch is retried: the retry
    // republishes them rather than deciding them again.
    WorkerMetrics& m = metrics::Instance<WorkerMetrics>();
    for (const auto& [outcome, n] : next.stats.decided_by_outcome) {
      m.decisions.WithLabelValues({std::string(OutcomeName(outcome))}).Inc(n);
    }
    const absl::Status before = settle_down_to(kAwaiting - 1);
    if (before.ok() && submitted.ok()) {
      next.submitted = std::move(*submitted);
      pending.push_back(std::move(next));
      backoff = absl::Milliseconds(100);
      continue;
    }
    if (absl::Status back = give_back(&next.batch, before.ok() ? submitted.status() : before);
        !back.ok()) {
      return back;
    }
  }
  // The batches in hand are committed (or given back) by now, in order; one
  // collected ahead was never committed, and its events are read again by
  // whoever owns their partitions next. Closing leaves the group, so the
  // others take the partitions at once instead of after the session
  // timeout.
  (void)settle_down_to(0);
  consumer_->Close();
  return absl::OkStatus();
}

absl::Status ConsumeLoop::Settle(InFlight& done) {
  RETURN_IF_ERROR(processor_->Wait(done.submitted, &done.stats));
  Commit(done.batch, done.stats, done.start);
  return absl::OkStatus();
}

absl::Status ConsumeLoop::Retry(const std::vector<const Batch*>& batches,
                                const absl::Status& why, absl::Duration& backoff) {
  // Give the batches back to the log and try again after a pause: the
  // database or broker may be restarting. Nothing of them was committed.
  counters_.retries++;
  metrics::Instance<WorkerMetrics>().retries.Inc();
  size_t events = 0;
  for (const Batch* b : batches) events += b->events.size();
  LOG(WARNING) << "worker: " << events << " events of " << batches.size()
               << " batch(es) not done, retrying in " << backoff << ": " << why;
  for (const Batch* b : batches) {
    if (absl::Status back = GiveBack(*b); !back.ok()) {
      LOG(ERROR) << "worker: stopping: " << back;
      consumer_->Close();
      return back;
    }
  }
  absl::SleepFor(backoff);
  backoff = std::min(backoff * 2, absl::Seconds(5));
  return absl::OkStatus();
}

ConsumeLoop::Batch ConsumeLoop::Collect(const std::atomic<bool>& stop,
                                        absl::Duration first_wait, absl::Duration gather) {
  // Whatever arrives within `gather` of the first event, and what is
  // fetched already then, up to max_batch, per partition in offset order;
  // nothing if no first event comes within first_wait (zero: one look).
  std::map<int32_t, std::vector<RawEvent>> by_partition;
  int total = 0;
  absl::Time until = absl::InfiniteFuture();
  while (total < config_.max_batch) {
    const absl::Duration wait =
        total == 0 ? first_wait : std::max(until - absl::Now(), absl::ZeroDuration());
    std::optional<kafka::Record> r = consumer_->Poll(wait);
    if (!r) {
      if (total > 0 || stop.load() || first_wait == absl::ZeroDuration()) break;
      continue;
    }
    if (total == 0) until = absl::Now() + gather;
    by_partition[r->partition].push_back(
        RawEvent{std::move(r->key), std::move(r->payload), std::move(r->topic),
                 r->partition, r->offset});
    ++total;
  }

  // One transaction for the whole poll: each partition's events stay in
  // offset order, coupons are independent, and the coupon locks are taken
  // in id order. Per-partition transactions paid the fixed costs (commit,
  // acknowledgements, offset commit) once per ~50 events when a sale spans
  // many coupons.
  Batch batch;
  for (auto& [partition, events] : by_partition) {
    // Revoked while we collected: the new owner reads these again.
    if (!consumer_->Owns(partition)) continue;
    batch.ranges[partition] = {events.front().offset, events.back().offset};
    for (RawEvent& e : events) batch.events.push_back(std::move(e));
  }
  return batch;
}

void ConsumeLoop::Commit(const Batch& batch, const BatchStats& stats,
                         absl::Time batch_start) {
  // Only what this member still owns: a partition taken away while the
  // batch's acknowledgements were awaited is its new owner's to commit.
  std::map<int32_t, int64_t> next;
  for (const auto& [partition, range] : batch.ranges) {
    if (consumer_->Owns(partition)) next[partition] = range.second + 1;
  }
  const absl::Time commit_start = absl::Now();
  if (absl::Status committed = next.empty() ? absl::OkStatus() : consumer_->Commit(next);
      !committed.ok()) {
    // Decided and published already; a new owner replays the events and
    // republishes the stored results.
    LOG(WARNING) << "worker: " << committed;
  }
  const absl::Duration commit_time = absl::Now() - commit_start;
  counters_.events += stats.events;
  counters_.decided += stats.decided;
  counters_.issued += stats.issued;
  counters_.dead_letters += stats.dead_letters;
  WorkerMetrics& m = metrics::Instance<WorkerMetrics>();
  m.batch_events.Observe(static_cast<double>(stats.events));
  m.transaction_seconds.ObserveDuration(stats.store_time);
  m.batch_seconds.ObserveDuration(absl::Now() - batch_start);
  m.republished.Inc(static_cast<double>(stats.republished));
  m.reused.Inc(static_cast<double>(stats.reused));
  m.dead_letters.Inc(static_cast<double>(stats.dead_letters));
  VLOG(1) << "worker: " << stats.events << " events from "
          << batch.ranges.size() << " partitions: " << stats.decided
          << " decided, " << stats.republished << " republished, "
          << stats.dead_letters << " dead; store " << stats.store_time
          << ", publish " << stats.publish_time << ", commit " << commit_time;
}

absl::Status ConsumeLoop::GiveBack(const Batch& batch) {
  for (const auto& [partition, range] : batch.ranges) {
    absl::Status back = consumer_->Seek(partition, range.first);
    // A partition taken from us meanwhile is read again by its new owner
    // from the group's committed offset. One we still own would be read on
    // from past the batch, and the next commit would skip undecided events.
    if (back.ok() || !consumer_->Owns(partition)) continue;
    return absl::InternalError(absl::StrCat(
        "worker: cannot give partition ", partition, " back to offset ",
        range.first, " after a failed batch (", back.message(),
        "); stopped so that no undecided event is skipped"));
  }
  return absl::OkStatus();
}

}  // namespace coupon::worker
