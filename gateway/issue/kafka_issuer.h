#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/domain/event_publisher.h"
#include "gateway/issue/answer_store.h"
#include "gateway/issue/issuer.h"
#include "gateway/results/result_hub.h"

namespace coupon::gateway {

/// Produces an IssueRequested event keyed by coupon id and answers ACCEPTED
/// once the broker acknowledged it; the gateway then remembers the request
/// as queued (`hub`), so a resend is not queued twice. When the broker has
/// not acknowledged the event shortly before the caller's deadline (a broker
/// that died a moment ago, or hangs), it answers UNAVAILABLE then, so the
/// caller hears "retry with the same request_id" instead of running into
/// DEADLINE_EXCEEDED; the event may still be delivered and decided later, as
/// UNAVAILABLE allows.
///
/// What the front end inferred it stores through `answers` first and
/// answers what the request id then holds; when that cannot be stored (the
/// database is down) the request is queued for the worker instead.
///
/// Thread-safe. Owns one thread that answers the calls whose time is up; it is
/// joined by the destructor, after which only the publisher's delivery reports
/// answer. The publisher, hub and answer store must outlive it; the
/// store's last callbacks may queue requests, so it is destroyed first.
class KafkaIssuer final : public Issuer {
 public:
  using Clock = std::function<absl::Time()>;

  KafkaIssuer(EventPublisher* publisher, AnswerStore* answers,
              ResultHub* hub, std::string request_topic,
              std::string gateway_id, Clock clock = absl::Now);
  ~KafkaIssuer() override;

  void Issue(IssueCommand command, const CouponInfo& coupon,
             absl::Time deadline, IssueDone done) override;
  void AnswerKnown(IssueCommand command, const CouponInfo& coupon,
                   IssueResult proposed, absl::Time deadline,
                   IssueDone done) override;

  // How long before the caller's deadline an unacknowledged call is answered
  // UNAVAILABLE: a tenth of the time it had, at most this much. Leaves room
  // for the answer to reach the caller.
  static constexpr absl::Duration kMaxAnswerMargin = absl::Milliseconds(250);

 private:
  struct Pending;
  // Calls waiting for their delivery report, shared with the report callbacks
  // (which may run after this object is gone).
  struct Waiting {
    std::mutex mu;
    std::condition_variable cv;
    std::multimap<absl::Time, std::shared_ptr<Pending>> by_time;  // answer-by
    bool stopping = false;
  };

  void Queue(IssueCommand command, absl::Time deadline, IssueDone done);
  void ExpireLoop();

  EventPublisher* publisher_;
  AnswerStore* answers_;
  ResultHub* hub_;
  const std::string request_topic_;
  const std::string gateway_id_;
  const Clock clock_;
  const std::shared_ptr<Waiting> waiting_;
  std::thread expirer_;
};

}  // namespace coupon::gateway
