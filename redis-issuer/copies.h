#pragma once

// Settling a copy the decide script reserved in Redis: its PostgreSQL write
// (the copy, its result and its outbox row, in one transaction), then its
// record in Redis. The gateway that decided does it at once; the outbox
// scheduler does it for a reservation nobody finished, so a copy Redis counts
// always ends up held by the user it was reserved for, or released.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/domain/domain.h"
#include "common/pg/pg.h"
#include "common/redis/redis.h"

namespace coupon::redis_issuer {

// The ISSUED results PostgreSQL holds for these request ids (a copy in
// user_coupons and its issue_results row), by request id.
absl::StatusOr<absl::flat_hash_map<std::string, IssueResult>> FindCopies(
    pg::Connection& conn, const std::vector<std::string>& request_ids);

// How a reservation ends that PostgreSQL did not take as a new copy, from
// what PostgreSQL holds under its request id (`held`, null when nothing):
// - the id's copy is this reservation's (an earlier try, or another writer,
//   wrote it): that stored result, ISSUED;
// - the id's copy is another coupon's or user's (the id's record in Redis
//   expired or was lost, and the id was reused): RequestIdReused
//   (ALREADY_EXISTS). The reservation must be released: nobody holds it;
// - nothing under the id: the user holds the coupon from another request
//   (Redis lost its marker): ALREADY_ISSUED.
absl::StatusOr<IssueResult> EndingOf(const IssueResult& reserved, const IssueResult* held);

// Writes the copy reserved for `reserved` (its request, coupon, user, stock
// left and time) to PostgreSQL: user_coupons, its ISSUED issue_results row
// and a PENDING coupon_outbox row, in one transaction. Idempotent per request
// id. Returns the reservation's ending (EndingOf): ISSUED with the copy's
// result, ALREADY_ISSUED, or ALREADY_EXISTS for an id another holds.
absl::StatusOr<IssueResult> StoreCopy(pg::Connection& conn, const IssueResult& reserved);

// What a reservation became, written to its record and taken out of
// kReservedKey, in one step (RecordTtlSeconds: ISSUED for good).
absl::Status SettleReservation(redis::Client& redis, const IssueResult& settled,
                               absl::Duration ttl);

// Undoes a reservation nobody holds (its request id is another's in
// PostgreSQL): its record is deleted and it leaves kReservedKey, and, when
// the user's marker is this request's, the marker and the user's place in
// the coupon's queue go too, so the copy goes back to the stock. Only while
// the record still holds `reserved` reserved, in one step.
absl::Status ReleaseReservation(redis::Client& redis, const IssueResult& reserved);

}  // namespace coupon::redis_issuer
