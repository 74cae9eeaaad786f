#pragma once

// The Redis keys of the design document's existing system (section 2.2.1),
// plus one record per request id for idempotency and result lookups, and the
// set of copies reserved in Redis but not yet written to PostgreSQL.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/domain/domain.h"

namespace coupon::redis_issuer {

std::string QueueKey(int64_t coupon_id);                            // coupon:queue:{id}
std::string IssuedKey(int64_t coupon_id, const std::string& user);  // coupon:issued:{id}:{user}
std::string LimitKey(int64_t coupon_id);                            // coupon:limit:{id}
std::string RequestKey(const std::string& request_id);              // coupon:request:{request_id}
// Request ids whose copy the decide script reserved (a sorted set, scored by
// the reservation's time in µs) until it is in PostgreSQL. A gateway that
// wrote the copy clears its entry; the outbox scheduler writes the copies of
// entries that stay (a gateway that died or met a PostgreSQL error).
inline constexpr char kReservedKey[] = "coupon:reserved";
// Every gateway publishes the results it decides here and subscribes to it,
// so live watches by user or coupon see the decisions of all gateways (the
// Redis mode's counterpart of the topic coupon-issue-result).
inline constexpr char kResultChannel[] = "coupon:results";

// The value under RequestKey: OUTCOME[:user_coupon_id]|remaining|decided_at_us|
// coupon_id|user_id, where OUTCOME is an outcome's name or RESERVED (a copy
// counted in Redis, not yet in PostgreSQL: no result yet). The user id comes
// last, so it may hold '|'. Anything else is INTERNAL: only this service
// writes these keys.
struct Record {
  IssueResult result;  // for RESERVED, outcome kIssued with no user_coupon_id
  bool reserved = false;
};
std::string FormatRecord(const IssueResult& result, bool reserved = false);
// `ttl` (--redis_record_ttl) as the scripts take it: seconds for EX, at
// least 1, or "0" for good (absl::InfiniteDuration(), the flag's `inf`).
std::string TtlSeconds(absl::Duration ttl);
// How long a settled record is kept, as TtlSeconds: an ISSUED record for
// good, as long as its copy and the user's marker (which never expire), so
// that the id is never decided again (resent, it would read ALREADY_ISSUED;
// reused, it would reserve a second copy). The rest for `ttl`.
std::string RecordTtlSeconds(const IssueResult& settled, absl::Duration ttl);
// `script` after the Lua function keep(key, record, ttl), which SETs a
// record for TtlSeconds' ttl ('0': without expiry).
std::string WithKeep(absl::string_view script);
absl::StatusOr<Record> ParseRecord(const std::string& request_id,
                                   absl::string_view record);

}  // namespace coupon::redis_issuer
