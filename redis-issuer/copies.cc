#include "redis-issuer/copies.h"

#include "absl/strings/str_cat.h"
#include "common/domain/status_macros.h"
#include "common/pg/issuance.h"
#include "redis-issuer/records.h"

namespace coupon::redis_issuer {

absl::StatusOr<int64_t> StoreCopy(pg::Connection& conn, const IssueResult& r) {
  int64_t user_coupon_id = 0;
  RETURN_IF_ERROR(pg::InTransaction(conn, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto ids,
                     pg::InsertCopies(conn, {{r.coupon_id, r.user_id, r.request_id}},
                                      r.decided_at, /*skip_written=*/true));
    if (ids.empty()) {  // written by an earlier try of this request
      ASSIGN_OR_RETURN(pg::Result existing,
                       conn.Exec("SELECT user_coupon_id FROM user_coupons"
                                 " WHERE request_id = $1",
                                 {r.request_id}));
      user_coupon_id = existing.GetInt64(0, 0);
      return absl::OkStatus();
    }
    user_coupon_id = ids.begin()->second;
    IssueResult issued = r;
    issued.outcome = Outcome::kIssued;
    issued.user_coupon_id = user_coupon_id;
    RETURN_IF_ERROR(pg::InsertResults(conn, {issued}));
    return conn
        .Exec("INSERT INTO coupon_outbox (coupon_id, user_coupon_id, request_id)"
              " VALUES ($1, $2, $3)",
              {absl::StrCat(r.coupon_id), absl::StrCat(user_coupon_id), r.request_id})
        .status();
  }));
  return user_coupon_id;
}

absl::Status SettleReservation(redis::Client& redis, const IssueResult& settled,
                               absl::Duration ttl) {
  // MULTI/EXEC on one connection would need a pinned connection; the two
  // commands as one script are one step for every client of Redis.
  static const redis::Script* settle = new redis::Script(R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
)lua");
  absl::StatusOr<redis::Reply> reply = redis.Eval(
      *settle, {RequestKey(settled.request_id), kReservedKey},
      {FormatRecord(settled), absl::StrCat(absl::ToInt64Seconds(ttl)),
       settled.request_id});
  if (!reply.ok()) return reply.status();
  if (reply->type == redis::Reply::Type::kError) {
    return absl::InternalError(absl::StrCat("redis: settle script: ", reply->str));
  }
  return absl::OkStatus();
}

}  // namespace coupon::redis_issuer
