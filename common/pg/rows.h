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

}  // namespace coupon::pg
