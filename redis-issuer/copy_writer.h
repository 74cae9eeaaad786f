#pragma once

// The Redis mode's group commit: the copies the decide script reserved,
// written to PostgreSQL many at a time. Each copy is still in PostgreSQL
// before its caller hears ISSUED, as the design document requires; what is
// shared is the statement and its commit (about 270 µs of CPU here, against
// about 20 µs a row: docs/design.md), and the Redis call that settles the
// reservations and publishes their results.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/domain/domain.h"
#include "common/pg/pg.h"
#include "common/redis/redis.h"
#include "common/service/group_commit.h"

namespace coupon::redis_issuer {

struct CopyWriterConfig {
  std::string pg_dsn;
  pg::SessionSettings session;
  absl::Duration connect_timeout = absl::Seconds(3);
  service::GroupCommitOptions rounds;
  // How long a settled record is kept in Redis.
  absl::Duration record_ttl = absl::Hours(24);
};

/// One thread and one PostgreSQL connection, from the constructor to the
/// destructor, which fails what still waits with UNAVAILABLE. Each round:
/// one statement writes every copy with its ISSUED result and its PENDING
/// outbox row, and commits once Redis still holds the copies it inserted
/// reserved (one MGET); then one Redis script settles the records and
/// publishes the results on kResultChannel. Thread-safe.
class CopyWriter {
 public:
  // `reserved` as it ended: ISSUED with its user_coupon_id, or
  // ALREADY_ISSUED when PostgreSQL holds the user's copy from another
  // request (Redis lost its marker); ALREADY_EXISTS when the request id
  // holds another coupon's or user's copy (its record in Redis expired or
  // was lost): the reservation is released; UNAVAILABLE when it was not written,
  // and the copy stays reserved (a retry with the same request id, or the
  // outbox scheduler, finishes it), or Redis no longer holds it reserved
  // (it restarted without its data while the copy waited: whatever it
  // decided for the request since stands, and a retry asks it again). Runs
  // on the writer's thread, or on the caller's when refused at once.
  using Done = std::function<void(absl::StatusOr<IssueResult>)>;

  CopyWriter(CopyWriterConfig config, redis::Client* redis);
  ~CopyWriter();

  void Write(IssueResult reserved, Done done);

 private:
  struct Item {
    IssueResult reserved;
    Done done;
  };

  // How one copy ended: settled (ISSUED or ALREADY_ISSUED), ALREADY_EXISTS
  // (the id is another's: released), or UNAVAILABLE when Redis no longer
  // held it reserved and it was not written.
  using Ending = absl::StatusOr<IssueResult>;
  // One try of the round's statement, in a transaction that commits unless
  // Redis forgot some of the copies it inserted (then rolled back).
  struct Written {
    absl::flat_hash_map<std::string, int64_t> copy_of;  // request id -> user_coupon_id
    std::vector<std::string> skipped;  // request ids the insert skipped
    absl::flat_hash_set<std::string> forgotten;  // rolled back: not reserved in Redis
  };

  void Handle(std::vector<Item>& round, bool stopping);
  // Writes one copy per request id of the round; returns how each ended, in
  // the order of `copies`.
  absl::StatusOr<std::vector<Ending>> Store(const std::vector<IssueResult>& copies);
  absl::StatusOr<Written> WriteOnce(const std::vector<IssueResult>& copies);
  // The request ids of `copies` whose record in Redis no longer holds them
  // reserved (nor ISSUED).
  absl::StatusOr<absl::flat_hash_set<std::string>> Forgotten(
      const std::vector<const IssueResult*>& copies);
  void Settle(const std::vector<IssueResult>& settled);

  const CopyWriterConfig config_;
  redis::Client* const redis_;
  // The round's thread only:
  std::unique_ptr<pg::Connection> conn_;
  std::unique_ptr<service::GroupCommit<Item>> rounds_;  // last: its thread uses the above
};

}  // namespace coupon::redis_issuer
