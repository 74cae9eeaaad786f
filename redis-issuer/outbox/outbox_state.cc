#include "redis-issuer/outbox/outbox_state.h"

namespace coupon::outbox {

absl::string_view OutboxStateName(OutboxState state) {
  switch (state) {
    case OutboxState::kPending:
      return "PENDING";
    case OutboxState::kDone:
      return "DONE";
    case OutboxState::kFailed:
      return "FAILED";
  }
  return "PENDING";
}

OutboxTransition NextOutboxState(int attempts_before,
                                 const absl::Status& outcome, int max_attempts,
                                 absl::Time now,
                                 absl::Duration retry_interval) {
  OutboxTransition t;
  t.attempts = attempts_before + 1;
  if (outcome.ok()) {
    t.state = OutboxState::kDone;
    return t;
  }
  t.last_error = outcome.ToString();
  if (t.attempts < max_attempts) {
    t.state = OutboxState::kPending;
    t.next_attempt_at = now + retry_interval;
  } else {
    t.state = OutboxState::kFailed;
  }
  return t;
}

}  // namespace coupon::outbox
