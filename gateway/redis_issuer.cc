#include "gateway/redis_issuer.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/events/event_codec.h"
#include "common/status_macros.h"
#include "glog/logging.h"

namespace coupon::gateway {
namespace {

// KEYS: 1 queue (sorted set of users by arrival), 2 issued marker,
//       3 limit, 4 request record.
// ARGV: 1 user id, 2 request id, 3 the coupon's total quantity, 4 "OK" or
//       the window outcome, 5 now (µs), 6 coupon id, 7 record ttl (s).
// Returns {tag, record}: tag REPLAY (the request id was decided before),
// DECIDED, or NOT_STARTED / EXPIRED (nothing stored).
// record = OUTCOME|remaining|decided_at_us|coupon_id|user_id.
//
// One script, so the checks and the updates are one atomic step: done as
// separate commands, two requests can both see a free slot and over-issue.
// The arrival rank is the queue's size when the user joins, not a client
// clock, so clock skew between gateways cannot reorder the queue. Once the
// queue holds `limit` users nobody else is added, which keeps it bounded.
constexpr char kDecideScript[] = R"lua(
local record = redis.call('GET', KEYS[4])
if record then return {'REPLAY', record} end
if ARGV[4] ~= 'OK' then return {ARGV[4], ''} end
redis.call('SET', KEYS[3], ARGV[3], 'NX')
local limit = tonumber(redis.call('GET', KEYS[3]))
local queued = redis.call('ZCARD', KEYS[1])
local outcome
local remaining
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  outcome = 'ALREADY_ISSUED'
  remaining = math.max(limit - queued, 0)
elseif queued >= limit then
  outcome = 'SOLD_OUT'
  remaining = 0
else
  redis.call('ZADD', KEYS[1], queued, ARGV[1])
  redis.call('SET', KEYS[2], ARGV[2])
  outcome = 'ISSUED'
  remaining = limit - queued - 1
end
record = outcome .. '|' .. remaining .. '|' .. ARGV[5] .. '|' .. ARGV[6] .. '|' .. ARGV[1]
redis.call('SET', KEYS[4], record, 'EX', ARGV[7])
return {'DECIDED', record}
)lua";

// Redis is down or did not answer: nothing was written by us, and a retry
// with the same request id is safe whether or not the script ran.
absl::Status RedisUnavailable(const absl::Status& s) {
  return absl::UnavailableError(absl::StrCat(
      s.message(), "; retry with the same request_id"));
}

}  // namespace

absl::StatusOr<IssueResult> ParseRecord(const std::string& request_id,
                                        absl::string_view record) {
  std::vector<absl::string_view> f = absl::StrSplit(record, absl::MaxSplits('|', 4));
  IssueResult r;
  r.request_id = request_id;
  std::optional<Outcome> outcome;
  if (f.size() == 5) outcome = OutcomeFromName(f[0]);
  if (!outcome || !absl::SimpleAtoi(f[1], &r.remaining_quantity) ||
      !absl::SimpleAtoi(f[2], &r.decided_at) ||
      !absl::SimpleAtoi(f[3], &r.coupon_id)) {
    return absl::InternalError(
        absl::StrCat("redis: malformed record for request ", request_id));
  }
  r.outcome = *outcome;
  r.user_id = std::string(f[4]);
  return r;
}

std::string Record(const IssueResult& r) {
  return absl::StrCat(OutcomeName(r.outcome), "|", r.remaining_quantity, "|",
                      r.decided_at, "|", r.coupon_id, "|", r.user_id);
}

std::string QueueKey(int64_t id) { return absl::StrCat("coupon:queue:", id); }
std::string IssuedKey(int64_t id, const std::string& user) {
  return absl::StrCat("coupon:issued:", id, ":", user);
}
std::string LimitKey(int64_t id) { return absl::StrCat("coupon:limit:", id); }
std::string RequestKey(const std::string& request_id) {
  return absl::StrCat("coupon:request:", request_id);
}

RedisIssuer::RedisIssuer(redis::Client* redis, pg::Pool* pool, ResultHub* hub,
                         absl::Duration record_ttl, Clock clock)
    : redis_(redis),
      pool_(pool),
      hub_(hub),
      record_ttl_(record_ttl),
      clock_(std::move(clock)),
      decide_(kDecideScript) {}

void RedisIssuer::Issue(IssueCommand cmd, const CouponInfo& coupon,
                        absl::Time deadline, IssueDone done) {
  const UnixMicros now_us = absl::ToUnixMicros(clock_());
  const Outcome window = WindowOutcome(coupon, now_us);
  absl::StatusOr<redis::Reply> reply = redis_->Eval(
      decide_,
      {QueueKey(cmd.coupon_id), IssuedKey(cmd.coupon_id, cmd.user_id),
       LimitKey(cmd.coupon_id), RequestKey(cmd.request_id)},
      {cmd.user_id, cmd.request_id, absl::StrCat(coupon.total_quantity),
       window == Outcome::kIssued ? "OK" : std::string(OutcomeName(window)),
       absl::StrCat(now_us), absl::StrCat(cmd.coupon_id),
       absl::StrCat(absl::ToInt64Seconds(record_ttl_))});
  if (!reply.ok()) return done(RedisUnavailable(reply.status()));
  if (reply->type != redis::Reply::Type::kArray || reply->elements.size() != 2) {
    return done(absl::InternalError(absl::StrCat(
        "redis: unexpected answer from the issue script: ", reply->str)));
  }
  const std::string& tag = reply->elements[0].str;
  IssueReply answer;
  answer.request_id = cmd.request_id;
  if (tag != "REPLAY" && tag != "DECIDED") {  // outside the window
    answer.outcome = window;
    return done(answer);
  }
  absl::StatusOr<IssueResult> result = ParseRecord(cmd.request_id, reply->elements[1].str);
  if (!result.ok()) return done(result.status());
  if (tag == "REPLAY" &&
      (result->coupon_id != cmd.coupon_id || result->user_id != cmd.user_id)) {
    return done(RequestIdReused(cmd.request_id));
  }

  if (result->outcome == Outcome::kIssued) {
    // Also on a replay: finishes a write that failed the first time.
    absl::StatusOr<int64_t> id = PersistIssued(*result, deadline);
    if (absl::IsAlreadyExists(id.status())) {
      // PostgreSQL knows this user holds a copy that Redis forgot.
      LOG(WARNING) << "redis issued coupon " << result->coupon_id << " to "
                   << result->user_id << " again (request " << result->request_id
                   << "); PostgreSQL refused the duplicate";
      result->outcome = Outcome::kAlreadyIssued;
      (void)redis_->Command({"SET", RequestKey(cmd.request_id), Record(*result),
                             "EX", absl::StrCat(absl::ToInt64Seconds(record_ttl_))});
    } else if (!id.ok()) {
      return done(absl::UnavailableError(absl::StrCat(
          id.status().message(),
          "; the copy is reserved in Redis: retry with the same request_id "
          "to finish")));
    } else {
      result->user_coupon_id = *id;
    }
  }
  if (tag == "DECIDED") {
    hub_->Publish(*result);
    // For the other gateways' watchers; a lost message costs them only a live
    // notification (request-id watches read Redis and PostgreSQL).
    absl::StatusOr<redis::Reply> published =
        redis_->Command({"PUBLISH", kResultChannel, EncodeIssueResult(*result)});
    if (!published.ok()) {
      LOG_EVERY_N(WARNING, 100) << published.status();
    }
  }
  answer.outcome = result->outcome;
  answer.user_coupon_id = result->user_coupon_id;
  done(answer);
}

void RedisIssuer::AnswerKnown(IssueCommand cmd, const CouponInfo& coupon,
                              IssueResult r, absl::Time deadline,
                              IssueDone done) {
  IssueReply inferred{r.request_id, r.outcome, 0};
  absl::StatusOr<redis::Reply> reply = redis_->Command(
      {"SET", RequestKey(cmd.request_id), Record(r), "NX", "GET", "EX",
       absl::StrCat(absl::ToInt64Seconds(record_ttl_))});
  if (!reply.ok()) return done(reply.status());
  if (reply->type == redis::Reply::Type::kNil) return done(std::move(inferred));
  if (reply->type != redis::Reply::Type::kString) {
    return done(absl::InternalError(
        absl::StrCat("redis: SET NX GET of request ", cmd.request_id, ": ", reply->str)));
  }
  // Decided before, maybe on another gateway: the script replays that
  // result (and finishes its PostgreSQL write if it was an issued copy).
  Issue(std::move(cmd), coupon, deadline, std::move(done));
}

absl::StatusOr<int64_t> RedisIssuer::PersistIssued(const IssueResult& r,
                                                   absl::Time deadline) {
  ASSIGN_OR_RETURN(auto conn, pool_->Acquire(deadline));
  int64_t user_coupon_id = 0;
  absl::Status status = pg::InTransaction(*conn, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(
        pg::Result inserted,
        conn->Exec(absl::StrCat("INSERT INTO user_coupons (coupon_id, user_id,"
                                " request_id, issued_at) VALUES ($1, $2, $3, ",
                                pg::MicrosToTimestamp("$4::bigint"),
                                ") ON CONFLICT (request_id) DO NOTHING"
                                " RETURNING user_coupon_id"),
                   {absl::StrCat(r.coupon_id), r.user_id, r.request_id,
                    absl::StrCat(r.decided_at)}));
    if (inserted.rows() == 0) {  // written by an earlier try of this request
      ASSIGN_OR_RETURN(pg::Result existing,
                       conn->Exec("SELECT user_coupon_id FROM user_coupons"
                                  " WHERE request_id = $1",
                                  {r.request_id}));
      user_coupon_id = existing.GetInt64(0, 0);
      return absl::OkStatus();
    }
    user_coupon_id = inserted.GetInt64(0, 0);
    const std::string id = absl::StrCat(user_coupon_id);
    RETURN_IF_ERROR(
        conn->Exec(absl::StrCat("INSERT INTO issue_results (request_id,"
                                " coupon_id, user_id, outcome, user_coupon_id,"
                                " remaining_quantity, decided_at) VALUES"
                                " ($1, $2, $3, 'ISSUED', $4, $5, ",
                                pg::MicrosToTimestamp("$6::bigint"), ")"),
                   {r.request_id, absl::StrCat(r.coupon_id), r.user_id, id,
                    absl::StrCat(r.remaining_quantity),
                    absl::StrCat(r.decided_at)})
            .status());
    return conn
        ->Exec("INSERT INTO coupon_outbox (coupon_id, user_coupon_id,"
               " request_id) VALUES ($1, $2, $3)",
               {absl::StrCat(r.coupon_id), id, r.request_id})
        .status();
  });
  if (!status.ok()) return status;
  return user_coupon_id;
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
    absl::StatusOr<IssueResult> r = ParseRecord(request_ids[i], e.str);
    if (r.ok()) out.push_back(std::move(*r));
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
