#pragma once

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/pg/pg.h"
#include "issuer-worker/issuance_store.h"

namespace coupon::worker {

/// IssuanceStore on one PostgreSQL connection, made lazily and made again
/// after it breaks, or when the server closed it meanwhile. Not thread-safe:
/// the worker loop's thread only.
class PgIssuanceStore final : public IssuanceStore {
 public:
  PgIssuanceStore(std::string dsn, absl::Duration connect_timeout,
                  pg::SessionSettings session = {})
      : dsn_(std::move(dsn)),
        connect_timeout_(connect_timeout),
        session_(std::move(session)) {}

  absl::StatusOr<BatchDecision> DecideAndStore(const std::vector<IssueRequest>& requests,
                                               UnixMicros now, const Decide& decide,
                                               const Meanwhile& meanwhile) override;

  // (Re)connects unless the connection can be used.
  absl::Status Connect();

 private:
  // One batch's transaction in two round trips (pipelines): BEGIN, the
  // coupons locked and what the decision reads; then, decided, the writes
  // and COMMIT. Fills in the new copies' user_coupon_id.
  absl::StatusOr<BatchDecision> DecideOnce(const std::vector<IssueRequest>& requests,
                                           UnixMicros now, const Decide& decide,
                                           const Meanwhile& meanwhile);
  static std::vector<pg::Statement> Reads(const std::vector<IssueRequest>& requests);
  static Snapshot FromReads(const std::vector<pg::Result>& rows);
  static std::vector<pg::Statement> Writes(const BatchDecision& decision, UnixMicros now);

  const std::string dsn_;
  const absl::Duration connect_timeout_;
  const pg::SessionSettings session_;
  std::unique_ptr<pg::Connection> conn_;
};

}  // namespace coupon::worker
