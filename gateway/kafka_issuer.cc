#include "gateway/kafka_issuer.h"

#include "absl/strings/str_cat.h"
#include "common/events/event_codec.h"
#include "glog/logging.h"

namespace coupon::gateway {

KafkaIssuer::KafkaIssuer(EventPublisher* publisher, std::string request_topic,
                         std::string gateway_id, Clock clock)
    : publisher_(publisher),
      request_topic_(std::move(request_topic)),
      gateway_id_(std::move(gateway_id)),
      clock_(std::move(clock)) {}

void KafkaIssuer::Issue(IssueCommand cmd, const CouponInfo& coupon,
                        absl::Time deadline, IssueDone done) {
  IssueReply reply;
  reply.request_id = cmd.request_id;

  const UnixMicros now_us = absl::ToUnixMicros(clock_());
  if (Outcome window = WindowOutcome(coupon, now_us); window != Outcome::kIssued) {
    reply.outcome = window;
    return done(reply);
  }

  if (!publisher_->Available()) {
    return done(absl::UnavailableError(
        "kafka: no broker is reachable; the request was not queued, retry "
        "with the same request_id"));
  }

  IssueRequest event;
  event.request_id = cmd.request_id;
  event.coupon_id = cmd.coupon_id;
  event.user_id = std::move(cmd.user_id);
  event.requested_at = now_us;
  event.gateway_id = gateway_id_;
  publisher_->Publish(
      request_topic_, CouponKey(event.coupon_id), EncodeIssueRequested(event),
      deadline,
      [reply = std::move(reply), done = std::move(done)](
          absl::Status delivered) mutable {
        if (!delivered.ok()) {
          VLOG(1) << "request " << reply.request_id
                  << " not queued: " << delivered;
          return done(delivered);
        }
        reply.outcome = Outcome::kAccepted;
        done(std::move(reply));
      });
}

}  // namespace coupon::gateway
