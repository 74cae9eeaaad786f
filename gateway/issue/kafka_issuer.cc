#include "gateway/issue/kafka_issuer.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/wire/event_codec.h"
#include "glog/logging.h"

namespace coupon::gateway {

// One call between Publish and its answer. `answered` and `entry` are guarded
// by Waiting::mu; whoever sets `answered` calls `done`, outside the lock.
struct KafkaIssuer::Pending {
  IssueReply reply;
  int64_t coupon_id = 0;
  std::string user_id;
  IssueDone done;
  bool answered = false;
  std::optional<std::multimap<absl::Time, std::shared_ptr<Pending>>::iterator>
      entry;
};

KafkaIssuer::KafkaIssuer(EventPublisher* publisher, AnswerStore* answers,
                         ResultHub* hub, std::string request_topic,
                         std::string gateway_id, Clock clock)
    : publisher_(publisher),
      answers_(answers),
      hub_(hub),
      request_topic_(std::move(request_topic)),
      gateway_id_(std::move(gateway_id)),
      clock_(std::move(clock)),
      waiting_(std::make_shared<Waiting>()) {
  expirer_ = std::thread([this] { ExpireLoop(); });
}

KafkaIssuer::~KafkaIssuer() {
  {
    std::lock_guard<std::mutex> lock(waiting_->mu);
    waiting_->stopping = true;
  }
  waiting_->cv.notify_all();
  expirer_.join();
}

void KafkaIssuer::Issue(IssueCommand cmd, const CouponInfo& coupon,
                        absl::Time deadline, IssueDone done) {
  Queue(std::move(cmd), deadline, std::move(done));
}

void KafkaIssuer::AnswerKnown(IssueCommand cmd, const CouponInfo& coupon,
                              IssueResult proposed, absl::Time deadline,
                              IssueDone done) {
  answers_->Record(
      std::move(proposed),
      [this, cmd = std::move(cmd), deadline,
       done = std::move(done)](absl::StatusOr<IssueResult> stored) mutable {
        if (!stored.ok()) {
          // Not stored, so not an answer: the worker decides.
          VLOG(1) << "request " << cmd.request_id << ": " << stored.status()
                  << "; queued for the worker instead";
          return Queue(std::move(cmd), deadline, std::move(done));
        }
        if (!stored->BelongsTo(cmd.coupon_id, cmd.user_id)) {
          return done(RequestIdReused(cmd.request_id));
        }
        hub_->Remember(*stored);
        done(IssueReply{cmd.request_id, stored->outcome, stored->user_coupon_id});
      });
}

void KafkaIssuer::Queue(IssueCommand cmd, absl::Time deadline, IssueDone done) {
  IssueReply reply;
  reply.request_id = cmd.request_id;
  const absl::Time now = clock_();
  const UnixMicros now_us = absl::ToUnixMicros(now);

  if (!publisher_->Available()) {
    return done(absl::UnavailableError(
        "kafka: no broker is reachable; the request was not queued, retry "
        "with the same request_id"));
  }

  const absl::Time answer_by =
      deadline - std::min(kMaxAnswerMargin,
                          std::max(deadline - now, absl::ZeroDuration()) / 10);
  auto pending = std::make_shared<Pending>();
  pending->reply = std::move(reply);
  pending->coupon_id = cmd.coupon_id;
  pending->user_id = cmd.user_id;
  pending->done = std::move(done);

  IssueRequest event;
  event.request_id = cmd.request_id;
  event.coupon_id = cmd.coupon_id;
  event.user_id = std::move(cmd.user_id);
  event.requested_at = now_us;
  event.gateway_id = gateway_id_;
  publisher_->Publish(request_topic_, CouponKey(event.coupon_id),
                      EncodeIssueRequested(event),
                      {},
                      [waiting = waiting_, hub = hub_,
                       pending](absl::Status delivered, Placement at) {
                        {
                          std::lock_guard<std::mutex> lock(waiting->mu);
                          if (pending->answered)
                            return;  // answered UNAVAILABLE already
                          pending->answered = true;
                          if (pending->entry)
                            waiting->by_time.erase(*pending->entry);
                          pending->entry.reset();
                        }
                        if (!delivered.ok()) {
                          VLOG(1) << "request " << pending->reply.request_id
                                  << " not queued: " << delivered;
                          return pending->done(absl::Status(
                              delivered.code(),
                              absl::StrCat(delivered.message(),
                                           "; retry with the same request_id")));
                        }
                        pending->reply.outcome = Outcome::kAccepted;
                        pending->reply.position = hub->cache().Queued(
                            pending->reply.request_id, pending->coupon_id,
                            pending->user_id, at.partition, at.offset);
                        VLOG(1) << "request " << pending->reply.request_id
                                << " queued at partition " << at.partition
                                << " offset " << at.offset;
                        pending->done(std::move(pending->reply));
                      });

  std::lock_guard<std::mutex> lock(waiting_->mu);
  if (pending->answered) return;  // the report came already
  pending->entry = waiting_->by_time.emplace(answer_by, pending);
  if (*pending->entry == waiting_->by_time.begin()) waiting_->cv.notify_one();
}

void KafkaIssuer::ExpireLoop() {
  Waiting& w = *waiting_;
  std::unique_lock<std::mutex> lock(w.mu);
  while (!w.stopping) {
    if (w.by_time.empty()) {
      w.cv.wait(lock);
      continue;
    }
    auto first = w.by_time.begin();
    // Real time: the deadline is the caller's, on the wall clock.
    if (first->first > absl::Now()) {
      w.cv.wait_until(lock, absl::ToChronoTime(first->first));
      continue;
    }
    std::shared_ptr<Pending> pending = std::move(first->second);
    w.by_time.erase(first);
    pending->entry.reset();
    pending->answered = true;
    lock.unlock();
    VLOG(1) << "request " << pending->reply.request_id
            << " not acknowledged by the broker before the caller's deadline";
    pending->done(absl::UnavailableError(
        "kafka: the broker has not acknowledged the request in time; it may "
        "still be queued: retry with the same request_id"));
    lock.lock();
  }
}

}  // namespace coupon::gateway
