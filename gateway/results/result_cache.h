#pragma once

// What one gateway knows for certain, all of it read from the store: the
// stored results of request ids (from the result topic, and the answers this
// gateway stored itself), the requests it queued whose results are on their
// way, which users hold a copy of which coupon, and which coupons are sold
// out. The pre-check answers from here only what the store already holds;
// what merely follows from it (SOLD_OUT, ALREADY_ISSUED for a new request id)
// comes back as an inference, which the issuer stores as the request's result
// before anyone hears it. Plain C++: no gRPC, no Kafka, no PostgreSQL.
//
// Memory is bounded in bytes: the oldest entries are forgotten first. What
// is forgotten costs a round trip later, never a different answer.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/domain/domain.h"

namespace coupon::gateway {

struct CacheLimits {
  // Results by request id, and the requests this gateway queued.
  size_t result_bytes = size_t{192} << 20;
  // Who holds a copy of which coupon, and the coupons' sold-out state.
  size_t holder_bytes = size_t{96} << 20;
};

// What the cache says about one IssueCoupon request.
struct Known {
  enum class Kind {
    kNothing,   // nothing certain: the issuer decides
    kStored,    // `result` is the request id's stored result, for this caller
    kQueued,    // this gateway queued the request; its result is on its way
                // (`result`: QUEUED, with the place in line when known)
    kReused,    // the request id belongs to another (coupon, user)
    kInferred,  // `result` follows from stored facts, but is not stored for
                // this request id yet: the issuer stores it first
  };
  Kind kind = Kind::kNothing;
  // kStored: outcome and user_coupon_id at least. kInferred: the proposal,
  // every field set.
  IssueResult result;
};

/// Thread-safe; lookups take a shared lock, updates an exclusive one, each
/// for a few map operations.
class ResultCache {
 public:
  explicit ResultCache(CacheLimits limits = {});

  // Where a result was learned: from the issuer (the result topic, or the
  // Redis mode's channel), or read from the store (an answer a gateway
  // stored itself).
  enum class Source { kIssuer, kStore };

  // Learns a stored result. Returns true when it is news from `source`: the
  // cache did not hold this request id's result learned from there (a
  // replayed event's result is not news; the issuer's first word on an id
  // the cache read from the store is). A REQUEST_ID_REUSED result is never
  // kept under its id (the id's first use owns it); it only settles this
  // gateway's queued request.
  bool Learn(const IssueResult& result, Source source = Source::kIssuer);

  // This gateway queued (request id, coupon, user), as the event `at` of
  // the request topic (unknown: -1): a resend of the same request is
  // answered ACCEPTED without queueing it twice, and another caller's use of
  // the id is refused, until the result comes. Returns its place in line,
  // when known (one lock for both: this runs for every ACCEPTED call).
  std::optional<QueuePosition> Queued(const std::string& request_id, int64_t coupon_id,
                                      const std::string& user_id, int32_t partition = -1,
                                      int64_t offset = -1);

  // Every event of the request topic's `partition` up to `offset` is
  // decided (the result events' header, common/wire/event_codec.h).
  void DecidedThrough(int32_t partition, int64_t offset);

  // A request this gateway queued and whose result has not come: QUEUED,
  // with its place in line when the cache knows where it is and how far its
  // partition is decided.
  std::optional<IssueResult> FindQueued(const std::string& request_id) const;


  // The coupon's stock was read as zero from the store.
  void SoldOut(int64_t coupon_id);

  // Every copy of a sold-out coupon, read from the store in the snapshot
  // that found its stock gone. A sold-out coupon gains no holder (stock never
  // grows), so while the cache keeps all of them it knows that nobody else
  // holds one. Forgetting any of them (the holder budget) ends that.
  void LearnAllHolders(int64_t coupon_id, const std::vector<UserCouponRow>& copies);

  // True when the cache holds every copy of the coupon (LearnAllHolders,
  // none forgotten since) and none of them is the user's.
  bool HoldsNoCopy(int64_t coupon_id, const std::string& user_id) const;

  // The stored result of a request id, if the cache holds it.
  std::optional<IssueResult> Find(const std::string& request_id) const;

  // For an IssueCoupon request: its stored result (by id, or as the request
  // that holds this user's copy), queued here, reused, or nothing.
  Known LookUp(const std::string& request_id, int64_t coupon_id,
               const std::string& user_id) const;

  // For a request LookUp knew nothing of, inside the coupon's window: the
  // outcome the stored facts imply. ALREADY_ISSUED when this user holds a
  // copy; SOLD_OUT when the coupon has none left (the store turns it into
  // ALREADY_ISSUED if the user holds a copy the cache does not know of).
  Known Infer(const std::string& request_id, int64_t coupon_id,
              const std::string& user_id, UnixMicros now) const;

  // The stock left after the latest decision seen for the coupon, or -1.
  int64_t LastRemaining(int64_t coupon_id) const;

  // Bytes accounted to each budget now.
  size_t result_bytes() const;
  size_t holder_bytes() const;

 private:
  // A result without its request id (the map's key).
  struct Stored {
    int64_t coupon_id;
    std::string user_id;
    Outcome outcome;
    int64_t user_coupon_id;
    int64_t remaining;
    UnixMicros decided_at;
    bool from_issuer;  // the issuer sent it, not only the store
  };
  struct Caller {
    int64_t coupon_id;
    std::string user_id;
    absl::Time queued_at;  // for coupon_gateway_accept_to_result_seconds
    int32_t partition = -1;  // where the request's event is; -1: unknown
    int64_t offset = -1;
  };
  struct Holding {
    std::string request_id;
    int64_t user_coupon_id;
  };
  struct CouponState {
    bool sold_out = false;
    int64_t remaining = -1;
    bool all_holders = false;  // holders_ has every copy (LearnAllHolders)
  };
  using PairKey = std::pair<int64_t, std::string>;
  // Which map an entry of `result_order_` belongs to.
  enum class ResultKind : uint8_t { kResult, kQueued };

  void EvictResultsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<QueuePosition> PositionLocked(int32_t partition, int64_t offset) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  IssueResult QueuedResultLocked(const std::string& request_id, const Caller& c) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void EvictHoldersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetCouponLocked(int64_t coupon_id, bool sold_out, int64_t remaining)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddHolderLocked(int64_t coupon_id, const std::string& user_id,
                       const std::string& request_id, int64_t user_coupon_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CacheLimits limits_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Stored> results_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Caller> queued_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<std::string, ResultKind>> result_order_ ABSL_GUARDED_BY(mu_);
  size_t result_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<PairKey, Holding> holders_ ABSL_GUARDED_BY(mu_);
  std::deque<PairKey> holder_order_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, CouponState> coupons_ ABSL_GUARDED_BY(mu_);
  // Request-topic partition -> the last offset known decided there.
  absl::flat_hash_map<int32_t, int64_t> decided_through_ ABSL_GUARDED_BY(mu_);
  std::deque<int64_t> coupon_order_ ABSL_GUARDED_BY(mu_);
  size_t holder_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace coupon::gateway
