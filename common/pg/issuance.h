#pragma once

// The writes of an issued copy and of a decided result, written once: the
// worker's batches and the Redis mode's copies both go through these.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/domain/domain.h"
#include "common/pg/pg.h"

namespace coupon::pg {

struct CopyToInsert {
  int64_t coupon_id = 0;
  std::string user_id;
  std::string request_id;
};

// Inserts the copies into user_coupons, issued at `issued_at`, in one
// statement; returns each inserted copy's user_coupon_id by request id. A
// copy of a user who holds one already fails the statement (ALREADY_EXISTS,
// the schema's one_copy_per_user). With `skip_written`, a copy whose request
// id is there already is skipped and not returned (a retry of the write).
absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> InsertCopies(
    Connection& conn, const std::vector<CopyToInsert>& copies, UnixMicros issued_at,
    bool skip_written = false);

// Inserts the results into issue_results in one statement, each as it is
// (a user_coupon_id of 0 is none). A request id stored already fails it
// (ALREADY_EXISTS).
absl::Status InsertResults(Connection& conn, const std::vector<IssueResult>& results);

// The worker's writes in one statement: the copies into user_coupons,
// issued at `issued_at`, and the results into issue_results, an ISSUED one
// with its copy's new user_coupon_id (matched by request id; every ISSUED
// result needs its copy among `copies`, or the schema refuses the row). It
// returns (request_id, user_coupon_id) per result, NULL for one without a
// copy. Fails as the two statements above do (ALREADY_EXISTS for a second
// copy of a user, or a request id stored already).
Statement InsertCopiesAndResults(const std::vector<CopyToInsert>& copies,
                                 const std::vector<IssueResult>& results,
                                 UnixMicros issued_at);

}  // namespace coupon::pg
