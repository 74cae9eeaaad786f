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
/// outbox row (and commits), then one Redis script settles the records and
/// publishes the results on kResultChannel. Thread-safe.
class CopyWriter {
 public:
  // `reserved` as it ended: ISSUED with its user_coupon_id, or
  // ALREADY_ISSUED when PostgreSQL holds the user's copy from another
  // request (Redis lost its marker); UNAVAILABLE when it was not written,
  // and the copy stays reserved (a retry with the same request id, or the
  // outbox scheduler, finishes it). Runs on the writer's thread, or on the
  // caller's when refused at once.
  using Done = std::function<void(absl::StatusOr<IssueResult>)>;

  CopyWriter(CopyWriterConfig config, redis::Client* redis);
  ~CopyWriter();

  void Write(IssueResult reserved, Done done);

 private:
  struct Item {
    IssueResult reserved;
    Done done;
  };

  void Handle(std::vector<Item>& round, bool stopping);
  // Writes one copy per request id of the round; returns how each ended, by
  // request id.
  absl::StatusOr<std::vector<IssueResult>> Store(const std::vector<IssueResult>& copies);
  void Settle(const std::vector<IssueResult>& settled);

  const CopyWriterConfig config_;
  redis::Client* const redis_;
  // The round's thread only:
  std::unique_ptr<pg::Connection> conn_;
  std::unique_ptr<service::GroupCommit<Item>> rounds_;  // last: its thread uses the above
};

}  // namespace coupon::redis_issuer
