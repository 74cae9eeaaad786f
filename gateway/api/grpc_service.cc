#include "gateway/api/grpc_service.h"

#include <deque>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/wire/proto_convert.h"
#include "common/domain/validation.h"
#include "gateway/api/gateway_metrics.h"
#include "gateway/api/parsed_request.h"
#include "google/protobuf/descriptor.h"
#include "glog/logging.h"

namespace coupon::gateway {
namespace {

constexpr size_t kMaxWatchedRequestIds = 1000;
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
// Results one watch holds for a client that reads slower than results come
// (a worker's batch brings hundreds at once), before it ends the stream;
// every watch's queue also counts against the gateway's --watch_queue_mib.
constexpr size_t kMaxQueuedResults = 8192;

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx,
                                 const absl::Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Whose requests a lookup by request id asks about; empty: anyone's.
struct Scope {
  std::string user_id;
  int64_t coupon_id = 0;

  bool set() const { return !user_id.empty() || coupon_id != 0; }
  bool Admits(const IssueResult& r) const {
    return (user_id.empty() || r.user_id == user_id) &&
           (coupon_id == 0 || r.coupon_id == coupon_id);
  }
  // What this caller is told about an id that belongs to someone else: the
  // id is taken, and nothing of the other caller's result.
  IssueResult Reused(const std::string& request_id) const {
    IssueResult r;
    r.request_id = request_id;
    r.coupon_id = coupon_id;
    r.user_id = user_id;
    r.outcome = Outcome::kRequestIdReused;
    r.decided_at = absl::ToUnixMicros(absl::Now());
    return r;
  }
};

// The answer a lookup by request id gets from `result`, or nothing when the
// result is not for this lookup: another caller's REQUEST_ID_REUSED, or,
// without a scope, any REQUEST_ID_REUSED (the id's own result comes).
std::optional<IssueResult> ForScope(const Scope& scope, const IssueResult& result) {
  if (result.outcome == Outcome::kRequestIdReused) {
    if (scope.set() && scope.Admits(result)) return result;
    return std::nullopt;
  }
  if (scope.set() && !scope.Admits(result)) return scope.Reused(result.request_id);
  return result;
}

/// One WatchIssueResults stream. Open in the registry from construction
/// until OnDone; OnResult runs on whichever thread delivers, everything else
/// on gRPC's threads. Writes are serialised through `pending_`, which holds
/// at most kMaxQueuedResults: a client that does not read has its stream
/// ended. Deletes itself in OnDone, after closing its registration, so no
/// OnResult can reach a dead reactor.
class WatchReactor final : public grpc::ServerWriteReactor<v1::IssueResult>,
                           public ResultWatcher {
 public:
  WatchReactor(ResultHub* hub, GatewayStore* store,
               const v1::WatchIssueResultsRequest& req,
               service::TimerThread* timers, absl::Duration position_interval)
      : hub_(hub), timers_(timers), position_interval_(position_interval) {
    WatchStreamsGauge().Inc();  // until OnDone
    absl::Status valid = Validate(req);
    if (valid.ok()) valid = hub_->watches().Open(this);
    if (!valid.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      FinishLocked(ToGrpcStatus(valid));
      return;
    }
    if (req.request_ids_size() == 0) {
      if (!req.user_id().empty()) hub_->watches().WatchUser(req.user_id(), this);
      if (req.coupon_id() != 0) hub_->watches().WatchCoupon(req.coupon_id(), this);
      AnnounceRegistered();
      return;
    }
    std::vector<std::string> ids(req.request_ids().begin(),
                                 req.request_ids().end());
    {
      std::lock_guard<std::mutex> lock(mu_);
      by_request_ = true;
      scope_ = Scope{req.user_id(), req.coupon_id()};
      remaining_.insert(ids.begin(), ids.end());
    }
    // Register first, then look back: a result decided in between reaches
    // us through OnResult, one decided before through the cache or the
    // database.
    hub_->watches().WatchRequests(ids, this);
    std::vector<std::string> missing;
    for (const std::string& id : ids) {
      if (std::optional<IssueResult> r = hub_->cache().Find(id)) {
        OnResult(*r);
      } else {
        missing.push_back(id);
      }
    }
    if (!missing.empty()) {
      auto stored = store->FindResults(missing);
      if (!stored.ok()) {
        LOG(WARNING) << "watch: result lookup failed: " << stored.status();
        std::lock_guard<std::mutex> lock(mu_);
        FinishLocked(ToGrpcStatus(stored.status()));
        return;
      }
      for (const IssueResult& r : *stored) OnResult(r);
    }
    // Positions: one now, then every interval while ids are queued. Watches
    // by user or coupon get none (a coupon's watch would get every queued
    // request of a sale, each interval).
    if (req.with_positions()) SendPositions();
    AnnounceRegistered();
  }

  void OnResult(const IssueResult& result) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    std::optional<IssueResult> answer = result;
    if (by_request_) {
      if (!remaining_.contains(result.request_id)) return;
      answer = ForScope(scope_, result);
      if (!answer) return;
      remaining_.erase(result.request_id);
      sent_ahead_.erase(result.request_id);
    }
    // Watches by user or coupon get each result once from the hub, which
    // passes on only what is news to it.
    EnqueueLocked(*answer);
  }

  // Sends a QUEUED result for each watched id this gateway queued whose
  // place in line is known and changed since the last one, then comes back
  // after the interval. On the timer thread (and once from the
  // constructor).
  void SendPositions() {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || done_) return;
    for (const std::string& id : remaining_) {
      std::optional<IssueResult> queued = hub_->cache().FindQueued(id);
      if (!queued || !queued->position) continue;
      if (scope_.set() && !scope_.Admits(*queued)) continue;  // not theirs
      auto [last, added] = sent_ahead_.try_emplace(id, queued->position->requests_ahead);
      if (!added && last->second == queued->position->requests_ahead) continue;
      last->second = queued->position->requests_ahead;
      queued->decided_at = absl::ToUnixMicros(absl::Now());
      EnqueueLocked(*queued);
      if (finished_) return;
    }
    tick_ = timers_->Schedule(absl::Now() + position_interval_,
                              [this] { SendPositions(); });
  }

  void EnqueueLocked(const IssueResult& answer) {
    const size_t bytes = QueuedBytes(answer);
    if (pending_.size() >= kMaxQueuedResults ||
        !hub_->watches().ReserveQueued(bytes)) {
      FinishLocked(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("this watch fell ", pending_.size(),
                       " results behind (the client reads slower than they "
                       "come). Watch again by request_ids: that sends the "
                       "results decided meanwhile too")));
      return;
    }
    pending_.push_back(ToProto(answer));
    queued_bytes_ += bytes;
    wrote_ = true;
    if (!writing_) {
      writing_ = true;
      StartWrite(&pending_.front());
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "stream broken; watch again"));
      return;
    }
    DropFront();
    if (finished_) return;
    if (!pending_.empty()) {
      writing_ = true;
      StartWrite(&pending_.front());
    } else if (by_request_ && remaining_.empty()) {
      FinishLocked(grpc::Status::OK);
    }
  }

  void OnShutdown() override {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "gateway shutting down; watch again on another "
                              "gateway, no result is lost"));
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    service::TimerThread::Id tick;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;  // SendPositions schedules no more
      tick = tick_;
    }
    if (tick != 0) timers_->Cancel(tick);
    hub_->watches().Close(this);
    hub_->watches().ReleaseQueued(queued_bytes_);
    WatchStreamsGauge().Dec();
    delete this;
  }

 private:
  static absl::Status Validate(const v1::WatchIssueResultsRequest& req) {
    if (req.request_ids_size() == 0) {
      if (req.user_id().empty() == (req.coupon_id() == 0)) {
        return absl::InvalidArgumentError(
            "request_ids, user_id, coupon_id: set request_ids, or exactly one "
            "of user_id and coupon_id (with request_ids, user_id and "
            "coupon_id say whose the ids are)");
      }
    } else if (static_cast<size_t>(req.request_ids_size()) > kMaxWatchedRequestIds) {
      return absl::InvalidArgumentError(
          absl::StrCat("request_ids: at most ", kMaxWatchedRequestIds,
                       " per watch, got ", req.request_ids_size()));
    }
    for (int i = 0; i < req.request_ids_size(); ++i) {
      absl::Status s = ValidateRequestId(absl::StrCat("request_ids[", i, "]"),
                                         req.request_ids(i));
      if (!s.ok()) return s;
    }
    if (!req.user_id().empty()) {
      if (absl::Status s = ValidateUserId("user_id", req.user_id()); !s.ok()) return s;
    }
    if (req.coupon_id() != 0) return ValidateCouponId("coupon_id", req.coupon_id());
    return absl::OkStatus();
  }

  // Sends the response headers as soon as the watch is registered, so a client
  // knows from then on that no result will pass it by. Skipped when a result
  // (which carries the headers) or the final status went out first.
  void AnnounceRegistered() {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || wrote_) return;
    wrote_ = true;
    StartSendInitialMetadata();
  }

  // Finishes once; a write in flight completes first (gRPC sends the status
  // after it), and what is queued behind it is dropped.
  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    while (pending_.size() > (writing_ ? 1 : 0)) {
      const v1::IssueResult& last = pending_.back();
      const size_t bytes = QueuedBytes(last);
      queued_bytes_ -= bytes;
      hub_->watches().ReleaseQueued(bytes);
      pending_.pop_back();
    }
    Finish(status);
  }

  void DropFront() {
    const size_t bytes = QueuedBytes(pending_.front());
    queued_bytes_ -= bytes;
    hub_->watches().ReleaseQueued(bytes);
    pending_.pop_front();
  }

  // What a queued result holds, about.
  template <typename R>
  static size_t QueuedBytes(const R& r) {
    return sizeof(v1::IssueResult) + r.request_id().size() + r.user_id().size();
  }
  static size_t QueuedBytes(const IssueResult& r) {
    return sizeof(v1::IssueResult) + r.request_id.size() + r.user_id.size();
  }

  ResultHub* hub_;
  service::TimerThread* timers_;
  const absl::Duration position_interval_;
  std::mutex mu_;
  bool done_ = false;                 // OnDone began
  service::TimerThread::Id tick_ = 0;  // the next SendPositions
  // Per queued id, the requests ahead in its last QUEUED result.
  absl::flat_hash_map<std::string, int64_t> sent_ahead_;
  bool by_request_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool wrote_ = false;  // headers or a result went out
  Scope scope_;
  size_t queued_bytes_ = 0;  // of pending_, counted in the registry too
  absl::flat_hash_set<std::string> remaining_;
  std::deque<v1::IssueResult> pending_;  // front() is being written
};

// One line per answer at GLOG_v=1, so that an operator can follow a request
// id from the gateway to the worker and back.
void LogAnswer(const absl::StatusOr<IssueReply>& reply) {
  if (!VLOG_IS_ON(1)) return;
  if (reply.ok()) {
    VLOG(1) << "IssueCoupon request " << reply->request_id << " answered "
            << OutcomeName(reply->outcome)
            << (reply->position ? absl::StrCat(" with ", reply->position->requests_ahead,
                                               " ahead")
                                : std::string());
  } else {
    VLOG(1) << "IssueCoupon answered " << reply.status();
  }
}

void FillIssueResponse(const IssueReply& reply, v1::IssueCouponResponse* resp) {
  resp->set_request_id(reply.request_id);
  resp->set_outcome(ToProto(reply.outcome));
  resp->set_user_coupon_id(reply.user_coupon_id);
  if (reply.position) *resp->mutable_position() = ToProto(*reply.position);
}

/// One IssueCoupon call with wait_for_result: the issuer's answer, and when
/// that is ACCEPTED, the request's final result from the hub, or ACCEPTED
/// with the place in line at `wait_until`. No thread waits: results come
/// through OnResult (with the registry's lock held), the time limit through
/// the timer thread. Deletes itself once gRPC is done with it (OnDone) and
/// the issuer has answered, whichever is last.
class WaitingIssueReactor final : public grpc::ServerUnaryReactor,
                                  public ResultWatcher {
 public:
  WaitingIssueReactor(ResultHub* hub, service::TimerThread* timers,
                      v1::IssueCouponResponse* resp, int64_t coupon_id,
                      std::string user_id, absl::Time wait_until)
      : hub_(hub),
        timers_(timers),
        resp_(resp),
        coupon_id_(coupon_id),
        user_id_(std::move(user_id)),
        wait_until_(wait_until) {}

  // The issuer's answer; called exactly once.
  void Answered(absl::StatusOr<IssueReply> reply) {
    if (!reply.ok() || reply->outcome != Outcome::kAccepted) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (reply.ok()) {
          FinishLocked(*reply);
        } else {
          FinishLocked(ToGrpcStatus(reply.status()));
        }
      }
      return Release();
    }
    const std::string id = reply->request_id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      accepted_ = *reply;
      if (cancelled_) FinishLocked(grpc::Status::CANCELLED);
      if (finished_) return Release();
    }
    // Register, then look back: a result decided in between comes through
    // OnResult, one decided before is in the cache. A gateway at its watch
    // limit answers ACCEPTED now.
    if (!hub_->watches().Open(this).ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        FinishLocked(accepted_);
      }
      return Release();
    }
    opened_ = true;
    hub_->watches().WatchRequests({id}, this);
    if (std::optional<IssueResult> r = hub_->cache().Find(id)) OnResult(*r);
    {
      std::lock_guard<std::mutex> lock(mu_);
      answered_ = true;
      if (!finished_) {
        timer_ = timers_->Schedule(wait_until_, [this] { TimeUp(); });
      }
    }
    Release();
  }

  void OnResult(const IssueResult& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || r.request_id != accepted_.request_id ||
        !r.BelongsTo(coupon_id_, user_id_)) {
      return;  // another caller's use of the id: ours comes as REUSED
    }
    if (r.outcome == Outcome::kRequestIdReused) {
      return FinishLocked(ToGrpcStatus(RequestIdReused(r.request_id)));
    }
    if (!IsStoredOutcome(r.outcome)) return;
    FinishLocked(IssueReply{r.request_id, r.outcome, r.user_coupon_id, std::nullopt});
  }

  // Queued, and the result comes later elsewhere: ACCEPTED says so.
  void OnShutdown() override {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(WithPositionNow(accepted_));
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    // Before the issuer answered, Answered finishes (gRPC must not be done
    // with us while the issuer still holds us).
    if (answered_) FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override { Release(); }

 private:
  void TimeUp() {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(WithPositionNow(accepted_));
  }

  IssueReply WithPositionNow(IssueReply reply) const {
    if (std::optional<IssueResult> q = hub_->cache().FindQueued(reply.request_id);
        q && q->position) {
      reply.position = q->position;
    }
    return reply;
  }

  void FinishLocked(const IssueReply& reply) {
    if (finished_) return;
    FillIssueResponse(reply, resp_);
    FinishLocked(grpc::Status::OK);
  }
  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  // Drops one of the two holds (gRPC's until OnDone, the issuer's until
  // Answered returns); the last one cleans up.
  void Release() {
    service::TimerThread::Id timer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--holds_ > 0) return;
      timer = timer_;
    }
    if (timer != 0) timers_->Cancel(timer);
    if (opened_) hub_->watches().Close(this);
    delete this;
  }

  ResultHub* hub_;
  service::TimerThread* timers_;
  v1::IssueCouponResponse* resp_;
  const int64_t coupon_id_;
  const std::string user_id_;
  const absl::Time wait_until_;
  bool opened_ = false;  // written by Answered only, read by the last Release
  std::mutex mu_;
  int holds_ = 2;
  bool answered_ = false;  // Answered has registered us and set the timer
  bool cancelled_ = false;
  bool finished_ = false;
  IssueReply accepted_;
  service::TimerThread::Id timer_ = 0;
};

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

Caller CallerOf(const grpc::ServerContextBase& ctx) {
  Caller caller;
  const auto& metadata = ctx.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    caller.authorization = std::string(it->second.data(), it->second.size());
  }
  // Only names the TLS handshake verified against --tls_client_ca_file.
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth && auth->IsPeerAuthenticated()) {
    for (const char* property :
         {"x509_common_name", "x509_subject_alternative_name"}) {
      for (const grpc::string_ref& name : auth->FindPropertyValues(property)) {
        caller.certificate_names.emplace_back(name.data(), name.size());
      }
    }
  }
  return caller;
}

void CouponGrpcService::ParseRequestsOurselves() {
  // gRPC's generated service numbers its methods in declaration order, as the
  // descriptor does.
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::CouponService::service_full_name());
  CHECK(service != nullptr);
  auto index = [service](const char* name) {
    const google::protobuf::MethodDescriptor* method =
        service->FindMethodByName(name);
    CHECK(method != nullptr) << name;
    return method->index();
  };
  using S = CouponGrpcService;
  MarkMethodCallback(index("CreateCoupon"),
                     ParsedUnaryHandler(this, &S::CreateCoupon, ToGrpcStatus));
  MarkMethodCallback(index("GetCoupon"),
                     ParsedUnaryHandler(this, &S::GetCoupon, ToGrpcStatus));
  MarkMethodCallback(index("IssueCoupon"),
                     ParsedUnaryHandler(this, &S::IssueCoupon, ToGrpcStatus));
  MarkMethodCallback(
      index("WatchIssueResults"),
      ParsedServerStreamingHandler(this, &S::WatchIssueResults, ToGrpcStatus));
  MarkMethodCallback(
      index("GetIssueResult"),
      ParsedUnaryHandler(this, &S::GetIssueResult, ToGrpcStatus));
  MarkMethodCallback(
      index("ListUserCoupons"),
      ParsedUnaryHandler(this, &S::ListUserCoupons, ToGrpcStatus));
  CHECK_EQ(service->method_count(), 6) << "a new method needs its line above";
}

grpc::ServerUnaryReactor* CouponGrpcService::CreateCoupon(
    grpc::CallbackServerContext* ctx, const v1::CreateCouponRequest* req,
    v1::Coupon* resp) {
  absl::StatusOr<std::string> admin = admin_->Authorize(CallerOf(*ctx));
  if (!admin.ok()) {
    LOG_EVERY_N(WARNING, 100) << "CreateCoupon refused from " << ctx->peer()
                              << ": " << admin.status();
    return Finish(ctx, admin.status());
  }
  absl::Status valid = ValidateCouponName("name", req->name());
  if (valid.ok()) valid = ValidateTotalQuantity("total_quantity", req->total_quantity());
  NewCoupon coupon;
  coupon.name = req->name();
  coupon.total_quantity = req->total_quantity();
  // An unset time leaves that side of the window open.
  auto window_edge = [&valid](const char* field, bool has,
                              const google::protobuf::Timestamp& ts,
                              std::optional<UnixMicros>* out) {
    if (!valid.ok() || !has) return;
    absl::StatusOr<UnixMicros> at = FromProtoTime(field, ts);
    if (at.ok()) *out = *at;
    valid = at.status();
  };
  window_edge("starts_at", req->has_starts_at(), req->starts_at(),
              &coupon.starts_at);
  window_edge("ends_at", req->has_ends_at(), req->ends_at(), &coupon.ends_at);
  if (valid.ok() && coupon.starts_at && coupon.ends_at &&
      *coupon.starts_at >= *coupon.ends_at) {
    valid = absl::InvalidArgumentError("ends_at: must be after starts_at");
  }
  if (valid.ok() && coupon.ends_at &&
      *coupon.ends_at <= absl::ToUnixMicros(absl::Now())) {
    valid = absl::InvalidArgumentError("ends_at: is in the past");
  }
  if (!valid.ok()) return Finish(ctx, valid);
  auto created = store_->CreateCoupon(coupon);
  if (!created.ok()) return Finish(ctx, created.status());
  LOG(INFO) << "created coupon " << created->coupon_id << " with "
            << created->total_quantity << " copies for " << *admin;
  *resp = ToProto(*created);
  return Finish(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* CouponGrpcService::GetCoupon(
    grpc::CallbackServerContext* ctx, const v1::GetCouponRequest* req,
    v1::Coupon* resp) {
  absl::Status valid = ValidateCouponId("coupon_id", req->coupon_id());
  if (!valid.ok()) return Finish(ctx, valid);
  auto coupon = store_->GetCoupon(req->coupon_id());
  if (!coupon.ok()) return Finish(ctx, coupon.status());
  *resp = ToProto(*coupon);
  return Finish(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* CouponGrpcService::IssueCoupon(
    grpc::CallbackServerContext* ctx, const v1::IssueCouponRequest* req,
    v1::IssueCouponResponse* resp) {
  const absl::Time started = IssueCallStarted();
  const absl::Time now = absl::Now();
  const absl::Time call_deadline = absl::FromChrono(ctx->deadline());
  const absl::Time deadline = std::min(call_deadline, now + options_.issue_deadline);
  IssueCommand cmd{req->coupon_id(), req->user_id(), req->request_id()};
  VLOG(1) << "IssueCoupon request " << cmd.request_id << " coupon " << cmd.coupon_id
          << " user " << cmd.user_id << (req->wait_for_result() ? " (waits)" : "");
  if (!req->wait_for_result()) {
    auto* reactor = ctx->DefaultReactor();
    issue_->Issue(std::move(cmd), deadline,
                  [reactor, resp, started](absl::StatusOr<IssueReply> reply) {
                    IssueCallFinished(started, reply);
                    LogAnswer(reply);
                    if (!reply.ok()) {
                      reactor->Finish(ToGrpcStatus(reply.status()));
                      return;
                    }
                    FillIssueResponse(*reply, resp);
                    reactor->Finish(grpc::Status::OK);
                  });
    return reactor;
  }
  // Answered a little before the caller's deadline, so that the answer
  // still reaches it (as the Kafka issuer does).
  const absl::Time wait_deadline = std::min(call_deadline, now + options_.max_result_wait);
  const absl::Time wait_until =
      wait_deadline - std::min(absl::Milliseconds(250), (wait_deadline - now) / 10);
  auto* reactor = new WaitingIssueReactor(hub_, &timers_, resp, cmd.coupon_id,
                                          cmd.user_id, wait_until);
  issue_->Issue(std::move(cmd), deadline,
                [reactor, started](absl::StatusOr<IssueReply> reply) {
                  IssueCallFinished(started, reply);
                  LogAnswer(reply);
                  reactor->Answered(std::move(reply));
                });
  return reactor;
}

grpc::ServerWriteReactor<v1::IssueResult>* CouponGrpcService::WatchIssueResults(
    grpc::CallbackServerContext* ctx, const v1::WatchIssueResultsRequest* req) {
  return new WatchReactor(hub_, store_, *req, &timers_, options_.position_interval);
}

grpc::ServerUnaryReactor* CouponGrpcService::GetIssueResult(
    grpc::CallbackServerContext* ctx, const v1::GetIssueResultRequest* req,
    v1::IssueResult* resp) {
  absl::Status valid = ValidateRequestId("request_id", req->request_id());
  if (valid.ok() && !req->user_id().empty()) {
    valid = ValidateUserId("user_id", req->user_id());
  }
  if (valid.ok() && req->coupon_id() != 0) {
    valid = ValidateCouponId("coupon_id", req->coupon_id());
  }
  if (!valid.ok()) return Finish(ctx, valid);
  std::optional<IssueResult> result = hub_->cache().Find(req->request_id());
  if (!result) {
    auto stored = store_->FindResults({req->request_id()});
    if (!stored.ok()) return Finish(ctx, stored.status());
    if (!stored->empty()) result = stored->front();
  }
  // Queued here and not decided yet: only this gateway knows where.
  if (!result && req->with_position()) result = hub_->cache().FindQueued(req->request_id());
  if (!result) {
    return Finish(ctx, absl::NotFoundError(absl::StrCat(
                           "request_id: no result for \"", req->request_id(),
                           "\" yet: it is still queued, or was never "
                           "accepted")));
  }
  if (result->outcome == Outcome::kQueued) {
    result->decided_at = absl::ToUnixMicros(absl::Now());
  }
  *resp = ToProto(*ForScope(Scope{req->user_id(), req->coupon_id()}, *result));
  return Finish(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* CouponGrpcService::ListUserCoupons(
    grpc::CallbackServerContext* ctx, const v1::ListUserCouponsRequest* req,
    v1::ListUserCouponsResponse* resp) {
  absl::Status valid = ValidateUserId("user_id", req->user_id());
  if (valid.ok() && (req->page_size() < 0 || req->page_size() > kMaxPageSize)) {
    valid = absl::InvalidArgumentError(absl::StrCat(
        "page_size: must be between 0 and ", kMaxPageSize, ", got ",
        req->page_size()));
  }
  if (valid.ok() && req->after_user_coupon_id() < 0) {
    valid = absl::InvalidArgumentError("after_user_coupon_id: must not be negative");
  }
  if (!valid.ok()) return Finish(ctx, valid);
  const int page = req->page_size() == 0 ? kDefaultPageSize : req->page_size();
  auto rows = store_->ListUserCoupons(req->user_id(), req->after_user_coupon_id(),
                                      page);
  if (!rows.ok()) return Finish(ctx, rows.status());
  for (const UserCouponRow& row : *rows) *resp->add_coupons() = ToProto(row);
  if (static_cast<int>(rows->size()) == page) {
    resp->set_next_after_user_coupon_id(rows->back().user_coupon_id);
  }
  return Finish(ctx, absl::OkStatus());
}

}  // namespace coupon::gateway
