#include "gateway/issue_service.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/validation.h"

namespace coupon::gateway {

absl::Status RequestIdReused(const std::string& request_id) {
  return absl::AlreadyExistsError(absl::StrCat(
      "request_id: \"", request_id,
      "\" was already used for another coupon or user; use a new one"));
}

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

  // Before the window check, so a replayed request gets its own result even
  // after the coupon sold out or its window closed. Stock only goes down, so
  // what the hub knows stays true.
  if (known_) {
    bool conflict = false;
    std::optional<KnownAnswer> answer =
        known_->Precheck(cmd.coupon_id, cmd.user_id, cmd.request_id, &conflict);
    if (conflict) return done(RequestIdReused(cmd.request_id));
    if (answer) {
      IssueReply inferred{cmd.request_id, answer->outcome, answer->user_coupon_id};
      return issuer_->AnswerKnown(std::move(cmd), *coupon, std::move(inferred),
                                  deadline, std::move(done));
    }
  }
  issuer_->Issue(std::move(cmd), *coupon, deadline, std::move(done));
}

}  // namespace coupon::gateway
