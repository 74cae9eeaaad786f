#include "redis-issuer/copy_writer.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/domain/status_macros.h"
#include "common/wire/event_codec.h"
#include "glog/logging.h"
#include "redis-issuer/copies.h"
#include "redis-issuer/records.h"

namespace coupon::redis_issuer {
namespace {

// Every copy, its ISSUED result and its outbox row, in one statement. A copy
// whose request id is in user_coupons already (an earlier try, or another
// gateway's or the outbox scheduler's write of the same reservation, which
// may commit while this statement runs) or whose user holds the coupon from
// another request is skipped by the insert; Store tells the two apart with
// a statement of its own, which sees what committed meanwhile. It runs in a
// transaction that commits only once Redis still holds the copies it
// inserted reserved (Store). Two gateways write the same resent
// reservations: the rows go in one order, (coupon, user, request), so that
// their statements wait on each other's rows only in turn, never in a
// circle that only lock_timeout would break.
const std::string& StoreCopiesSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "WITH x AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[],"
      "   $4::bigint[], $5::bigint[]) AS x(r, c, u, rem, at)),"
      " ins AS (INSERT INTO user_coupons (coupon_id, user_id, request_id, issued_at)"
      "   SELECT c, u, r, ", pg::MicrosToTimestamp("at"), " FROM x ORDER BY c, u, r"
      "   ON CONFLICT DO NOTHING RETURNING request_id, user_coupon_id),"
      " res AS (INSERT INTO issue_results (request_id, coupon_id, user_id, outcome,"
      "   user_coupon_id, remaining_quantity, decided_at)"
      "   SELECT x.r, x.c, x.u, 'ISSUED', ins.user_coupon_id, x.rem, ",
      pg::MicrosToTimestamp("x.at"),
      "   FROM x JOIN ins ON ins.request_id = x.r),"
      " box AS (INSERT INTO coupon_outbox (coupon_id, user_coupon_id, request_id)"
      "   SELECT x.c, ins.user_coupon_id, x.r FROM x JOIN ins ON ins.request_id = x.r)"
      " SELECT x.r, ins.user_coupon_id FROM x LEFT JOIN ins ON ins.request_id = x.r"));
  return *sql;
}

// Each settled record written (kept for good, or its ttl: RecordTtlSeconds)
// and taken out of the reserved copies, and its result published, in one
// step.
// KEYS: the request records, then kReservedKey.
// ARGV: 1 the channel, then per record: the record, its ttl (s, 0 for good),
//       its request id, the encoded result.
constexpr char kSettleScript[] = R"lua(
local reserved = KEYS[#KEYS]
for i = 1, #KEYS - 1 do
  local a = 2 + (i - 1) * 4
  keep(KEYS[i], ARGV[a], ARGV[a + 1])
  redis.call('ZREM', reserved, ARGV[a + 2])
  redis.call('PUBLISH', ARGV[1], ARGV[a + 3])
end
return #KEYS - 1
)lua";

}  // namespace

CopyWriter::CopyWriter(CopyWriterConfig config, redis::Client* redis)
    : config_(std::move(config)), redis_(redis) {
  rounds_ = std::make_unique<service::GroupCommit<Item>>(
      config_.rounds,
      [this](std::vector<Item>& round, bool stopping) { Handle(round, stopping); });
}

// Stops the rounds first: the last one still uses the connection.
CopyWriter::~CopyWriter() { rounds_.reset(); }

void CopyWriter::Write(IssueResult reserved, Done done) {
  Item item{std::move(reserved), std::move(done)};
  if (rounds_->Add(item)) return;
  item.done(absl::UnavailableError(
      "postgres: the copies waiting to be written are at their limit; the copy "
      "is reserved in Redis: retry with the same request_id to finish (the "
      "outbox scheduler finishes it otherwise)"));
}

void CopyWriter::Handle(std::vector<Item>& round, bool stopping) {
  // One copy per request id: the same request retried while its first try
  // waits here gets the same ending.
  absl::flat_hash_map<std::string, size_t> ending;  // request id -> index into copies
  std::vector<IssueResult> copies;
  for (const Item& item : round) {
    if (ending.try_emplace(item.reserved.request_id, copies.size()).second) {
      copies.push_back(item.reserved);
    }
  }
  absl::StatusOr<std::vector<Ending>> stored =
      stopping ? absl::UnavailableError("gateway: shutting down") : Store(copies);
  if (!stored.ok() && !stopping) {
    // Once more on a fresh connection; a write whose commit was lost with
    // the connection is found by it (the copies' request ids).
    LOG_EVERY_N(WARNING, 10) << "redis mode: writing " << copies.size()
                             << " copies: " << stored.status() << "; trying again";
    stored = Store(copies);
  }
  if (!stored.ok()) {
    const absl::Status failed = absl::UnavailableError(absl::StrCat(
        stored.status().message(),
        "; the copy is reserved in Redis: retry with the same request_id to "
        "finish (the outbox scheduler finishes it otherwise)"));
    for (Item& item : round) item.done(failed);
    return;
  }
  // The copies are in PostgreSQL now: a failure here leaves the
  // reservations to the outbox scheduler, which finds them written and
  // settles them alike. A copy Redis forgot has no record to settle: the
  // one Redis holds now stands.
  std::vector<IssueResult> settled;
  for (size_t i = 0; i < copies.size(); ++i) {
    const Ending& e = (*stored)[i];
    if (e.ok()) {
      settled.push_back(*e);
    } else if (absl::IsAlreadyExists(e.status())) {
      // Nobody holds this reservation: back to the stock. Should Redis not
      // answer, the outbox scheduler finds it and releases it alike.
      if (absl::Status released = ReleaseReservation(*redis_, copies[i]); !released.ok()) {
        LOG_EVERY_N(WARNING, 10) << "redis: releasing the reservation of request "
                                 << copies[i].request_id << ": " << released
                                 << " (the outbox scheduler releases it)";
      }
    }
  }
  if (!settled.empty()) Settle(settled);
  for (Item& item : round) item.done((*stored)[ending.at(item.reserved.request_id)]);
}

absl::StatusOr<std::vector<CopyWriter::Ending>> CopyWriter::Store(
    const std::vector<IssueResult>& copies) {
  if (!conn_ || !conn_->Reusable()) {
    conn_.reset();
    ASSIGN_OR_RETURN(conn_, pg::Connection::Connect(config_.pg_dsn, config_.connect_timeout,
                                                    config_.session));
  }
  // What Redis forgot is taken out and the rest written again: rare (Redis
  // restarted without its data while copies waited here), so simple.
  std::vector<IssueResult> pending = copies;
  absl::flat_hash_set<std::string> forgotten;
  absl::StatusOr<Written> written = Written{};
  while (!pending.empty()) {
    written = WriteOnce(pending);
    if (!written.ok()) {
      if (!conn_->healthy()) conn_.reset();
      return written.status();
    }
    if (written->forgotten.empty()) break;
    forgotten.insert(written->forgotten.begin(), written->forgotten.end());
    pending.erase(std::remove_if(pending.begin(), pending.end(),
                                 [&](const IssueResult& c) {
                                   return forgotten.contains(c.request_id);
                                 }),
                  pending.end());
  }
  absl::flat_hash_map<std::string, IssueResult> held;
  if (!written->skipped.empty()) {
    // Read after the insert committed: a copy of the same request that
    // another writer committed while it ran is seen here, not by its
    // snapshot.
    absl::StatusOr<absl::flat_hash_map<std::string, IssueResult>> found =
        FindCopies(*conn_, written->skipped);
    if (!found.ok()) {
      if (!conn_->healthy()) conn_.reset();
      return found.status();
    }
    held = std::move(*found);
  }
  std::vector<Ending> ended;
  ended.reserve(copies.size());
  for (IssueResult e : copies) {
    if (forgotten.contains(e.request_id)) {
      LOG(WARNING) << "redis lost the reservation of request " << e.request_id
                   << " (coupon " << e.coupon_id << ", user " << e.user_id
                   << ") while its copy waited to be written; not written";
      ended.push_back(absl::UnavailableError(absl::StrCat(
          "redis: the reservation of request ", e.request_id,
          " was lost (Redis restarted without its data) before its copy was "
          "written; retry with the same request_id")));
      continue;
    }
    if (auto it = written->copy_of.find(e.request_id); it != written->copy_of.end()) {
      e.outcome = Outcome::kIssued;
      e.user_coupon_id = it->second;
      ended.push_back(std::move(e));
      continue;
    }
    auto it = held.find(e.request_id);
    Ending ending = EndingOf(e, it == held.end() ? nullptr : &it->second);
    if (ending.ok() && ending->outcome == Outcome::kAlreadyIssued) {
      LOG(WARNING) << "redis issued coupon " << e.coupon_id << " to " << e.user_id
                   << " again (request " << e.request_id
                   << "); PostgreSQL refused the duplicate";
    } else if (!ending.ok()) {
      LOG(WARNING) << "redis reserved coupon " << e.coupon_id << " for " << e.user_id
                   << " under request " << e.request_id << ", which holds coupon "
                   << it->second.coupon_id << " of " << it->second.user_id
                   << " in PostgreSQL (its record in Redis expired or was lost);"
                   << " the reservation is released";
    }
    ended.push_back(std::move(ending));
  }
  return ended;
}

absl::StatusOr<CopyWriter::Written> CopyWriter::WriteOnce(
    const std::vector<IssueResult>& copies) {
  std::vector<std::string> r, u;
  std::vector<int64_t> c, rem, at;
  for (const IssueResult& copy : copies) {
    r.push_back(copy.request_id);
    c.push_back(copy.coupon_id);
    u.push_back(copy.user_id);
    rem.push_back(copy.remaining_quantity);
    at.push_back(copy.decided_at);
  }
  absl::flat_hash_map<std::string, const IssueResult*> by_id;
  for (const IssueResult& copy : copies) by_id.emplace(copy.request_id, &copy);
  Written written;
  absl::Status committed = pg::InTransaction(*conn_, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(pg::Result rows,
                     conn_->Exec(StoreCopiesSql(),
                                 {pg::TextArray(r), pg::Int64Array(c), pg::TextArray(u),
                                  pg::Int64Array(rem), pg::Int64Array(at)}));
    std::vector<const IssueResult*> inserted;
    for (int i = 0; i < rows.rows(); ++i) {
      if (rows.IsNull(i, 1)) {
        written.skipped.emplace_back(rows.Get(i, 0));
      } else {
        std::string id(rows.Get(i, 0));
        inserted.push_back(by_id.at(id));
        written.copy_of[std::move(id)] = rows.GetInt64(i, 1);
      }
    }
    // The last moment before the commit: a Redis that restarted without
    // its data may have decided these requests, or their users' other
    // ones, otherwise meanwhile; the copies it no longer holds reserved
    // must not appear now. Skipped copies were written (or refused) by
    // someone else.
    ASSIGN_OR_RETURN(written.forgotten, Forgotten(inserted));
    if (!written.forgotten.empty()) {
      return absl::AbortedError("redis forgot reserved copies");
    }
    return absl::OkStatus();
  });
  if (!committed.ok() && written.forgotten.empty()) return committed;
  if (!written.forgotten.empty()) {
    written.copy_of.clear();
    written.skipped.clear();
  }
  return written;
}

absl::StatusOr<absl::flat_hash_set<std::string>> CopyWriter::Forgotten(
    const std::vector<const IssueResult*>& copies) {
  absl::flat_hash_set<std::string> forgotten;
  if (copies.empty()) return forgotten;
  std::vector<std::string> argv = {"MGET"};
  for (const IssueResult* copy : copies) argv.push_back(RequestKey(copy->request_id));
  ASSIGN_OR_RETURN(redis::Reply reply, redis_->Command(argv));
  if (reply.type != redis::Reply::Type::kArray || reply.elements.size() != copies.size()) {
    return absl::UnavailableError(absl::StrCat(
        "redis: unexpected answer to MGET of the reserved copies: ", reply.str));
  }
  for (size_t i = 0; i < copies.size(); ++i) {
    const IssueResult& copy = *copies[i];
    const redis::Reply& text = reply.elements[i];
    absl::StatusOr<Record> record =
        text.type == redis::Reply::Type::kString
            ? ParseRecord(copy.request_id, text.str)
            : absl::NotFoundError("no record");
    // Reserved, or (a record from before records carried the copy's id)
    // ISSUED: the copy is still this request's to write.
    const bool held = record.ok() && record->result.BelongsTo(copy.coupon_id, copy.user_id) &&
                      (record->reserved || record->result.outcome == Outcome::kIssued);
    if (!held) forgotten.insert(copy.request_id);
  }
  return forgotten;
}

void CopyWriter::Settle(const std::vector<IssueResult>& settled) {
  static const redis::Script* settle = new redis::Script(WithKeep(kSettleScript));
  std::vector<std::string> keys, argv = {kResultChannel};
  for (const IssueResult& s : settled) {
    keys.push_back(RequestKey(s.request_id));
    argv.push_back(FormatRecord(s));
    argv.push_back(RecordTtlSeconds(s, config_.record_ttl));
    argv.push_back(s.request_id);
    argv.push_back(EncodeIssueResult(s));
  }
  keys.push_back(kReservedKey);
  absl::StatusOr<redis::Reply> reply = redis_->Eval(*settle, keys, argv);
  if (!reply.ok() || reply->type == redis::Reply::Type::kError) {
    LOG_EVERY_N(WARNING, 100) << "redis: settling " << settled.size() << " copies: "
                              << (reply.ok() ? reply->str : reply.status().ToString())
                              << " (the outbox scheduler settles them)";
  }
}

}  // namespace coupon::redis_issuer
