#include "redis-issuer/redis_issuer.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/wire/event_codec.h"
#include "common/domain/status_macros.h"
#include "glog/logging.h"

namespace coupon::gateway {
namespace {

using redis_issuer::FormatRecord;
using redis_issuer::IssuedKey;
using redis_issuer::kReservedKey;
using redis_issuer::kResultChannel;
using redis_issuer::LimitKey;
using redis_issuer::ParseRecord;
using redis_issuer::QueueKey;
using redis_issuer::Record;
using redis_issuer::RequestKey;
using redis_issuer::TtlSeconds;
using redis_issuer::WithKeep;

// KEYS: 1 queue (sorted set of users by arrival), 2 issued marker,
//       3 limit, 4 request record, 5 the reserved copies.
// ARGV: 1 user id, 2 request id, 3 the coupon's total quantity, 4 now (µs),
//       5 coupon id, 6 record ttl (TtlSeconds).
// Returns {tag, record} or {tag, record, rank}: tag REPLAY (the request id
// was decided before) or DECIDED; record as in redis-issuer/records.h; rank,
// with DECIDED, the users ahead in the coupon's queue at the decision (the
// user's own rank when they hold a copy). A new copy is RESERVED: its
// record is kept, and it is listed in KEYS[5], until it is in PostgreSQL.
//
// One script, so the checks and the updates are one atomic step: done as
// separate commands, two requests can both see a free slot and over-issue.
// The arrival rank is the queue's size when the user joins, not a client
// clock, so clock skew between gateways cannot reorder the queue. Once the
// queue holds `limit` users nobody else is added, which keeps it bounded.
// The window was judged by the gateway's front end before.
constexpr char kDecideScript[] = R"lua(
local record = redis.call('GET', KEYS[4])
if record then return {'REPLAY', record} end
redis.call('SET', KEYS[3], ARGV[3], 'NX')
local limit = tonumber(redis.call('GET', KEYS[3]))
local queued = redis.call('ZCARD', KEYS[1])
local outcome
local remaining
local rank = queued
local marker = redis.call('GET', KEYS[2])
if marker == ARGV[2] then
  -- This request won the user's copy, and its record is gone (Redis
  -- restored an older state, or the record came from before ISSUED ones
  -- were kept for good): reserved again, so that the copy is found in
  -- PostgreSQL, or written, and the id answers ISSUED as it did.
  if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
    redis.call('ZADD', KEYS[1], queued, ARGV[1])
  end
  rank = redis.call('ZRANK', KEYS[1], ARGV[1])
  outcome = 'RESERVED'
  remaining = math.max(limit - rank - 1, 0)
elseif marker or redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  outcome = 'ALREADY_ISSUED'
  remaining = math.max(limit - queued, 0)
  rank = redis.call('ZRANK', KEYS[1], ARGV[1]) or queued
elseif queued >= limit then
  outcome = 'SOLD_OUT'
  remaining = 0
else
  redis.call('ZADD', KEYS[1], queued, ARGV[1])
  redis.call('SET', KEYS[2], ARGV[2])
  outcome = 'RESERVED'
  remaining = limit - queued - 1
end
record = outcome .. '|' .. remaining .. '|' .. ARGV[4] .. '|' .. ARGV[5] .. '|' .. ARGV[1]
if outcome == 'RESERVED' then
  redis.call('SET', KEYS[4], record)
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2])
else
  keep(KEYS[4], record, ARGV[6])
end
return {'DECIDED', record, rank}
)lua";

// An answer the front end inferred, recorded unless the request id has a
// record already (which then stands) or won the user's copy (its record
// lost: the decide script finds the copy); a SOLD_OUT for a user Redis
// knows as a holder is ALREADY_ISSUED.
// KEYS: 1 request record, 2 issued marker, 3 queue.
// ARGV: 1 the record to write, 2 its outcome, 3 user id, 4 the same record
//       with ALREADY_ISSUED, 5 ttl (TtlSeconds), 6 request id.
// Returns {REPLAY, record}, {WON, ARGV[1]} or {RECORDED, record}.
constexpr char kRecordKnownScript[] = R"lua(
local record = redis.call('GET', KEYS[1])
if record then return {'REPLAY', record} end
local marker = redis.call('GET', KEYS[2])
if marker == ARGV[6] then return {'WON', ARGV[1]} end
record = ARGV[1]
if ARGV[2] == 'SOLD_OUT' and (marker or redis.call('ZSCORE', KEYS[3], ARGV[3])) then
  record = ARGV[4]
end
keep(KEYS[1], record, ARGV[5])
return {'RECORDED', record}
)lua";

// Redis is down or did not answer: nothing was written by us, and a retry
// with the same request id is safe whether or not the script ran.
absl::Status RedisUnavailable(const absl::Status& s) {
  return absl::UnavailableError(absl::StrCat(
      s.message(), "; retry with the same request_id"));
}

// The {tag, record[, rank]} array both scripts answer with.
struct Tagged {
  std::string tag;
  Record record;
  std::optional<QueuePosition> position;  // from the rank
};
absl::StatusOr<Tagged> TaggedRecord(const absl::StatusOr<redis::Reply>& reply,
                                    const std::string& request_id) {
  if (!reply.ok()) return RedisUnavailable(reply.status());
  if (reply->type != redis::Reply::Type::kArray ||
      (reply->elements.size() != 2 && reply->elements.size() != 3)) {
    return absl::InternalError(absl::StrCat(
        "redis: unexpected answer from a script: ", reply->str));
  }
  absl::StatusOr<Record> record = ParseRecord(request_id, reply->elements[1].str);
  if (!record.ok()) return record.status();
  Tagged tagged{reply->elements[0].str, std::move(*record), std::nullopt};
  if (reply->elements.size() == 3) {
    const redis::Reply& rank = reply->elements[2];
    if (rank.type != redis::Reply::Type::kInteger || rank.integer < 0) {
      return absl::InternalError(absl::StrCat(
          "redis: unexpected rank from the decide script: ", rank.str));
    }
    tagged.position = QueuePosition{rank.integer, QueuePosition::Scope::kCoupon};
  }
  return tagged;
}

}  // namespace

RedisIssuer::RedisIssuer(redis::AsyncClient* async, redis::Client* redis,
                         redis_issuer::CopyWriter* copies, ResultHub* hub,
                         absl::Duration record_ttl, Clock clock)
    : async_(async),
      redis_(redis),
      copies_(copies),
      hub_(hub),
      record_ttl_(record_ttl),
      clock_(std::move(clock)),
      decide_(WithKeep(kDecideScript)),
      record_known_(WithKeep(kRecordKnownScript)) {}

void RedisIssuer::Issue(IssueCommand cmd, const CouponInfo& coupon,
                        absl::Time /*deadline: bounded by the Redis timeouts*/,
                        IssueDone done) {
  const UnixMicros now_us = absl::ToUnixMicros(clock_());
  std::vector<std::string> keys = {QueueKey(cmd.coupon_id),
                                   IssuedKey(cmd.coupon_id, cmd.user_id),
                                   LimitKey(cmd.coupon_id), RequestKey(cmd.request_id),
                                   kReservedKey};
  std::vector<std::string> args = {cmd.user_id, cmd.request_id,
                                   absl::StrCat(coupon.total_quantity), absl::StrCat(now_us),
                                   absl::StrCat(cmd.coupon_id),
                                   TtlSeconds(record_ttl_)};
  async_->Eval(decide_, keys, args,
               [this, cmd = std::move(cmd), done = std::move(done)](
                   absl::StatusOr<redis::Reply> reply) mutable {
                 Decided(std::move(cmd), std::move(reply), std::move(done));
               });
}

void RedisIssuer::Decided(IssueCommand cmd, absl::StatusOr<redis::Reply> reply,
                          IssueDone done) {
  auto tagged = TaggedRecord(reply, cmd.request_id);
  if (!tagged.ok()) return done(tagged.status());
  auto& [tag, record, position] = *tagged;
  IssueResult& result = record.result;
  if (tag == "REPLAY" && !result.BelongsTo(cmd.coupon_id, cmd.user_id)) {
    return done(RequestIdReused(cmd.request_id));
  }
  // A new copy, or one reserved before whose write failed: write it now,
  // with the others that wait (group commit), and answer once it is in
  // PostgreSQL. The writer publishes its result to the other gateways.
  // An ISSUED record from before records carried the copy's id: the write
  // is idempotent and finds it.
  if (record.reserved ||
      (result.outcome == Outcome::kIssued && result.user_coupon_id == 0)) {
    return copies_->Write(
        result, [this, request_id = cmd.request_id, position = position,
                 done = std::move(done)](absl::StatusOr<IssueResult> settled) {
          if (!settled.ok()) return done(settled.status());
          hub_->Publish(*settled);
          done(IssueReply{request_id, settled->outcome, settled->user_coupon_id, position});
        });
  }
  if (tag == "DECIDED") {
    hub_->Publish(result);
    // For the other gateways' watchers; a lost message costs them only a live
    // notification (request-id watches read Redis and PostgreSQL).
    async_->Command({"PUBLISH", kResultChannel, EncodeIssueResult(result)},
                    [](absl::StatusOr<redis::Reply> published) {
                      if (!published.ok()) {
                        LOG_EVERY_N(WARNING, 100) << published.status();
                      }
                    });
  }
  done(IssueReply{cmd.request_id, result.outcome, result.user_coupon_id, position});
}

void RedisIssuer::AnswerKnown(IssueCommand cmd, const CouponInfo& coupon,
                              IssueResult r, absl::Time deadline,
                              IssueDone done) {
  IssueResult held = r;
  held.outcome = Outcome::kAlreadyIssued;
  std::vector<std::string> keys = {RequestKey(cmd.request_id),
                                   IssuedKey(cmd.coupon_id, cmd.user_id),
                                   QueueKey(cmd.coupon_id)};
  std::vector<std::string> args = {FormatRecord(r), std::string(OutcomeName(r.outcome)),
                                   cmd.user_id, FormatRecord(held),
                                   TtlSeconds(record_ttl_),
                                   cmd.request_id};
  async_->Eval(
      record_known_, keys, args,
      [this, cmd = std::move(cmd), coupon, deadline, done = std::move(done)](
          absl::StatusOr<redis::Reply> reply) mutable {
        auto tagged = TaggedRecord(reply, cmd.request_id);
        if (!tagged.ok()) return done(tagged.status());
        auto& [tag, record, unused_position] = *tagged;
        if (!record.result.BelongsTo(cmd.coupon_id, cmd.user_id)) {
          return done(RequestIdReused(cmd.request_id));
        }
        if (tag == "REPLAY" || tag == "WON") {
          // Decided before, maybe on another gateway: the decide script
          // replays that result (and finishes its PostgreSQL write if it was
          // a copy, or finds the copy the request won).
          return Issue(std::move(cmd), coupon, deadline, std::move(done));
        }
        hub_->Remember(record.result);
        done(IssueReply{cmd.request_id, record.result.outcome, 0, std::nullopt});
      });
}

absl::StatusOr<std::vector<IssueResult>> RedisIssuer::FindRecords(
    const std::vector<std::string>& request_ids) {
  std::vector<IssueResult> out;
  if (request_ids.empty()) return out;
  std::vector<std::string> argv = {"MGET"};
  for (const auto& id : request_ids) argv.push_back(RequestKey(id));
  absl::StatusOr<redis::Reply> reply = redis_->Command(argv);
  if (!reply.ok()) return RedisUnavailable(reply.status());
  for (size_t i = 0; i < reply->elements.size() && i < request_ids.size(); ++i) {
    const redis::Reply& e = reply->elements[i];
    if (e.type != redis::Reply::Type::kString) continue;
    absl::StatusOr<Record> r = ParseRecord(request_ids[i], e.str);
    // A reserved copy has no result yet: it is being written.
    if (r.ok() && !r->reserved) out.push_back(std::move(r->result));
  }
  return out;
}

absl::StatusOr<std::vector<IssueResult>> RedisAwareStore::FindResults(
    const std::vector<std::string>& request_ids) {
  ASSIGN_OR_RETURN(std::vector<IssueResult> found, base_->FindResults(request_ids));
  absl::flat_hash_set<std::string> have;
  for (const auto& r : found) have.insert(r.request_id);
  std::vector<std::string> missing;
  for (const auto& id : request_ids) {
    if (!have.contains(id)) missing.push_back(id);
  }
  ASSIGN_OR_RETURN(std::vector<IssueResult> records, issuer_->FindRecords(missing));
  for (auto& r : records) found.push_back(std::move(r));
  return found;
}

}  // namespace coupon::gateway
