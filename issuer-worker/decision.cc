#include "issuer-worker/decision.h"

#include "absl/strings/str_cat.h"

namespace coupon::worker {

BatchDecision DecideBatch(const std::vector<IssueRequest>& requests,
                          Snapshot snap, UnixMicros now) {
  BatchDecision out;
  // The id's owner: the result it was decided with, or the first request of
  // the batch that used it.
  absl::flat_hash_map<std::string, size_t> seen;  // request id -> results idx
  auto reused = [&](const IssueRequest& req) {
    IssueResult r;
    r.request_id = req.request_id;
    r.coupon_id = req.coupon_id;
    r.user_id = req.user_id;
    r.outcome = Outcome::kRequestIdReused;
    r.decided_at = now;
    out.results.push_back(std::move(r));
    ++out.reused;
  };
  for (size_t i = 0; i < requests.size(); ++i) {
    const IssueRequest& req = requests[i];
    if (auto it = seen.find(req.request_id); it != seen.end()) {
      // The same request twice in one batch: one result. Another caller's
      // request under the same id: that caller learns the id is taken.
      if (!out.results[it->second].BelongsTo(req.coupon_id, req.user_id)) {
        reused(req);
      }
      continue;
    }
    if (auto it = snap.decided.find(req.request_id); it != snap.decided.end()) {
      if (!it->second.BelongsTo(req.coupon_id, req.user_id)) {
        reused(req);
        continue;
      }
      seen[req.request_id] = out.results.size();
      out.results.push_back(it->second);
      continue;
    }
    auto coupon_it = snap.coupons.find(req.coupon_id);
    if (coupon_it == snap.coupons.end()) {
      out.refusals.push_back(
          {i, absl::StrCat("coupon_id: no coupon ", req.coupon_id)});
      continue;
    }
    CouponInfo& coupon = coupon_it->second;

    IssueResult result;
    result.request_id = req.request_id;
    result.coupon_id = req.coupon_id;
    result.user_id = req.user_id;
    result.decided_at = now;
    if (std::optional<Outcome> outside = OutsideWindow(coupon, req.requested_at)) {
      result.outcome = *outside;
    } else if (snap.holders.contains({req.coupon_id, req.user_id})) {
      result.outcome = Outcome::kAlreadyIssued;
    } else if (coupon.remaining_quantity <= 0) {
      result.outcome = Outcome::kSoldOut;
    } else {
      result.outcome = Outcome::kIssued;
      coupon.remaining_quantity -= 1;
      out.taken[req.coupon_id] += 1;
      snap.holders[{req.coupon_id, req.user_id}] = req.request_id;
      out.issuances.push_back({req.coupon_id, req.user_id, req.request_id});
    }
    result.remaining_quantity = coupon.remaining_quantity;
    seen[req.request_id] = out.results.size();
    out.fresh.push_back(out.results.size());
    out.results.push_back(std::move(result));
  }
  return out;
}

}  // namespace coupon::worker
