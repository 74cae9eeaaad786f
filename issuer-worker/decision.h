#pragma once

// The issuance decision, as a pure function of a batch of requests (in
// partition order) and what the database held when the batch's coupons were
// locked. No I/O: unit tests drive it directly.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/domain/domain.h"

namespace coupon::worker {

struct Snapshot {
  // The batch's coupons, locked for the transaction. A coupon missing here
  // does not exist.
  absl::flat_hash_map<int64_t, CouponInfo> coupons;
  // Results already decided for request ids of the batch (replays).
  absl::flat_hash_map<std::string, IssueResult> decided;
  // (coupon, user) -> request id holding that user's copy.
  absl::flat_hash_map<std::pair<int64_t, std::string>, std::string> holders;
};

struct NewIssuance {
  int64_t coupon_id;
  std::string user_id;
  std::string request_id;
};

struct Refusal {
  size_t event_index;  // into the batch
  std::string reason;
};

struct BatchDecision {
  // What to publish, in the batch's order: one result per distinct request of
  // the batch. Includes earlier results of replayed requests, and a
  // REQUEST_ID_REUSED result for each request whose id already belongs to
  // another (coupon, user).
  std::vector<IssueResult> results;
  // Indexes into `results` of those decided now (to be stored).
  std::vector<size_t> fresh;
  // How many of `results` are REQUEST_ID_REUSED (published, never stored).
  size_t reused = 0;
  // Copies to insert; their user_coupon_id is known only after the insert.
  std::vector<NewIssuance> issuances;
  // Stock to take, per coupon.
  absl::flat_hash_map<int64_t, int64_t> taken;
  // Events that cannot be decided (unknown coupon): to the dead-letter topic.
  std::vector<Refusal> refusals;
};

// Decides in order: a request id decided before keeps its result, for the
// (coupon, user) it was decided for (any other gets REQUEST_ID_REUSED); then
// the coupon's window (judged at requested_at), one copy per user, and stock.
BatchDecision DecideBatch(const std::vector<IssueRequest>& requests,
                          Snapshot snapshot, UnixMicros now);

}  // namespace coupon::worker
