#pragma once

// Row readers for the tables both the gateway and the worker read, so the
// column lists live in one place.

#include <string>

#include "common/domain/domain.h"
#include "common/pg/pg.h"

namespace coupon::pg {

// SELECT list for CouponFromRow, over table `coupons`.
extern const char* const kCouponColumns;
CouponInfo CouponFromRow(const Result& r, int row);

// SELECT list for IssueResultFromRow, over table `issue_results`.
extern const char* const kIssueResultColumns;
IssueResult IssueResultFromRow(const Result& r, int row);

// The results stored for the request ids of `$1::text[]`, for
// IssueResultFromRow: one primary-key probe per id, whatever the planner
// thinks of the table. As `request_id = ANY($1)` a young issue_results was
// scanned whole: right after a TRUNCATE, until autovacuum analyzed it, the
// worker's read of 500 ids grew from 0.01 to 15 ms a batch over the first
// 177 batches of a drain (a sequential scan), where the probes take 1.2 ms.
const std::string& IssueResultsByRequestIdsSql();

}  // namespace coupon::pg
