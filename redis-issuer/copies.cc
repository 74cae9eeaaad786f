#include "redis-issuer/copies.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/domain/status_macros.h"
#include "common/domain/validation.h"
#include "common/pg/issuance.h"
#include "redis-issuer/records.h"

namespace coupon::redis_issuer {

absl::StatusOr<absl::flat_hash_map<std::string, IssueResult>> FindCopies(
    pg::Connection& conn, const std::vector<std::string>& request_ids) {
  absl::flat_hash_map<std::string, IssueResult> held;
  if (request_ids.empty()) return held;
  ASSIGN_OR_RETURN(
      pg::Result rows,
      conn.Exec("SELECT u.request_id, u.user_coupon_id, u.coupon_id, u.user_id,"
                " coalesce(r.remaining_quantity, 0),"
                " (extract(epoch from coalesce(r.decided_at, u.issued_at)) * 1000000)::bigint"
                " FROM user_coupons u LEFT JOIN issue_results r"
                " ON r.request_id = u.request_id"
                " WHERE u.request_id = ANY($1::text[])",
                {pg::TextArray(request_ids)}));
  for (int i = 0; i < rows.rows(); ++i) {
    IssueResult r;
    r.request_id = std::string(rows.Get(i, 0));
    r.outcome = Outcome::kIssued;
    r.user_coupon_id = rows.GetInt64(i, 1);
    r.coupon_id = rows.GetInt64(i, 2);
    r.user_id = std::string(rows.Get(i, 3));
    r.remaining_quantity = rows.GetInt64(i, 4);
    r.decided_at = rows.GetInt64(i, 5);
    held.emplace(r.request_id, std::move(r));
  }
  return held;
}

absl::StatusOr<IssueResult> EndingOf(const IssueResult& reserved, const IssueResult* held) {
  if (held == nullptr) {
    IssueResult ended = reserved;
    ended.outcome = Outcome::kAlreadyIssued;
    ended.user_coupon_id = 0;
    return ended;
  }
  if (!held->BelongsTo(reserved.coupon_id, reserved.user_id)) {
    return RequestIdReused(reserved.request_id);
  }
  return *held;
}

absl::StatusOr<IssueResult> StoreCopy(pg::Connection& conn, const IssueResult& r) {
  std::optional<IssueResult> issued;
  absl::Status written = pg::InTransaction(conn, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto ids,
                     pg::InsertCopies(conn, {{r.coupon_id, r.user_id, r.request_id}},
                                      r.decided_at, /*skip_written=*/true));
    if (ids.empty()) return absl::OkStatus();  // the request id holds a copy
    IssueResult copy = r;
    copy.outcome = Outcome::kIssued;
    copy.user_coupon_id = ids.begin()->second;
    RETURN_IF_ERROR(pg::InsertResults(conn, {copy}));
    RETURN_IF_ERROR(
        conn.Exec("INSERT INTO coupon_outbox (coupon_id, user_coupon_id, request_id)"
                  " VALUES ($1, $2, $3)",
                  {absl::StrCat(r.coupon_id), absl::StrCat(copy.user_coupon_id),
                   r.request_id})
            .status());
    issued = std::move(copy);
    return absl::OkStatus();
  });
  if (written.ok() && issued) return *issued;
  // Skipped, or refused as the user's second copy: which may be this very
  // request's copy, committed by a gateway while this insert waited on it
  // (the unique key that refuses it is then (coupon, user), not the request
  // id). What the id holds, read after, tells them apart.
  if (!written.ok() && !absl::IsAlreadyExists(written)) return written;
  ASSIGN_OR_RETURN(auto held, FindCopies(conn, {r.request_id}));
  auto it = held.find(r.request_id);
  return EndingOf(r, it == held.end() ? nullptr : &it->second);
}

absl::Status SettleReservation(redis::Client& redis, const IssueResult& settled,
                               absl::Duration ttl) {
  // MULTI/EXEC on one connection would need a pinned connection; the two
  // commands as one script are one step for every client of Redis.
  static const redis::Script* settle = new redis::Script(WithKeep(R"lua(
keep(KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
)lua"));
  absl::StatusOr<redis::Reply> reply = redis.Eval(
      *settle, {RequestKey(settled.request_id), kReservedKey},
      {FormatRecord(settled), RecordTtlSeconds(settled, ttl), settled.request_id});
  if (!reply.ok()) return reply.status();
  if (reply->type == redis::Reply::Type::kError) {
    return absl::InternalError(absl::StrCat("redis: settle script: ", reply->str));
  }
  return absl::OkStatus();
}

absl::Status ReleaseReservation(redis::Client& redis, const IssueResult& reserved) {
  // KEYS: 1 request record, 2 kReservedKey, 3 the user's issued marker,
  //       4 the coupon's queue. ARGV: 1 the reserved record, 2 request id,
  //       3 user id.
  static const redis::Script* release = new redis::Script(R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[2] then
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[4], ARGV[3])
end
return 1
)lua");
  absl::StatusOr<redis::Reply> reply = redis.Eval(
      *release,
      {RequestKey(reserved.request_id), kReservedKey,
       IssuedKey(reserved.coupon_id, reserved.user_id), QueueKey(reserved.coupon_id)},
      {FormatRecord(reserved, /*reserved=*/true), reserved.request_id, reserved.user_id});
  if (!reply.ok()) return reply.status();
  if (reply->type == redis::Reply::Type::kError) {
    return absl::InternalError(absl::StrCat("redis: release script: ", reply->str));
  }
  return absl::OkStatus();
}

}  // namespace coupon::redis_issuer
