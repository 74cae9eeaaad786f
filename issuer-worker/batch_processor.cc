#include "issuer-worker/batch_processor.h"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/wire/event_codec.h"
#include "glog/logging.h"

namespace coupon::worker {

/// Counts delivery callbacks of one batch. Callbacks run on the producer's
/// thread; Wait runs on the worker's. Each callback holds a reference, so a
/// late one after a timed-out Wait still has something to call.
class BatchProcessor::Acks : public std::enable_shared_from_this<Acks> {
 public:
  EventPublisher::DeliveryCallback Expect() {
    std::lock_guard<std::mutex> lock(mu_);
    ++outstanding_;
    return [self = shared_from_this()](absl::Status s, Placement) {
      self->Done(std::move(s));
    };
  }

  absl::Status Wait(absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, absl::ToChronoTime(deadline),
                        [&] { return outstanding_ == 0; })) {
      return absl::DeadlineExceededError(absl::StrCat(
          "kafka: ", outstanding_, " events of the batch not acknowledged"));
    }
    return first_error_;
  }

 private:
  void Done(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!s.ok() && first_error_.ok()) first_error_ = std::move(s);
    --outstanding_;
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int outstanding_ = 0;
  absl::Status first_error_;
};

// One batch's events to publish, with what the publishing thread needs to
// encode them. Each already holds its acknowledgement (Acks::Expect), so a
// Wait that starts before the thread reaches the batch waits for it.
struct BatchProcessor::Outgoing {
  struct Result {
    IssueResult result;
    EventPublisher::DeliveryCallback done;
  };
  struct Dead {
    RawEvent event;
    std::string reason;
    EventPublisher::DeliveryCallback done;
  };
  std::vector<Result> results;
  std::vector<Dead> dead;
  absl::flat_hash_map<int32_t, int64_t> through;      // partition -> last offset
  absl::flat_hash_map<int64_t, int32_t> partition_of;  // coupon -> partition
  UnixMicros now = 0;
};

BatchProcessor::BatchProcessor(IssuanceStore* store, EventPublisher* publisher,
                               TopicNames topics, Clock clock)
    : store_(store),
      publisher_(publisher),
      topics_(std::move(topics)),
      clock_(std::move(clock)),
      publishing_([this] { PublishLoop(); }) {}

BatchProcessor::~BatchProcessor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  queued_.notify_all();
  publishing_.join();
}

void BatchProcessor::PublishLoop() {
  for (;;) {
    std::unique_ptr<Outgoing> out;
    {
      std::unique_lock<std::mutex> lock(mu_);
      queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is sent
      out = std::move(queue_.front());
      queue_.pop_front();
    }
    Send(*out);
  }
}

void BatchProcessor::Send(Outgoing& out) {
  for (Outgoing::Result& r : out.results) {
    const IssueResult& result = r.result;
    EventPublisher::Headers headers;
    if (auto p = out.partition_of.find(result.coupon_id); p != out.partition_of.end()) {
      headers.emplace_back(
          kDecidedThroughHeader,
          EncodeDecidedThrough(DecidedThrough{p->second, out.through[p->second]}));
    }
    VLOG(1) << "request " << result.request_id << " coupon " << result.coupon_id
            << " user " << result.user_id << " decided "
            << OutcomeName(result.outcome)
            << (headers.empty() ? std::string()
                                : absl::StrCat(" (", kDecidedThroughHeader, " ",
                                               headers[0].second, ")"));
    publisher_->Publish(topics_.result, CouponKey(result.coupon_id),
                        EncodeIssueResult(result), std::move(headers), std::move(r.done));
  }
  for (Outgoing::Dead& d : out.dead) {
    const RawEvent& e = d.event;
    LOG(WARNING) << "dead letter: " << e.topic << "/" << e.partition << "@"
                 << e.offset << ": " << d.reason;
    publisher_->Publish(topics_.dead_letter, e.key,
                        EncodeDeadLetter(DeadLetter{e.payload, e.key, d.reason, e.topic,
                                                    e.partition, e.offset, out.now}),
                        {}, std::move(d.done));
  }
}

absl::Status BatchProcessor::Process(const std::vector<RawEvent>& events,
                                     absl::Duration publish_timeout,
                                     BatchStats* stats) {
  absl::StatusOr<Submitted> submitted = Submit(events, publish_timeout, stats);
  if (!submitted.ok()) return submitted.status();
  return Wait(*submitted, stats);
}

absl::Status BatchProcessor::Wait(const Submitted& submitted, BatchStats* stats) {
  absl::Status acked = submitted.acks->Wait(submitted.deadline + absl::Seconds(1));
  stats->publish_time = absl::Now() - submitted.publish_start;
  return acked;
}

absl::StatusOr<BatchProcessor::Submitted> BatchProcessor::Submit(
    const std::vector<RawEvent>& events, absl::Duration publish_timeout,
    BatchStats* stats, const IssuanceStore::Meanwhile& meanwhile) {
  *stats = BatchStats{};
  stats->events = events.size();
  const UnixMicros now = absl::ToUnixMicros(clock_());

  // How far each partition of the batch is decided once the batch is
  // stored, for the result events' kDecidedThroughHeader; a coupon's
  // requests all come from one partition (the key).
  auto out = std::make_unique<Outgoing>();
  out->now = now;
  for (const RawEvent& e : events) {
    int64_t& last = out->through.try_emplace(e.partition, e.offset).first->second;
    last = std::max(last, e.offset);
  }

  // Malformed events never reach the database.
  std::vector<IssueRequest> requests;
  std::vector<size_t> origin;  // requests[i] came from events[origin[i]]
  std::vector<std::pair<size_t, std::string>> dead;
  for (size_t i = 0; i < events.size(); ++i) {
    absl::StatusOr<IssueRequest> req = DecodeIssueRequested(events[i].payload);
    if (req.ok()) {
      out->partition_of[req->coupon_id] = events[i].partition;
      requests.push_back(std::move(*req));
      origin.push_back(i);
    } else {
      dead.emplace_back(i, std::string(req.status().message()));
    }
  }

  BatchDecision decision;
  const absl::Time store_start = absl::Now();
  if (!requests.empty()) {
    absl::StatusOr<BatchDecision> stored =
        store_->DecideAndStore(requests, now, DecideBatch, meanwhile);
    if (!stored.ok()) return stored.status();
    decision = std::move(*stored);
  }
  const absl::Time publish_start = absl::Now();
  stats->store_time = publish_start - store_start;
  for (const Refusal& r : decision.refusals) {
    dead.emplace_back(origin[r.event_index], r.reason);
  }

  // Everything of the batch goes out, in order, from the publishing
  // thread; Wait waits for all of it once.
  for (const IssueResult& result : decision.results) {
    if (result.outcome == Outcome::kIssued) ++stats->issued;
  }
  stats->decided = decision.fresh.size();
  for (size_t i : decision.fresh) {
    ++stats->decided_by_outcome[decision.results[i].outcome];
  }
  stats->reused = decision.reused;
  stats->republished =
      decision.results.size() - decision.fresh.size() - decision.reused;
  stats->dead_letters = dead.size();

  auto acks = std::make_shared<Acks>();
  const absl::Time deadline = clock_() + publish_timeout;
  out->results.reserve(decision.results.size());
  for (IssueResult& result : decision.results) {
    out->results.push_back({std::move(result), acks->Expect()});
  }
  for (auto& [index, reason] : dead) {
    out->dead.push_back({events[index], std::move(reason), acks->Expect()});
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(out));
  }
  queued_.notify_one();
  return Submitted{std::move(acks), deadline, publish_start};
}

}  // namespace coupon::worker
