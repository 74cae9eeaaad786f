#include "bench/flashsale/load.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/status/status.h"
#include "glog/logging.h"

namespace coupon::bench {
namespace {

constexpr size_t kMaxIdsPerWatch = 1000;
constexpr size_t kMaxNotes = 20;

void RaiseMax(std::atomic<int64_t>& max, int64_t value) {
  int64_t seen = max.load(std::memory_order_relaxed);
  while (value > seen &&
         !max.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

}  // namespace

int64_t NowNs() {
  // +1: a clock reading of exactly 0 would read as "not yet".
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
             .count() +
         1;
}

std::string StatusCodeName(int code) {
  // absl and gRPC number the canonical codes alike; abseil knows the names
  // ("INVALID_ARGUMENT", ...) and returns "" for a number it does not know.
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? absl::StrCat("CODE_", code) : name;
}

std::string OutcomeName(int outcome) {
  if (!v1::IssueOutcome_IsValid(outcome)) return absl::StrCat("OUTCOME_", outcome);
  std::string name = v1::IssueOutcome_Name(static_cast<v1::IssueOutcome>(outcome));
  constexpr absl::string_view kPrefix = "ISSUE_OUTCOME_";
  if (absl::StartsWith(name, kPrefix)) name.erase(0, kPrefix.size());
  return name;
}

// ---------------------------------------------------------------------------
// Plan

std::string Plan::UserId(uint32_t user) { return absl::StrCat("user-", user); }

std::string Plan::RequestId(size_t n) const { return absl::StrCat(run_id, "-", n); }

std::optional<size_t> Plan::RequestNumber(absl::string_view request_id) const {
  if (request_id.size() <= run_id.size() + 1 ||
      !absl::StartsWith(request_id, run_id) || request_id[run_id.size()] != '-') {
    return std::nullopt;
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(request_id.substr(run_id.size() + 1), &n) || n >= size()) {
    return std::nullopt;
  }
  return static_cast<size_t>(n);
}

Plan MakePlan(std::string run_id, std::vector<int64_t> coupon_ids,
              uint32_t users, uint64_t requests, uint32_t repeat,
              uint64_t seed) {
  Plan plan;
  plan.run_id = std::move(run_id);
  plan.coupon_ids = std::move(coupon_ids);
  const uint64_t wanted_users = (requests + repeat - 1) / repeat;
  plan.users = static_cast<uint32_t>(std::min<uint64_t>(users, wanted_users));
  plan.user_of.resize(requests);
  for (uint64_t n = 0; n < requests; ++n) {
    plan.user_of[n] = static_cast<uint32_t>(n % plan.users);
  }
  std::mt19937_64 rng(seed);
  std::shuffle(plan.user_of.begin(), plan.user_of.end(), rng);
  return plan;
}

// ---------------------------------------------------------------------------
// Ledger

Ledger::Ledger(const Plan* plan)
    : plan_(plan), slots_(new Slot[plan->size()]) {}

void Ledger::RecordSent(size_t n, int64_t ns) {
  slots_[n].sent_ns.store(ns, std::memory_order_relaxed);
  sent_.fetch_add(1, std::memory_order_relaxed);
}

void Ledger::RecordAnswer(size_t n, int64_t ns, int grpc_code, int outcome,
                          int64_t user_coupon_id) {
  Slot& slot = slots_[n];
  slot.answered_ns.store(ns, std::memory_order_relaxed);
  if (grpc_code != 0) {
    slot.answer.store(static_cast<int16_t>(-grpc_code), std::memory_order_relaxed);
    errors_.fetch_add(1, std::memory_order_relaxed);
  } else {
    slot.answer.store(static_cast<int16_t>(outcome), std::memory_order_relaxed);
    slot.answer_ucid.store(user_coupon_id, std::memory_order_relaxed);
    if (outcome == v1::ISSUE_OUTCOME_ACCEPTED) {
      accepted_.fetch_add(1, std::memory_order_relaxed);
      MarkAndMatch(slot, kAccepted);
    } else {
      final_at_gateway_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  answered_.fetch_add(1, std::memory_order_relaxed);
}

void Ledger::RecordResult(const v1::IssueResult& result, Via via, int64_t ns) {
  std::optional<size_t> n = plan_->RequestNumber(result.request_id());
  if (!n) {
    if (foreign_.fetch_add(1) < 5) {
      Note(absl::StrCat("result for a request id not of this run: ",
                        result.request_id(), " on coupon ", result.coupon_id()));
    }
    return;
  }
  if (result.coupon_id() != plan_->CouponOf(*n) ||
      result.user_id() != Plan::UserId(plan_->user_of[*n])) {
    mismatched_.fetch_add(1);
    Note(absl::StrCat("result for ", result.request_id(), " names coupon ",
                      result.coupon_id(), " user ", result.user_id(),
                      "; it was sent for coupon ", plan_->CouponOf(*n), " user ",
                      Plan::UserId(plan_->user_of[*n])));
  }
  Slot& slot = slots_[*n];
  const int16_t mine = result.outcome() == 0
                           ? kUnspecifiedResult
                           : static_cast<int16_t>(result.outcome());
  int16_t first = 0;
  if (slot.result.compare_exchange_strong(first, mine)) {
    slot.result_ucid.store(result.user_coupon_id(), std::memory_order_relaxed);
    slot.via.store(static_cast<uint8_t>(via), std::memory_order_relaxed);
    slot.result_ns.store(ns, std::memory_order_relaxed);
    results_.fetch_add(1, std::memory_order_relaxed);
    RaiseMax(last_result_ns_, ns);
    MarkAndMatch(slot, kResult);
    return;
  }
  if (first != mine ||
      slot.result_ucid.load(std::memory_order_relaxed) != result.user_coupon_id()) {
    conflicting_.fetch_add(1);
    Note(absl::StrCat("two different results for ", result.request_id(), ": ",
                      OutcomeName(first), " then ", OutcomeName(mine)));
  } else if (via == Via::kLive &&
             slot.via.load(std::memory_order_relaxed) ==
                 static_cast<uint8_t>(Via::kLive)) {
    duplicates_live_.fetch_add(1, std::memory_order_relaxed);
  } else {
    duplicates_late_.fetch_add(1, std::memory_order_relaxed);
  }
}

void Ledger::MarkAndMatch(Slot& slot, uint8_t bit) {
  // Whichever of (ACCEPTED answer, result) comes second completes the pair:
  // a result may well arrive on the stream before the call's answer.
  const uint8_t other = bit == kAccepted ? kResult : kAccepted;
  if (slot.flags.fetch_or(bit) & other) matched_.fetch_add(1);
}

void Ledger::Note(std::string note) {
  std::lock_guard<std::mutex> lock(notes_mu_);
  if (notes_.size() < kMaxNotes) notes_.push_back(std::move(note));
}

std::vector<std::string> Ledger::notes() const {
  std::lock_guard<std::mutex> lock(notes_mu_);
  return notes_;
}

Ledger::Counters Ledger::counters() const {
  Counters c;
  c.sent = sent_.load();
  c.answered = answered_.load();
  c.accepted = accepted_.load();
  c.final_at_gateway = final_at_gateway_.load();
  c.errors = errors_.load();
  c.results = results_.load();
  c.accepted_pending = c.accepted - matched_.load();
  c.duplicates_live = duplicates_live_.load();
  c.duplicates_late = duplicates_late_.load();
  c.conflicting = conflicting_.load();
  c.mismatched = mismatched_.load();
  c.foreign = foreign_.load();
  c.last_result_ns = last_result_ns_.load();
  return c;
}

Ledger::Entry Ledger::entry(size_t n) const {
  const Slot& slot = slots_[n];
  Entry e;
  e.sent_ns = slot.sent_ns.load();
  e.answered_ns = slot.answered_ns.load();
  e.result_ns = slot.result_ns.load();
  const int16_t answer = slot.answer.load();
  if (answer < 0) {
    e.error_code = -answer;
  } else {
    e.answer = answer;
  }
  e.answer_user_coupon_id = slot.answer_ucid.load();
  const int16_t result = slot.result.load();
  e.result = result == kUnspecifiedResult ? 0 : result;
  e.result_user_coupon_id = slot.result_ucid.load();
  e.via = static_cast<Via>(slot.via.load());
  return e;
}

// ---------------------------------------------------------------------------
// IssueDriver

struct IssueDriver::Call {
  size_t n;
  int64_t sent_ns;
  grpc::ClientContext ctx;
  v1::IssueCouponRequest request;
  v1::IssueCouponResponse response;
};

IssueDriver::IssueDriver(v1::CouponService::Stub* stub, const Plan* plan,
                         Ledger* ledger, DriverOptions options)
    : stub_(stub), plan_(plan), ledger_(ledger), options_(options) {}

void IssueDriver::Run() {
  const size_t total = plan_->size();
  if (total == 0) return;
  if (options_.rate <= 0) {
    // Closed loop: `concurrency` calls in flight; each answer starts the next.
    const size_t first = std::min<size_t>(options_.concurrency, total);
    next_.store(first);
    for (size_t n = 0; n < first; ++n) Start(n, NowNs());
  } else {
    // Open loop: call n is due at start + n / rate whatever the answers do.
    // Latency counts from when the call was due, so a client that falls
    // behind shows it instead of hiding it (no coordinated omission).
    const int64_t start = NowNs();
    const double ns_per_call = 1e9 / options_.rate;
    size_t n = 0;
    while (n < total) {
      const int64_t now = NowNs();
      const size_t due = std::min<size_t>(
          total, static_cast<size_t>((now - start) / ns_per_call) + 1);
      for (; n < due; ++n) {
        Start(n, start + static_cast<int64_t>(n * ns_per_call));
      }
      if (n < total) {
        const int64_t wake = start + static_cast<int64_t>(n * ns_per_call);
        std::this_thread::sleep_for(
            std::chrono::nanoseconds(std::max<int64_t>(wake - NowNs(), 0)));
      }
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  all_done_.wait(lock, [&] { return done_ == total; });
}

void IssueDriver::Start(size_t n, int64_t sent_ns) {
  auto* call = new Call;
  call->n = n;
  call->request.set_coupon_id(plan_->CouponOf(n));
  call->request.set_user_id(Plan::UserId(plan_->user_of[n]));
  call->request.set_request_id(plan_->RequestId(n));
  call->ctx.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(options_.deadline));
  RaiseMax(max_in_flight_, in_flight_.fetch_add(1) + 1);
  call->sent_ns = sent_ns;
  ledger_->RecordSent(n, sent_ns);
  stub_->async()->IssueCoupon(&call->ctx, &call->request, &call->response,
                              [this, call](grpc::Status status) {
                                OnDone(call, status);
                              });
}

void IssueDriver::OnDone(Call* call, const grpc::Status& status) {
  const int64_t now = NowNs();
  in_flight_.fetch_sub(1);
  if (status.ok()) {
    ledger_->RecordAnswer(call->n, now, 0, call->response.outcome(),
                          call->response.user_coupon_id());
  } else {
    VLOG(1) << "IssueCoupon " << call->request.request_id() << ": "
            << StatusCodeName(status.error_code()) << " "
            << status.error_message();
    ledger_->RecordAnswer(call->n, now, status.error_code(), 0, 0);
  }
  delete call;
  if (options_.rate <= 0) {
    const size_t n = next_.fetch_add(1);
    if (n < plan_->size()) Start(n, NowNs());
  }
  // Last: once done_ reaches the total, Run may return and destroy us.
  std::lock_guard<std::mutex> lock(mu_);
  if (++done_ == plan_->size()) all_done_.notify_all();
}

// ---------------------------------------------------------------------------
// CouponWatch

CouponWatch::CouponWatch(v1::CouponService::Stub* stub, int64_t coupon_id,
                         Ledger* ledger)
    : stub_(stub), coupon_id_(coupon_id), ledger_(ledger) {
  request_.set_coupon_id(coupon_id);
}

void CouponWatch::Start() {
  stub_->async()->WatchIssueResults(&ctx_, &request_, this);
  StartRead(&result_);
  StartCall();
}

void CouponWatch::OnReadInitialMetadataDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  registered_ = ok;
  done_cv_.notify_all();
}

bool CouponWatch::WaitRegistered(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return done_cv_.wait_until(lock, absl::ToChronoTime(deadline),
                             [&] { return registered_ || done_; });
}

void CouponWatch::OnReadDone(bool ok) {
  if (!ok) return;  // the stream is over; OnDone follows
  ledger_->RecordResult(result_, Via::kLive, NowNs());
  delivered_.fetch_add(1, std::memory_order_relaxed);
  StartRead(&result_);
}

void CouponWatch::OnDone(const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cancelled_) {
    ended_early_ = true;
    LOG(WARNING) << "watch of coupon " << coupon_id_ << " ended early: "
                 << StatusCodeName(status.error_code()) << " "
                 << status.error_message()
                 << "; results after this are fetched by request id";
  }
  status_ = status;
  done_ = true;
  done_cv_.notify_all();
}

void CouponWatch::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
  }
  ctx_.TryCancel();
}

grpc::Status CouponWatch::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return done_; });
  return status_;
}

bool CouponWatch::ended_early() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ended_early_;
}

// ---------------------------------------------------------------------------
// Late results

absl::Status FetchByRequestId(v1::CouponService::Stub* stub, const Plan& plan,
                              const std::vector<size_t>& numbers,
                              absl::Duration deadline_each, Ledger* ledger) {
  absl::Status first_error;
  for (size_t begin = 0; begin < numbers.size(); begin += kMaxIdsPerWatch) {
    const size_t end = std::min(numbers.size(), begin + kMaxIdsPerWatch);
    v1::WatchIssueResultsRequest request;
    for (size_t i = begin; i < end; ++i) {
      request.add_request_ids(plan.RequestId(numbers[i]));
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(deadline_each));
    auto reader = stub->WatchIssueResults(&ctx, request);
    v1::IssueResult result;
    while (reader->Read(&result)) ledger->RecordResult(result, Via::kLate, NowNs());
    grpc::Status status = reader->Finish();
    if (!status.ok() && first_error.ok()) {
      first_error = absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat("watch of ", end - begin, " request ids: ",
                       status.error_message()));
    }
  }
  return first_error;
}

}  // namespace coupon::bench
