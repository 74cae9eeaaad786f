#include "gateway/issue/issue_service.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/domain/validation.h"

namespace coupon::gateway {

std::string IssueService::NewRequestId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

void IssueService::Issue(IssueCommand cmd, absl::Time deadline, IssueDone done) {
  absl::Status valid = ValidateCouponId("coupon_id", cmd.coupon_id);
  if (valid.ok()) valid = ValidateUserId("user_id", cmd.user_id);
  if (valid.ok() && !cmd.request_id.empty()) {
    valid = ValidateRequestId("request_id", cmd.request_id);
  }
  if (!valid.ok()) return done(valid);
  // Before anything that costs: a bot's excess calls end here. Every call
  // counts, a resent request id too (a bot could resend one forever).
  if (limiter_) {
    if (absl::Status admitted = limiter_->Admit(cmd.user_id); !admitted.ok()) {
      return done(admitted);
    }
  }

  absl::StatusOr<CouponInfo> coupon = coupons_->Find(cmd.coupon_id);
  if (!coupon.ok()) return done(coupon.status());

  if (cmd.request_id.empty()) cmd.request_id = NewRequestId();

  // What the store holds for this id comes first: a resent request gets its
  // own result even after the coupon sold out or its window closed.
  if (known_) {
    Known known = known_->LookUp(cmd.request_id, cmd.coupon_id, cmd.user_id);
    switch (known.kind) {
      case Known::Kind::kReused:
        return done(RequestIdReused(cmd.request_id));
      case Known::Kind::kStored:
        return done(IssueReply{cmd.request_id, known.result.outcome,
                               known.result.user_coupon_id});
      case Known::Kind::kQueued:
        return done(IssueReply{cmd.request_id, Outcome::kAccepted, 0,
                               known.result.position});
      case Known::Kind::kNothing:
      case Known::Kind::kInferred:
        break;
    }
  }

  // In the worker's order: the window, then the user's copy, then the stock.
  const UnixMicros now = absl::ToUnixMicros(clock_());
  IssueResult proposed;
  if (std::optional<Outcome> outside = OutsideWindow(*coupon, now)) {
    proposed = IssueResult{cmd.request_id, cmd.coupon_id, cmd.user_id, *outside, 0, -1, now};
  } else if (Known inferred = known_ ? known_->Infer(cmd.request_id, cmd.coupon_id,
                                                     cmd.user_id, now)
                                     : Known{};
             inferred.kind == Known::Kind::kInferred) {
    proposed = std::move(inferred.result);
  } else {
    return issuer_->Issue(std::move(cmd), *coupon, deadline, std::move(done));
  }
  if (proposed.remaining_quantity < 0) {
    // Read when the coupon was loaded: never below the stock really left.
    const int64_t seen = known_ ? known_->LastRemaining(cmd.coupon_id) : -1;
    proposed.remaining_quantity = seen >= 0 ? seen : coupon->remaining_quantity;
  }
  issuer_->AnswerKnown(std::move(cmd), *coupon, std::move(proposed), deadline,
                       std::move(done));
}

}  // namespace coupon::gateway
