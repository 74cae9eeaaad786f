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
              const PlanSpec& spec) {
  Plan plan;
  plan.run_id = std::move(run_id);
  plan.coupon_ids = std::move(coupon_ids);
  std::mt19937_64 rng(spec.seed);
  auto new_request = [&plan](uint32_t user) {
    plan.user_of.push_back(user);
    return static_cast<uint32_t>(plan.user_of.size() - 1);
  };

  for (uint32_t u = 0; u < spec.presell; ++u) {
    plan.call_request.push_back(new_request(u));
  }
  std::shuffle(plan.call_request.begin(), plan.call_request.end(), rng);
  plan.presell_calls = plan.call_request.size();

  // Call c of the measured phase is call k = c / users of user c % users:
  // k = 0 sends the user's first id, 1..resend send it again, later k new ids.
  const uint64_t per_user = uint64_t{spec.repeat} + spec.resend;
  const uint32_t users = static_cast<uint32_t>(
      std::min<uint64_t>(spec.users, (spec.calls + per_user - 1) / per_user));
  std::vector<uint32_t> first_request(users);
  std::vector<uint32_t> measured;
  measured.reserve(spec.calls);
  for (uint64_t c = 0; c < spec.calls; ++c) {
    const uint32_t u = static_cast<uint32_t>(c % users);
    const uint64_t k = c / users;
    const uint32_t user = spec.presell + u;
    if (k == 0) {
      first_request[u] = new_request(user);
      measured.push_back(first_request[u]);
    } else if (k <= spec.resend) {
      measured.push_back(first_request[u]);
    } else {
      measured.push_back(new_request(user));
    }
  }
  std::shuffle(measured.begin(), measured.end(), rng);
  plan.call_request.insert(plan.call_request.end(), measured.begin(),
                           measured.end());
  plan.users = spec.presell + users;
  return plan;
}

// ---------------------------------------------------------------------------
// Ledger

Ledger::Ledger(const Plan* plan)
    : plan_(plan),
      slots_(new Slot[plan->size()]),
      calls_(new CallSlot[plan->calls()]) {}

void Ledger::RecordSent(size_t call, int64_t ns) {
  calls_[call].sent_ns.store(ns, std::memory_order_relaxed);
  int64_t unsent = 0;
  slots_[plan_->call_request[call]].sent_ns.compare_exchange_strong(unsent, ns);
  sent_.fetch_add(1, std::memory_order_relaxed);
}

void Ledger::RecordAnswer(size_t call, int64_t ns, int grpc_code, int outcome,
                          int64_t user_coupon_id) {
  CallSlot& cs = calls_[call];
  const int16_t answer = grpc_code != 0 ? static_cast<int16_t>(-grpc_code)
                                        : static_cast<int16_t>(outcome);
  cs.answer.store(answer, std::memory_order_relaxed);
  cs.answered_ns.store(ns, std::memory_order_relaxed);
  if (grpc_code != 0) {
    errors_.fetch_add(1, std::memory_order_relaxed);
  } else if (outcome != v1::ISSUE_OUTCOME_ACCEPTED) {
    final_at_gateway_.fetch_add(1, std::memory_order_relaxed);
  }
  const size_t n = plan_->call_request[call];
  int64_t unanswered = 0;
  slots_[n].answered_ns.compare_exchange_strong(unanswered, ns);
  MergeAnswer(n, answer, user_coupon_id);
  answered_.fetch_add(1, std::memory_order_relaxed);
}

// The request's answer: ACCEPTED once any call was (the request went to the
// issuer), else the first final answer, else the first error.
void Ledger::MergeAnswer(size_t n, int16_t answer, int64_t user_coupon_id) {
  Slot& slot = slots_[n];
  constexpr int16_t kAcceptedAnswer = v1::ISSUE_OUTCOME_ACCEPTED;
  int16_t seen = slot.answer.load();
  while (true) {
    int16_t merged = seen;
    if (answer == kAcceptedAnswer) {
      merged = kAcceptedAnswer;
    } else if (answer > 0 && seen <= 0) {
      merged = answer;
    } else if (answer < 0 && seen == 0) {
      merged = answer;
    } else if (answer > 0 && seen > 0 && seen != kAcceptedAnswer &&
               seen != answer) {
      conflicting_.fetch_add(1);
      Note(absl::StrCat("two different answers for ", plan_->RequestId(n), ": ",
                        OutcomeName(seen), " then ", OutcomeName(answer)));
    }
    if (merged == seen) break;
    if (slot.answer.compare_exchange_weak(seen, merged)) {
      if (merged > 0) slot.answer_ucid.store(user_coupon_id, std::memory_order_relaxed);
      break;
    }
  }
  if (answer == kAcceptedAnswer) MarkAndMatch(slot, kAccepted);
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
  // a result may well arrive on the stream before the call's answer. A
  // request answered ACCEPTED twice (a resend) counts once.
  const uint8_t other = bit == kAccepted ? kResult : kAccepted;
  const uint8_t before = slot.flags.fetch_or(bit);
  if (before & bit) return;
  if (bit == kAccepted) accepted_.fetch_add(1, std::memory_order_relaxed);
  if (before & other) matched_.fetch_add(1);
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

Ledger::CallEntry Ledger::call(size_t c) const {
  const CallSlot& cs = calls_[c];
  CallEntry e;
  e.sent_ns = cs.sent_ns.load();
  e.answered_ns = cs.answered_ns.load();
  const int16_t answer = cs.answer.load();
  if (answer < 0) {
    e.error_code = -answer;
  } else {
    e.answer = answer;
  }
  return e;
}

// ---------------------------------------------------------------------------
// IssueDriver

struct IssueDriver::Call {
  size_t c;
  int64_t sent_ns;
  int attempt = 0;
  std::unique_ptr<grpc::ClientContext> ctx;
  v1::IssueCouponRequest request;
  v1::IssueCouponResponse response;
};

IssueDriver::IssueDriver(std::vector<v1::CouponService::Stub*> stubs,
                         const Plan* plan, Ledger* ledger, DriverOptions options)
    : stubs_(std::move(stubs)), plan_(plan), ledger_(ledger), options_(options) {
  CHECK(!stubs_.empty());
  retry_thread_ = std::thread([this] { RetryLoop(); });
}

IssueDriver::~IssueDriver() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  retry_cv_.notify_all();
  retry_thread_.join();
}

void IssueDriver::Run(size_t begin, size_t end) {
  end = std::min(end, plan_->calls());
  if (begin >= end) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    remaining_ = end - begin;
  }
  end_.store(end);
  if (options_.rate <= 0) {
    // Closed loop: `concurrency` calls in flight; each answer starts the next.
    const size_t first = std::min<size_t>(begin + options_.concurrency, end);
    next_.store(first);
    for (size_t c = begin; c < first; ++c) Start(c, NowNs());
  } else {
    // Open loop: call c is due at start + (c - begin) / rate whatever the
    // answers do. Latency counts from when the call was due, so a client that
    // falls behind shows it instead of hiding it (no coordinated omission).
    const int64_t start = NowNs();
    const double ns_per_call = 1e9 / options_.rate;
    auto due_ns = [&](size_t c) {
      return start + static_cast<int64_t>((c - begin) * ns_per_call);
    };
    size_t c = begin;
    while (c < end) {
      const size_t due = std::min<size_t>(
          end, begin + static_cast<size_t>((NowNs() - start) / ns_per_call) + 1);
      for (; c < due; ++c) Start(c, due_ns(c));
      if (c < end) {
        std::this_thread::sleep_for(
            std::chrono::nanoseconds(std::max<int64_t>(due_ns(c) - NowNs(), 0)));
      }
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  all_done_.wait(lock, [&] { return remaining_ == 0; });
}

void IssueDriver::Start(size_t c, int64_t sent_ns) {
  auto* call = new Call;
  call->c = c;
  const size_t n = plan_->call_request[c];
  call->request.set_coupon_id(plan_->CouponOf(n));
  call->request.set_user_id(Plan::UserId(plan_->user_of[n]));
  call->request.set_request_id(plan_->RequestId(n));
  RaiseMax(max_in_flight_, in_flight_.fetch_add(1) + 1);
  call->sent_ns = sent_ns;
  ledger_->RecordSent(c, sent_ns);
  Send(call);
}

void IssueDriver::Send(Call* call) {
  call->ctx = std::make_unique<grpc::ClientContext>();
  call->ctx->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(options_.deadline));
  v1::CouponService::Stub* stub = stubs_[(call->c + call->attempt) % stubs_.size()];
  stub->async()->IssueCoupon(call->ctx.get(), &call->request, &call->response,
                             [this, call](grpc::Status status) {
                               OnDone(call, status);
                             });
}

void IssueDriver::OnDone(Call* call, const grpc::Status& status) {
  const int64_t now = NowNs();
  if (!status.ok()) {
    VLOG(1) << "IssueCoupon " << call->request.request_id() << " attempt "
            << call->attempt << ": " << StatusCodeName(status.error_code()) << " "
            << status.error_message();
    // CANCELLED too: this client never cancels a call, so a CANCELLED is the
    // server's. gRPC 1.51 answers CANCELLED, not UNAVAILABLE, to calls that
    // arrived but were not started yet when a server shuts down
    // (grpc/grpc#41785); the same request id sent again is safe either way.
    const bool retryable = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                           status.error_code() == grpc::StatusCode::CANCELLED;
    if (retryable && call->attempt < options_.retries) {
      ++call->attempt;
      retries_.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard<std::mutex> lock(mu_);
      retry_queue_.emplace_back(
          now + absl::ToInt64Nanoseconds(options_.retry_backoff), call);
      retry_cv_.notify_all();
      return;
    }
    ledger_->RecordAnswer(call->c, now, status.error_code(), 0, 0);
  } else {
    ledger_->RecordAnswer(call->c, now, 0, call->response.outcome(),
                          call->response.user_coupon_id());
  }
  Finish(call);
}

void IssueDriver::Finish(Call* call) {
  delete call;
  in_flight_.fetch_sub(1);
  if (options_.rate <= 0) {
    const size_t c = next_.fetch_add(1);
    if (c < end_.load()) Start(c, NowNs());
  }
  // Last: once remaining_ reaches 0, Run may return and destroy us.
  std::lock_guard<std::mutex> lock(mu_);
  if (--remaining_ == 0) all_done_.notify_all();
}

void IssueDriver::RetryLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (retry_queue_.empty()) {
      retry_cv_.wait(lock);
      continue;
    }
    auto first = std::min_element(retry_queue_.begin(), retry_queue_.end());
    const int64_t wait = first->first - NowNs();
    if (wait > 0) {
      retry_cv_.wait_for(lock, std::chrono::nanoseconds(wait));
      continue;
    }
    Call* call = first->second;
    retry_queue_.erase(first);
    lock.unlock();
    Send(call);
    lock.lock();
  }
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

absl::Status FetchByRequestId(const std::vector<v1::CouponService::Stub*>& stubs,
                              const Plan& plan, const std::vector<size_t>& numbers,
                              absl::Duration deadline_each, Ledger* ledger) {
  absl::Status first_error;
  for (size_t begin = 0; begin < numbers.size(); begin += kMaxIdsPerWatch) {
    const size_t end = std::min(numbers.size(), begin + kMaxIdsPerWatch);
    v1::WatchIssueResultsRequest request;
    for (size_t i = begin; i < end; ++i) {
      request.add_request_ids(plan.RequestId(numbers[i]));
    }
    absl::Status chunk_error;
    for (v1::CouponService::Stub* stub : stubs) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(deadline_each));
      auto reader = stub->WatchIssueResults(&ctx, request);
      v1::IssueResult result;
      while (reader->Read(&result)) ledger->RecordResult(result, Via::kLate, NowNs());
      grpc::Status status = reader->Finish();
      if (status.ok()) {
        chunk_error = absl::OkStatus();
        break;
      }
      chunk_error = absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat("watch of ", end - begin, " request ids: ",
                       status.error_message()));
    }
    if (!chunk_error.ok() && first_error.ok()) first_error = chunk_error;
  }
  return first_error;
}

}  // namespace coupon::bench
