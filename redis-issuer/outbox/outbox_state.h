#pragma once

// What becomes of one coupon_outbox row after the scheduler tried to apply
// it. Pure: no clock, no database, so every path is unit-tested.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace coupon::outbox {

// coupon_outbox.state.
enum class OutboxState { kPending, kDone, kFailed };

// "PENDING", "DONE", "FAILED": the values the table's CHECK allows.
absl::string_view OutboxStateName(OutboxState state);

struct OutboxTransition {
  OutboxState state = OutboxState::kPending;
  // Attempts made, this one included.
  int attempts = 0;
  // When a PENDING row is tried again; unused for DONE and FAILED.
  absl::Time next_attempt_at;
  // The failure, for coupon_outbox.last_error; empty on success (the row
  // keeps the error of its last failed attempt, if any).
  std::string last_error;
};

// The row had made `attempts_before` attempts and this one ended with
// `outcome` (OK: the stock was decremented). `max_attempts` counts every
// attempt, the first one included: the seed's "failed events are retried
// every minute, at most 3 times" is the first attempt plus 3 retries, so the
// scheduler's default is 4 (OutboxConfig::max_attempts).
//   success                              -> DONE,    attempts_before + 1
//   failure, attempts_before + 1 < max   -> PENDING, attempts_before + 1,
//                                           next_attempt_at = now +
//                                           retry_interval
//   failure otherwise                    -> FAILED,  attempts_before + 1
// (which is max_attempts, unless the limit was lowered while the row waited:
// the count stays true rather than being clipped to the new limit).
OutboxTransition NextOutboxState(int attempts_before,
                                 const absl::Status& outcome, int max_attempts,
                                 absl::Time now, absl::Duration retry_interval);

}  // namespace coupon::outbox
