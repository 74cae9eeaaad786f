#include "gateway/results/result_cache.h"

#include <algorithm>

#include "common/metrics/metrics.h"

namespace coupon::gateway {
namespace {

// ACCEPTED to the result's arrival, for the requests this gateway queued.
metrics::Histogram& AcceptToResult() {
  static metrics::Histogram* const h = [] {
    std::vector<double> buckets = metrics::LatencyBuckets();
    buckets.insert(buckets.end(), {30, 60, 120, 300});  // a backlog's minutes
    return &metrics::Registry::Default()
                .AddHistogram("coupon_gateway_accept_to_result_seconds",
                              "IssueCoupon requests this gateway queued: time "
                              "from ACCEPTED (the broker's acknowledgement) to "
                              "their result's arrival at this gateway.",
                              {}, std::move(buckets))
                .WithLabelValues();
  }();
  return *h;
}

// Bytes a string owns on the heap (none while it fits the small-string
// buffer).
size_t Heap(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

// One entry of a flat_hash_map: its slot, its control byte, and its share of
// the spare capacity the map keeps (it doubles when 7/8 full, so it holds
// between 1.14 and 2.3 slots per entry: counted as 2).
template <typename K, typename V>
constexpr size_t Slot() {
  return 2 * (sizeof(std::pair<const K, V>) + 1);
}
// One element of a deque, with its share of the deque's blocks.
template <typename T>
constexpr size_t DequeElement() {
  return sizeof(T) + sizeof(T) / 4;
}

}  // namespace

ResultCache::ResultCache(CacheLimits limits) : limits_(limits) {
  AcceptToResult();  // exported from the start, at 0
}

void ResultCache::EvictResultsLocked() {
  using Entry = std::pair<std::string, ResultKind>;
  while (result_bytes_ > limits_.result_bytes && !result_order_.empty()) {
    Entry& oldest = result_order_.front();
    if (oldest.second == ResultKind::kResult) {
      if (auto it = results_.find(oldest.first); it != results_.end()) {
        result_bytes_ -= Slot<std::string, Stored>() + Heap(it->first) +
                         Heap(it->second.user_id);
        results_.erase(it);
      }
    } else if (auto it = queued_.find(oldest.first); it != queued_.end()) {
      result_bytes_ -= Slot<std::string, Caller>() + Heap(it->first) +
                       Heap(it->second.user_id);
      queued_.erase(it);
    }
    result_bytes_ -= DequeElement<Entry>() + Heap(oldest.first);
    result_order_.pop_front();
  }
}

void ResultCache::EvictHoldersLocked() {
  while (holder_bytes_ > limits_.holder_bytes &&
         !(holder_order_.empty() && coupon_order_.empty())) {
    // Holders first: they are many, a coupon's state is a few bytes.
    if (!holder_order_.empty()) {
      PairKey& oldest = holder_order_.front();
      if (auto it = holders_.find(oldest); it != holders_.end()) {
        holder_bytes_ -= Slot<PairKey, Holding>() + Heap(it->first.second) +
                         Heap(it->second.request_id);
        holders_.erase(it);
        // The coupon's list is no longer whole.
        if (auto c = coupons_.find(oldest.first); c != coupons_.end()) {
          c->second.all_holders = false;
        }
      }
      holder_bytes_ -= DequeElement<PairKey>() + Heap(oldest.second);
      holder_order_.pop_front();
      continue;
    }
    coupons_.erase(coupon_order_.front());
    holder_bytes_ -= Slot<int64_t, CouponState>() + DequeElement<int64_t>();
    coupon_order_.pop_front();
  }
}

void ResultCache::SetCouponLocked(int64_t coupon_id, bool sold_out,
                                  int64_t remaining) {
  auto [it, added] = coupons_.try_emplace(coupon_id);
  if (added) {
    coupon_order_.push_back(coupon_id);
    holder_bytes_ += Slot<int64_t, CouponState>() + DequeElement<int64_t>();
  }
  CouponState& state = it->second;
  // Stock only goes down: the lowest figure seen is the latest.
  if (remaining >= 0 && (state.remaining < 0 || remaining < state.remaining)) {
    state.remaining = remaining;
  }
  state.sold_out = state.sold_out || sold_out || state.remaining == 0;
}

void ResultCache::AddHolderLocked(int64_t coupon_id, const std::string& user_id,
                                  const std::string& request_id,
                                  int64_t user_coupon_id) {
  PairKey key{coupon_id, user_id};
  if (auto [it, added] = holders_.try_emplace(key, Holding{request_id, user_coupon_id});
      added) {
    holder_bytes_ += Slot<PairKey, Holding>() + Heap(it->first.second) +
                     Heap(it->second.request_id) + DequeElement<PairKey>() +
                     Heap(key.second);
    holder_order_.push_back(std::move(key));
  }
}

bool ResultCache::Learn(const IssueResult& r, Source source) {
  absl::MutexLock lock(&mu_);
  if (auto it = queued_.find(r.request_id);
      it != queued_.end() &&
      it->second.coupon_id == r.coupon_id && it->second.user_id == r.user_id) {
    AcceptToResult().ObserveDuration(absl::Now() - it->second.queued_at);
    result_bytes_ -= Slot<std::string, Caller>() + Heap(it->first) +
                     Heap(it->second.user_id);
    queued_.erase(it);
  }
  if (!IsStoredOutcome(r.outcome)) return false;

  if (r.outcome == Outcome::kIssued) {
    AddHolderLocked(r.coupon_id, r.user_id, r.request_id, r.user_coupon_id);
  }
  // A stored result's remaining stock is never below the coupon's real one,
  // so 0 there means sold out.
  SetCouponLocked(r.coupon_id, r.outcome == Outcome::kSoldOut, r.remaining_quantity);
  EvictHoldersLocked();

  const bool from_issuer = source == Source::kIssuer;
  auto [it, added] = results_.try_emplace(
      r.request_id, Stored{r.coupon_id, r.user_id, r.outcome, r.user_coupon_id,
                           r.remaining_quantity, r.decided_at, from_issuer});
  if (!added) {  // the first result stands
    if (!from_issuer || it->second.from_issuer) return false;  // a replay
    it->second.from_issuer = true;
    return true;
  }
  result_order_.emplace_back(r.request_id, ResultKind::kResult);
  result_bytes_ += Slot<std::string, Stored>() + Heap(it->first) +
                   Heap(it->second.user_id) +
                   DequeElement<std::pair<std::string, ResultKind>>() +
                   Heap(result_order_.back().first);
  EvictResultsLocked();
  return true;
}

std::optional<QueuePosition> ResultCache::Queued(const std::string& request_id, int64_t coupon_id,
                         const std::string& user_id, int32_t partition,
                         int64_t offset) {
  absl::MutexLock lock(&mu_);
  if (results_.contains(request_id)) return std::nullopt;  // the result came first
  auto [it, added] = queued_.try_emplace(
      request_id, Caller{coupon_id, user_id, absl::Now(), partition, offset});
  if (!added) return PositionLocked(it->second.partition, it->second.offset);
  result_order_.emplace_back(request_id, ResultKind::kQueued);
  result_bytes_ += Slot<std::string, Caller>() + Heap(it->first) +
                   Heap(it->second.user_id) +
                   DequeElement<std::pair<std::string, ResultKind>>() +
                   Heap(result_order_.back().first);
  EvictResultsLocked();
  return PositionLocked(partition, offset);
}

void ResultCache::DecidedThrough(int32_t partition, int64_t offset) {
  absl::MutexLock lock(&mu_);
  auto [it, added] = decided_through_.try_emplace(partition, offset);
  if (!added) it->second = std::max(it->second, offset);
}

std::optional<QueuePosition> ResultCache::PositionLocked(int32_t partition,
                                                         int64_t offset) const {
  if (partition < 0 || offset < 0) return std::nullopt;
  auto it = decided_through_.find(partition);
  if (it == decided_through_.end()) return std::nullopt;
  return QueuePosition{std::max<int64_t>(0, offset - it->second - 1),
                       QueuePosition::Scope::kPartition};
}

IssueResult ResultCache::QueuedResultLocked(const std::string& request_id,
                                            const Caller& c) const {
  IssueResult r;
  r.request_id = request_id;
  r.coupon_id = c.coupon_id;
  r.user_id = c.user_id;
  r.outcome = Outcome::kQueued;
  r.position = PositionLocked(c.partition, c.offset);
  return r;
}

std::optional<IssueResult> ResultCache::FindQueued(const std::string& request_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = queued_.find(request_id);
  if (it == queued_.end()) return std::nullopt;
  return QueuedResultLocked(request_id, it->second);
}

void ResultCache::SoldOut(int64_t coupon_id) {
  absl::MutexLock lock(&mu_);
  SetCouponLocked(coupon_id, /*sold_out=*/true, /*remaining=*/0);
  EvictHoldersLocked();
}

void ResultCache::LearnAllHolders(int64_t coupon_id,
                                  const std::vector<UserCouponRow>& copies) {
  absl::MutexLock lock(&mu_);
  SetCouponLocked(coupon_id, /*sold_out=*/true, /*remaining=*/0);
  for (const UserCouponRow& copy : copies) {
    AddHolderLocked(coupon_id, copy.user_id, copy.request_id, copy.user_coupon_id);
  }
  coupons_[coupon_id].all_holders = true;
  // What the budget cannot keep clears the flag again.
  EvictHoldersLocked();
}

bool ResultCache::HoldsNoCopy(int64_t coupon_id, const std::string& user_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto coupon = coupons_.find(coupon_id);
  return coupon != coupons_.end() && coupon->second.all_holders &&
         !holders_.contains(PairKey{coupon_id, user_id});
}

std::optional<IssueResult> ResultCache::Find(const std::string& request_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = results_.find(request_id);
  if (it == results_.end()) return std::nullopt;
  const Stored& s = it->second;
  return IssueResult{request_id, s.coupon_id, s.user_id, s.outcome,
                     s.user_coupon_id, s.remaining, s.decided_at};
}

Known ResultCache::LookUp(const std::string& request_id, int64_t coupon_id,
                          const std::string& user_id) const {
  Known known;
  absl::ReaderMutexLock lock(&mu_);
  if (auto it = results_.find(request_id); it != results_.end()) {
    const Stored& s = it->second;
    if (s.coupon_id != coupon_id || s.user_id != user_id) {
      known.kind = Known::Kind::kReused;
      return known;
    }
    known.kind = Known::Kind::kStored;
    known.result = IssueResult{request_id, s.coupon_id, s.user_id, s.outcome,
                               s.user_coupon_id, s.remaining, s.decided_at};
    return known;
  }
  if (auto it = queued_.find(request_id); it != queued_.end()) {
    if (it->second.coupon_id == coupon_id && it->second.user_id == user_id) {
      known.kind = Known::Kind::kQueued;
      known.result = QueuedResultLocked(request_id, it->second);
    } else {
      known.kind = Known::Kind::kReused;
    }
    return known;
  }
  // The request that won this user's copy, resent: its result is ISSUED.
  if (auto it = holders_.find(PairKey{coupon_id, user_id});
      it != holders_.end() && it->second.request_id == request_id) {
    known.kind = Known::Kind::kStored;
    known.result.request_id = request_id;
    known.result.coupon_id = coupon_id;
    known.result.user_id = user_id;
    known.result.outcome = Outcome::kIssued;
    known.result.user_coupon_id = it->second.user_coupon_id;
  }
  return known;
}

Known ResultCache::Infer(const std::string& request_id, int64_t coupon_id,
                         const std::string& user_id, UnixMicros now) const {
  Known known;
  absl::ReaderMutexLock lock(&mu_);
  auto coupon = coupons_.find(coupon_id);
  const bool sold_out = coupon != coupons_.end() && coupon->second.sold_out;
  if (holders_.contains(PairKey{coupon_id, user_id})) {
    known.result.outcome = Outcome::kAlreadyIssued;
  } else if (sold_out) {
    known.result.outcome = Outcome::kSoldOut;
  } else {
    return known;
  }
  known.kind = Known::Kind::kInferred;
  known.result.request_id = request_id;
  known.result.coupon_id = coupon_id;
  known.result.user_id = user_id;
  known.result.remaining_quantity =
      sold_out ? 0 : (coupon == coupons_.end() ? -1 : coupon->second.remaining);
  known.result.decided_at = now;
  return known;
}

int64_t ResultCache::LastRemaining(int64_t coupon_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = coupons_.find(coupon_id);
  return it == coupons_.end() ? -1 : it->second.remaining;
}

size_t ResultCache::result_bytes() const {
  absl::ReaderMutexLock lock(&mu_);
  return result_bytes_;
}

size_t ResultCache::holder_bytes() const {
  absl::ReaderMutexLock lock(&mu_);
  return holder_bytes_;
}

}  // namespace coupon::gateway
