#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/pg/pg.h"
#include "common/redis/redis.h"
#include "gateway/gateway_store.h"
#include "gateway/issuer.h"
#include "gateway/result_hub.h"

namespace coupon::gateway {

// The Redis keys of the design document's existing system (section 2.2.1),
// plus one record per request id for idempotency and result lookups.
std::string QueueKey(int64_t coupon_id);                             // coupon:queue:{id}
std::string IssuedKey(int64_t coupon_id, const std::string& user);   // coupon:issued:{id}:{user}
std::string LimitKey(int64_t coupon_id);                             // coupon:limit:{id}
std::string RequestKey(const std::string& request_id);               // coupon:request:{request_id}
// The value under RequestKey, written by the decide script:
// OUTCOME|remaining|decided_at_us|coupon_id|user_id. Parsing anything else
// is INTERNAL: only this gateway writes these keys.
std::string Record(const IssueResult& result);
absl::StatusOr<IssueResult> ParseRecord(const std::string& request_id,
                                        absl::string_view record);
// Every gateway publishes the results it decides here and subscribes to it,
// so live watches by user or coupon see the decisions of all gateways (the
// Redis mode's counterpart of the topic coupon-issue-result).
inline constexpr char kResultChannel[] = "coupon:results";

/// Decides on the spot in Redis with one Lua script (rank, duplicate and
/// limit checks and the updates in one atomic step), then writes an issued
/// copy to PostgreSQL (user_coupons, issue_results and a PENDING outbox row
/// in one transaction) and answers the final outcome. The outbox scheduler
/// decrements the stock later. Thread-safe; blocks the calling thread for the
/// Redis and PostgreSQL round trips. Its collaborators must outlive it.
class RedisIssuer final : public Issuer {
 public:
  using Clock = std::function<absl::Time()>;

  RedisIssuer(redis::Client* redis, pg::Pool* pool, ResultHub* hub,
              absl::Duration record_ttl, Clock clock = absl::Now);

  void Issue(IssueCommand command, const CouponInfo& coupon,
             absl::Time deadline, IssueDone done) override;
  // Records the inferred answer as the request's result in Redis (SET NX),
  // unless the request id already has one there, which then stands. Gateways
  // learn each other's decisions over pub/sub, late or (while reconnecting)
  // never, so without the record one id could get two answers on two
  // gateways.
  void AnswerKnown(IssueCommand command, const CouponInfo& coupon,
                   IssueResult proposed, absl::Time deadline,
                   IssueDone done) override;

  // The results Redis still holds (for `record_ttl`) for these request ids.
  absl::StatusOr<std::vector<IssueResult>> FindRecords(
      const std::vector<std::string>& request_ids);

 private:
  // Writes the copy; returns its user_coupon_id. ALREADY_EXISTS when
  // PostgreSQL already holds a copy of this coupon for the user (Redis lost
  // its marker, e.g. restarted without persistence).
  absl::StatusOr<int64_t> PersistIssued(const IssueResult& result,
                                        absl::Time deadline);

  redis::Client* redis_;
  pg::Pool* pool_;
  ResultHub* hub_;
  const absl::Duration record_ttl_;
  const Clock clock_;
  const redis::Script decide_;
};

/// GatewayStore that also finds the results only Redis holds (SOLD_OUT,
/// ALREADY_ISSUED: Redis mode stores only issued copies in PostgreSQL).
/// Thread-safe; does not own its collaborators.
class RedisAwareStore final : public GatewayStore {
 public:
  RedisAwareStore(GatewayStore* base, RedisIssuer* issuer)
      : base_(base), issuer_(issuer) {}

  absl::StatusOr<CouponInfo> CreateCoupon(const NewCoupon& c) override {
    return base_->CreateCoupon(c);
  }
  absl::StatusOr<CouponInfo> GetCoupon(int64_t id) override {
    return base_->GetCoupon(id);
  }
  absl::StatusOr<std::vector<UserCouponRow>> ListUserCoupons(
      const std::string& user, int64_t after, int limit) override {
    return base_->ListUserCoupons(user, after, limit);
  }
  absl::StatusOr<std::vector<IssueResult>> FindResults(
      const std::vector<std::string>& request_ids) override;

 private:
  GatewayStore* base_;
  RedisIssuer* issuer_;
};

}  // namespace coupon::gateway
