#pragma once

// The invariants of a flash sale, checked after the run against what
// PostgreSQL holds: ReadSnapshot reads the database, Compare holds the rules
// (and needs no database, so it can be tested with a hand-made snapshot).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "bench/flashsale/load.h"

namespace coupon::bench {

struct DbSnapshot {
  struct Coupon {
    int64_t total_quantity = 0;
    int64_t remaining_quantity = 0;
    int64_t issued_rows = 0;     // count(*) of user_coupons
    int64_t distinct_users = 0;  // count(distinct user_id) of user_coupons
  };
  struct Result {
    int64_t coupon_id = 0;
    int outcome = 0;  // IssueOutcome
    int64_t user_coupon_id = 0;
  };
  struct Holder {
    int64_t coupon_id = 0;
    std::string user_id;
    std::string request_id;
    int64_t user_coupon_id = 0;
  };
  std::map<int64_t, Coupon> coupons;
  absl::flat_hash_map<std::string, Result> results;  // issue_results by request id
  std::vector<Holder> holders;                       // user_coupons rows
};

// Reads the plan's coupons, their user_coupons and issue_results rows.
absl::StatusOr<DbSnapshot> ReadSnapshot(const std::string& pg_dsn,
                                        const std::vector<int64_t>& coupon_ids);

struct CouponVerdict {
  int64_t coupon_id = 0;
  int64_t stock = 0;
  int64_t remaining = 0;
  int64_t issued = 0;          // user_coupons rows
  int64_t users_sent = 0;      // distinct users who asked for it
  int64_t users_answered = 0;  // ... and got at least one OK answer
  // issued must be min(stock, users): exact when no call failed, else between
  // the users answered and the users who sent (a failed call may be queued).
  int64_t expected_min = 0;
  int64_t expected_max = 0;
};

struct Verification {
  std::vector<CouponVerdict> coupons;
  int64_t checks = 0;               // comparisons made
  int64_t decided_rows = 0;         // issue_results rows of the run's coupons
  int64_t errored_but_decided = 0;  // failed calls the worker decided anyway
  int64_t issued_seen = 0;          // distinct ISSUED on streams and answers
  // The losses a failover can cause, counted apart so that a run expecting one
  // (an asynchronous standby) can report it as a figure:
  int64_t told_issued_missing = 0;  // told ISSUED (answer or stream), no user_coupons row
  int64_t accepted_lost = 0;        // answered ACCEPTED, no issue_results row
  // SOLD_OUT (answered or streamed) to a user who holds a copy of that coupon:
  // a gateway that answered from incomplete knowledge.
  int64_t sold_out_to_holders = 0;
  std::vector<std::string> violations;  // one line per kind, with examples
  std::vector<std::string> warnings;
  bool ok() const { return violations.empty(); }
};

// Call after every writer of `ledger` has stopped. `decided_at_gateway` is
// the Redis issuer: every call is answered with its final outcome, results
// may also appear on the streams (they must agree), and only ISSUED results
// are stored in issue_results.
Verification Compare(const Plan& plan, const Ledger& ledger, int64_t stock,
                     const DbSnapshot& db, bool decided_at_gateway = false);

}  // namespace coupon::bench
