#include "gateway/grpc_service.h"

#include <deque>
#include <mutex>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/proto_convert.h"
#include "common/validation.h"
#include "gateway/gateway_metrics.h"
#include "gateway/parsed_request.h"
#include "google/protobuf/descriptor.h"
#include "glog/logging.h"

namespace coupon::gateway {
namespace {

constexpr size_t kMaxWatchedRequestIds = 1000;
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
// A user/coupon watch remembers this many delivered ids to drop replays.
constexpr size_t kMaxRememberedIds = 100'000;

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx,
                                 const absl::Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

/// One WatchIssueResults stream. Registered with the hub from construction
/// until OnDone; OnResult runs on the hub's publishing thread, everything else
/// on gRPC's threads. Writes are serialised through `pending_`. Deletes itself
/// in OnDone, after unregistering, so no OnResult can reach a dead reactor.
class WatchReactor final : public grpc::ServerWriteReactor<v1::IssueResult>,
                           public ResultWatcher {
 public:
  WatchReactor(ResultHub* hub, GatewayStore* store,
               const v1::WatchIssueResultsRequest& req)
      : hub_(hub) {
    WatchStreamsGauge().Inc();  // until OnDone
    absl::Status valid = Validate(req);
    if (!valid.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      FinishLocked(ToGrpcStatus(valid));
      return;
    }
    if (req.request_ids_size() == 0) {
      if (!req.user_id().empty()) hub_->WatchUser(req.user_id(), this);
      if (req.coupon_id() != 0) hub_->WatchCoupon(req.coupon_id(), this);
      AnnounceRegistered();
      return;
    }
    std::vector<std::string> ids(req.request_ids().begin(),
                                 req.request_ids().end());
    {
      std::lock_guard<std::mutex> lock(mu_);
      by_request_ = true;
      remaining_.insert(ids.begin(), ids.end());
    }
    // Register first, then look back: a result decided in between reaches
    // us through OnResult, one decided before through the hub or database.
    for (const IssueResult& r : hub_->WatchRequests(ids, this)) OnResult(r);
    std::vector<std::string> missing;
    {
      std::lock_guard<std::mutex> lock(mu_);
      missing.assign(remaining_.begin(), remaining_.end());
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
    AnnounceRegistered();
  }

  void OnResult(const IssueResult& result) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    if (by_request_) {
      if (remaining_.erase(result.request_id) == 0) return;
    } else {
      if (!delivered_.insert(result.request_id).second) return;
      delivered_order_.push_back(result.request_id);
      if (delivered_order_.size() > kMaxRememberedIds) {
        delivered_.erase(delivered_order_.front());
        delivered_order_.pop_front();
      }
    }
    pending_.push_back(ToProto(result));
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
    pending_.pop_front();
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
    hub_->Unwatch(this);
    WatchStreamsGauge().Dec();
    delete this;
  }

 private:
  static absl::Status Validate(const v1::WatchIssueResultsRequest& req) {
    int selectors = (req.request_ids_size() > 0) + !req.user_id().empty() +
                    (req.coupon_id() != 0);
    if (selectors != 1) {
      return absl::InvalidArgumentError(
          "request_ids, user_id, coupon_id: set exactly one of them");
    }
    if (static_cast<size_t>(req.request_ids_size()) > kMaxWatchedRequestIds) {
      return absl::InvalidArgumentError(
          absl::StrCat("request_ids: at most ", kMaxWatchedRequestIds,
                       " per watch, got ", req.request_ids_size()));
    }
    for (int i = 0; i < req.request_ids_size(); ++i) {
      absl::Status s = ValidateRequestId(absl::StrCat("request_ids[", i, "]"),
                                         req.request_ids(i));
      if (!s.ok()) return s;
    }
    if (!req.user_id().empty()) return ValidateUserId("user_id", req.user_id());
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
  // after it).
  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  ResultHub* hub_;
  std::mutex mu_;
  bool by_request_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool wrote_ = false;  // headers or a result went out
  absl::flat_hash_set<std::string> remaining_;
  absl::flat_hash_set<std::string> delivered_;
  std::deque<std::string> delivered_order_;  // oldest first, for eviction
  std::deque<v1::IssueResult> pending_;  // front() is being written
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
  auto* reactor = ctx->DefaultReactor();
  const absl::Time started = IssueCallStarted();
  absl::Time deadline = std::min(absl::FromChrono(ctx->deadline()),
                                 absl::Now() + default_issue_deadline_);
  IssueCommand cmd{req->coupon_id(), req->user_id(), req->request_id()};
  issue_->Issue(std::move(cmd), deadline,
                [reactor, resp, started](absl::StatusOr<IssueReply> reply) {
                  IssueCallFinished(started, reply);
                  if (!reply.ok()) {
                    reactor->Finish(ToGrpcStatus(reply.status()));
                    return;
                  }
                  resp->set_request_id(reply->request_id);
                  resp->set_outcome(ToProto(reply->outcome));
                  resp->set_user_coupon_id(reply->user_coupon_id);
                  reactor->Finish(grpc::Status::OK);
                });
  return reactor;
}

grpc::ServerWriteReactor<v1::IssueResult>* CouponGrpcService::WatchIssueResults(
    grpc::CallbackServerContext* ctx, const v1::WatchIssueResultsRequest* req) {
  return new WatchReactor(hub_, store_, *req);
}

grpc::ServerUnaryReactor* CouponGrpcService::GetIssueResult(
    grpc::CallbackServerContext* ctx, const v1::GetIssueResultRequest* req,
    v1::IssueResult* resp) {
  absl::Status valid = ValidateRequestId("request_id", req->request_id());
  if (!valid.ok()) return Finish(ctx, valid);
  std::optional<IssueResult> result = hub_->FindResult(req->request_id());
  if (!result) {
    auto stored = store_->FindResults({req->request_id()});
    if (!stored.ok()) return Finish(ctx, stored.status());
    if (stored->empty()) {
      return Finish(ctx, absl::NotFoundError(absl::StrCat(
                             "request_id: no result for \"", req->request_id(),
                             "\" yet: it is still queued, or was never "
                             "accepted")));
    }
    result = stored->front();
  }
  *resp = ToProto(*result);
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
