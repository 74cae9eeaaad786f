#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/pg/pg.h"
#include "common/redis/redis.h"
#include "redis-issuer/copy_writer.h"
#include "redis-issuer/records.h"
#include "gateway/store/gateway_store.h"
#include "gateway/issue/issuer.h"
#include "gateway/results/result_hub.h"

namespace coupon::gateway {

/// Decides on the spot in Redis with one Lua script (rank, duplicate and
/// limit checks and the updates in one atomic step, keys in
/// redis-issuer/records.h). A copy is first RESERVED there; the gateway then
/// writes it to PostgreSQL (user_coupons, issue_results and a PENDING outbox
/// row in one transaction), settles the reservation as ISSUED, and answers.
/// When that write fails the caller hears UNAVAILABLE ("retry with the same
/// request_id", which finishes it), and if nobody retries, the outbox
/// scheduler writes the copy: a copy Redis counts always ends up held.
/// The outbox scheduler also decrements the stock later. Thread-safe; never
/// blocks the calling thread (a gRPC callback thread): the decision goes to
/// Redis pipelined with the others meanwhile (redis::AsyncClient), and the
/// answer comes from that client's thread, or from the copy writer's once
/// the copy is in PostgreSQL. Its collaborators must outlive it.
class RedisIssuer final : public Issuer {
 public:
  using Clock = std::function<absl::Time()>;

  // `async` decides and records; `redis` serves FindRecords' reads.
  RedisIssuer(redis::AsyncClient* async, redis::Client* redis,
              redis_issuer::CopyWriter* copies, ResultHub* hub,
              absl::Duration record_ttl, Clock clock = absl::Now);

  void Issue(IssueCommand command, const CouponInfo& coupon,
             absl::Time deadline, IssueDone done) override;
  // Records the inferred answer as the request's result in Redis, unless
  // the request id already has one there, which then stands; a SOLD_OUT for
  // a user Redis knows as a holder is recorded ALREADY_ISSUED. Gateways learn
  // each other's decisions over pub/sub, late or (while reconnecting) never,
  // so without the record one id could get two answers on two gateways.
  void AnswerKnown(IssueCommand command, const CouponInfo& coupon,
                   IssueResult proposed, absl::Time deadline,
                   IssueDone done) override;

  // The results Redis still holds (for `record_ttl`) for these request ids.
  absl::StatusOr<std::vector<IssueResult>> FindRecords(
      const std::vector<std::string>& request_ids);

 private:
  // The rest of Issue, on the Redis client's thread, with the script's reply.
  void Decided(IssueCommand cmd, absl::StatusOr<redis::Reply> reply,
               IssueDone done);

  redis::AsyncClient* async_;
  redis::Client* redis_;
  redis_issuer::CopyWriter* copies_;
  ResultHub* hub_;
  const absl::Duration record_ttl_;
  const Clock clock_;
  const redis::Script decide_;
  const redis::Script record_known_;
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
