#include "gateway/issue_service.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/events/event_codec.h"
#include "common/validation.h"
#include "glog/logging.h"

namespace coupon::gateway {

IssueService::IssueService(CouponCache* coupons, ResultHub* hub,
                           EventPublisher* publisher, std::string request_topic,
                           std::string gateway_id, Clock clock)
    : coupons_(coupons),
      hub_(hub),
      publisher_(publisher),
      request_topic_(std::move(request_topic)),
      gateway_id_(std::move(gateway_id)),
      clock_(std::move(clock)) {}

std::string IssueService::NewRequestId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

void IssueService::Issue(IssueCommand cmd, absl::Time deadline, Done done) {
  absl::Status valid = ValidateCouponId("coupon_id", cmd.coupon_id);
  if (valid.ok()) valid = ValidateUserId("user_id", cmd.user_id);
  if (valid.ok() && !cmd.request_id.empty()) {
    valid = ValidateRequestId("request_id", cmd.request_id);
  }
  if (!valid.ok()) return done(valid);

  absl::StatusOr<CouponInfo> coupon = coupons_->Find(cmd.coupon_id);
  if (!coupon.ok()) return done(coupon.status());

  if (cmd.request_id.empty()) cmd.request_id = NewRequestId();
  IssueReply reply;
  reply.request_id = cmd.request_id;

  bool conflict = false;
  std::optional<KnownAnswer> known =
      hub_->Precheck(cmd.coupon_id, cmd.user_id, cmd.request_id, &conflict);
  if (conflict) {
    return done(absl::AlreadyExistsError(absl::StrCat(
        "request_id: \"", cmd.request_id,
        "\" was already used for another coupon or user; use a new one")));
  }
  if (known) {
    reply.outcome = known->outcome;
    reply.user_coupon_id = known->user_coupon_id;
    return done(reply);
  }

  const absl::Time now = clock_();
  const UnixMicros now_us = absl::ToUnixMicros(now);
  if (Outcome window = WindowOutcome(*coupon, now_us);
      window != Outcome::kIssued) {
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
