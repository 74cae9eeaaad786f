#include "common/domain/domain.h"

namespace coupon {

absl::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kAccepted:
      return "ACCEPTED";
    case Outcome::kIssued:
      return "ISSUED";
    case Outcome::kSoldOut:
      return "SOLD_OUT";
    case Outcome::kAlreadyIssued:
      return "ALREADY_ISSUED";
    case Outcome::kNotStarted:
      return "NOT_STARTED";
    case Outcome::kExpired:
      return "EXPIRED";
    case Outcome::kRequestIdReused:
      return "REQUEST_ID_REUSED";
    case Outcome::kQueued:
      return "QUEUED";
  }
  return "UNKNOWN";
}

std::optional<Outcome> OutcomeFromName(absl::string_view name) {
  for (Outcome o : {Outcome::kAccepted, Outcome::kIssued, Outcome::kSoldOut,
                    Outcome::kAlreadyIssued, Outcome::kNotStarted,
                    Outcome::kExpired, Outcome::kRequestIdReused,
                    Outcome::kQueued}) {
    if (OutcomeName(o) == name) return o;
  }
  return std::nullopt;
}

std::optional<Outcome> OutsideWindow(const CouponInfo& coupon, UnixMicros at) {
  if (coupon.starts_at && at < *coupon.starts_at) return Outcome::kNotStarted;
  if (coupon.ends_at && at >= *coupon.ends_at) return Outcome::kExpired;
  return std::nullopt;
}

}  // namespace coupon
