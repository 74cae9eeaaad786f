#pragma once

// The flash-sale load: who asks for which coupon (Plan), what happened to
// every request (Ledger), the IssueCoupon calls (IssueDriver), and the
// `coupon_id` watch streams that collect the results (CouponWatch).
// Requests are numbered 0..N-1; request n has id "<run_id>-<n>", so a result
// on a stream finds its slot by parsing the id, without a map.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coupon/v1/coupon_service.grpc.pb.h"

namespace coupon::bench {

// Steady-clock nanoseconds; never 0, so 0 can mean "not yet".
int64_t NowNs();

// The canonical name of a gRPC status code ("UNAVAILABLE").
std::string StatusCodeName(int code);
// "ACCEPTED" for ISSUE_OUTCOME_ACCEPTED.
std::string OutcomeName(int outcome);

/// Immutable after MakePlan; any thread may read it. A *request* is one
/// request id; a *call* is one IssueCoupon sending it. A client retrying
/// with its idempotency key sends one request in several calls.
struct Plan {
  std::string run_id;
  std::vector<int64_t> coupon_ids;
  // The user sending request n. User u always asks for coupon
  // coupon_ids[u % coupons], so its repeats are duplicates of one another.
  std::vector<uint32_t> user_of;
  // The request each call sends, in sending order.
  std::vector<uint32_t> call_request;
  // Calls [0, presell_calls) sell the stock out before the measured phase.
  size_t presell_calls = 0;
  uint32_t users = 0;  // distinct users in user_of: 0..users-1

  size_t size() const { return user_of.size(); }
  size_t calls() const { return call_request.size(); }
  size_t CouponIndexOfUser(uint32_t user) const {
    return user % coupon_ids.size();
  }
  size_t CouponIndexOf(size_t n) const { return CouponIndexOfUser(user_of[n]); }
  int64_t CouponOf(size_t n) const { return coupon_ids[CouponIndexOf(n)]; }
  static std::string UserId(uint32_t user);
  std::string RequestId(size_t n) const;
  // The number of a request id of this run; nullopt for anyone else's.
  std::optional<size_t> RequestNumber(absl::string_view request_id) const;
};

struct PlanSpec {
  uint32_t users = 100000;  // measured-phase users at most
  uint64_t calls = 200000;  // measured-phase calls
  uint32_t repeat = 2;      // request ids per user, each new
  uint32_t resend = 0;      // extra calls re-sending each user's first id
  uint32_t presell = 0;     // users 0..presell-1 each call once, first
  uint64_t seed = 1;
};

// The presell users first, each calling once, in a shuffled order. Then
// min(users, ceil(calls / (repeat + resend))) more users, each sending
// `repeat` request ids, the first of them 1 + `resend` times (the last users
// fewer calls when `calls` does not divide), in an order shuffled with `seed`:
// some calls of a user are in flight together, some far apart.
Plan MakePlan(std::string run_id, std::vector<int64_t> coupon_ids,
              const PlanSpec& spec);

// How a result reached us.
enum class Via : uint8_t { kNone = 0, kLive = 1, kLate = 2 };

/// What happened to every request and every call of a plan. Thread-safe for
/// writers: the driver's callbacks record answers while the watch streams
/// record results. entry() and call() are for after every writer has
/// stopped; counters() and notes() any time. Outlives the driver and the
/// watches that write to it.
class Ledger {
 public:
  explicit Ledger(const Plan* plan);

  void RecordSent(size_t call, int64_t ns);
  // `grpc_code` 0 is OK, and then `outcome` and `user_coupon_id` hold the
  // answer. A request answered ACCEPTED by any of its calls stays ACCEPTED;
  // two different final answers to one request are a conflict.
  void RecordAnswer(size_t call, int64_t ns, int grpc_code, int outcome,
                    int64_t user_coupon_id);
  // First arrival per request id wins; later ones are counted as duplicates
  // (or conflicts, when they disagree).
  void RecordResult(const v1::IssueResult& result, Via via, int64_t ns);

  struct Counters {
    int64_t sent = 0;      // calls
    int64_t answered = 0;  // calls answered, OK or not
    int64_t accepted = 0;  // requests answered ACCEPTED by some call
    int64_t final_at_gateway = 0;  // calls answered with a final outcome
    int64_t errors = 0;            // calls failed
    int64_t results = 0;           // distinct request ids with a result
    int64_t accepted_pending = 0;  // ACCEPTED, result not seen yet
    int64_t duplicates_live = 0;   // same result again on a coupon stream
    int64_t duplicates_late = 0;   // fetched late, then also seen (or twice)
    int64_t conflicting = 0;       // a second, different result: a bug
    int64_t mismatched = 0;        // result for another user or coupon: a bug
    int64_t foreign = 0;           // not a request of this run
    int64_t last_result_ns = 0;
  };
  Counters counters() const;

  /// One request: its first call's send, its calls' merged answer, and its
  /// result.
  struct Entry {
    int64_t sent_ns = 0;
    int64_t answered_ns = 0;  // 0: no call answered
    int64_t result_ns = 0;    // 0: no result seen
    int answer = 0;           // IssueOutcome when a call was answered OK
    int error_code = 0;       // gRPC code when every answered call failed
    int64_t answer_user_coupon_id = 0;
    int result = 0;  // IssueOutcome of the first result
    int64_t result_user_coupon_id = 0;
    Via via = Via::kNone;
  };
  Entry entry(size_t n) const;

  /// One call.
  struct CallEntry {
    int64_t sent_ns = 0;
    int64_t answered_ns = 0;  // 0: never answered
    int answer = 0;           // IssueOutcome when answered OK
    int error_code = 0;       // gRPC code when the call failed
  };
  CallEntry call(size_t c) const;

  // The first few conflicts, mismatches and foreign ids, for the report.
  std::vector<std::string> notes() const;

 private:
  // answer: 0 = not yet, > 0 = IssueOutcome, < 0 = -(gRPC code).
  struct Slot {
    std::atomic<int64_t> sent_ns{0};
    std::atomic<int64_t> answered_ns{0};
    std::atomic<int64_t> result_ns{0};
    std::atomic<int64_t> answer_ucid{0};
    std::atomic<int64_t> result_ucid{0};
    std::atomic<int16_t> answer{0};
    std::atomic<int16_t> result{0};  // first result's outcome; claims the slot
    std::atomic<uint8_t> flags{0};
    std::atomic<uint8_t> via{0};
  };
  struct CallSlot {
    std::atomic<int64_t> sent_ns{0};
    std::atomic<int64_t> answered_ns{0};
    std::atomic<int16_t> answer{0};  // as Slot::answer
  };
  static constexpr uint8_t kAccepted = 1;
  static constexpr uint8_t kResult = 2;
  // Stored in `result` for an UNSPECIFIED outcome, so the slot is claimed.
  static constexpr int16_t kUnspecifiedResult = 999;

  void MarkAndMatch(Slot& slot, uint8_t bit);
  void MergeAnswer(size_t n, int16_t answer, int64_t user_coupon_id);
  void Note(std::string note);

  const Plan* plan_;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<CallSlot[]> calls_;
  std::atomic<int64_t> sent_{0}, answered_{0}, accepted_{0},
      final_at_gateway_{0}, errors_{0}, results_{0}, matched_{0},
      duplicates_live_{0}, duplicates_late_{0}, conflicting_{0},
      mismatched_{0}, foreign_{0}, last_result_ns_{0};
  mutable std::mutex notes_mu_;
  std::vector<std::string> notes_;
};

struct DriverOptions {
  int concurrency = 512;  // closed loop: calls in flight
  double rate = 0;        // open loop: calls started per second; 0 = closed
  absl::Duration deadline = absl::Seconds(5);
  // A call failing UNAVAILABLE or DEADLINE_EXCEEDED is sent again with the
  // same request id, on the next target, after `retry_backoff`, at most
  // `retries` times: what a client of an idempotent API does.
  int retries = 0;
  absl::Duration retry_backoff = absl::Milliseconds(200);
};

/// Sends calls of the plan with the callback API, call c to target
/// c % targets. Run() blocks its caller until every call of its range is
/// answered; completions run on gRPC's callback threads and, in the closed
/// loop, start the next call from there; retries wait on a timer thread of
/// the driver's own. Run may be called for consecutive ranges, one at a
/// time; destroy the driver after the last Run returned.
class IssueDriver {
 public:
  IssueDriver(std::vector<v1::CouponService::Stub*> stubs, const Plan* plan,
              Ledger* ledger, DriverOptions options);
  ~IssueDriver();

  void Run(size_t begin, size_t end);
  int64_t max_in_flight() const { return max_in_flight_.load(); }
  int64_t retries() const { return retries_.load(); }

 private:
  struct Call;
  void Start(size_t c, int64_t sent_ns);
  void Send(Call* call);
  void OnDone(Call* call, const grpc::Status& status);
  void Finish(Call* call);
  void RetryLoop();

  const std::vector<v1::CouponService::Stub*> stubs_;
  const Plan* plan_;
  Ledger* ledger_;
  const DriverOptions options_;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> end_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> max_in_flight_{0};
  std::atomic<int64_t> retries_{0};
  std::mutex mu_;
  std::condition_variable all_done_;
  size_t remaining_ = 0;  // calls of the running range not answered yet
  // Calls waiting for their retry, by due time; served by retry_thread_.
  std::condition_variable retry_cv_;
  std::vector<std::pair<int64_t, Call*>> retry_queue_;
  bool stopping_ = false;
  std::thread retry_thread_;
};

/// One `coupon_id` WatchIssueResults stream feeding the ledger. gRPC's
/// callback threads run OnReadDone/OnDone; the owner calls Start once, then
/// Cancel and Wait once each, and destroys it only after Wait returned.
class CouponWatch final : public grpc::ClientReadReactor<v1::IssueResult> {
 public:
  CouponWatch(v1::CouponService::Stub* stub, int64_t coupon_id, Ledger* ledger);

  void Start();
  // Blocks until the gateway has registered the watch (it sends the headers
  // then) or the stream ended; false if neither happened by `deadline`.
  bool WaitRegistered(absl::Time deadline);
  void Cancel();
  // Blocks until the stream is over; its status (CANCELLED after Cancel).
  grpc::Status Wait();
  // Whether the stream ended before Cancel: results after that were missed.
  bool ended_early() const;
  int64_t coupon_id() const { return coupon_id_; }
  int64_t delivered() const { return delivered_.load(); }

  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  v1::CouponService::Stub* stub_;
  const int64_t coupon_id_;
  Ledger* ledger_;
  grpc::ClientContext ctx_;
  v1::WatchIssueResultsRequest request_;
  v1::IssueResult result_;
  std::atomic<int64_t> delivered_{0};
  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  bool cancelled_ = false;
  bool registered_ = false;
  bool done_ = false;
  bool ended_early_ = false;
  grpc::Status status_;
};

// Fetches the results of `numbers` (requests no coupon stream delivered) with
// request_ids watches of at most 1000 ids, each bounded by `deadline_each`,
// into the ledger as Via::kLate; a chunk whose watch fails is tried on the
// next target. Blocks the calling thread; returns the first chunk failure
// that no target could serve.
absl::Status FetchByRequestId(const std::vector<v1::CouponService::Stub*>& stubs,
                              const Plan& plan, const std::vector<size_t>& numbers,
                              absl::Duration deadline_each, Ledger* ledger);

}  // namespace coupon::bench
