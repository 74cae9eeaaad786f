#pragma once

// Settling a copy the decide script reserved in Redis: its PostgreSQL write
// (the copy, its result and its outbox row, in one transaction), then its
// record in Redis. The gateway that decided does it at once; the outbox
// scheduler does it for a reservation nobody finished, so a copy Redis counts
// always ends up held by the user it was reserved for.

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/domain/domain.h"
#include "common/pg/pg.h"
#include "common/redis/redis.h"

namespace coupon::redis_issuer {

// Writes the copy reserved for `reserved` (its request, coupon, user, stock
// left and time) to PostgreSQL: user_coupons, its ISSUED issue_results row
// and a PENDING coupon_outbox row, in one transaction. Idempotent per request
// id: a second call returns the first copy's user_coupon_id. ALREADY_EXISTS
// when PostgreSQL holds a copy of the coupon for the user from another
// request (Redis lost its marker, e.g. restarted without persistence).
absl::StatusOr<int64_t> StoreCopy(pg::Connection& conn, const IssueResult& reserved);

// What a reservation became, written to its record (kept `ttl`) and taken
// out of kReservedKey, in one step: ISSUED with the copy's user_coupon_id,
// or ALREADY_ISSUED when StoreCopy found the user's other copy.
absl::Status SettleReservation(redis::Client& redis, const IssueResult& settled,
                               absl::Duration ttl);

}  // namespace coupon::redis_issuer
