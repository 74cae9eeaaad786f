#pragma once

// The gRPC surface of the gateway: thin handlers that convert protos, call the
// domain classes and map absl::Status to grpc::Status in one place.

#include "absl/time/time.h"
#include "common/service/timer_thread.h"
#include "coupon/v1/coupon_service.grpc.pb.h"
#include "gateway/issue/auth.h"
#include "gateway/store/gateway_store.h"
#include "gateway/issue/issue_service.h"
#include "gateway/results/result_hub.h"

namespace coupon::gateway {

grpc::Status ToGrpcStatus(const absl::Status& status);

// What the call presents: its `authorization` metadata and, under mutual
// TLS, the names of the client certificate the handshake verified.
Caller CallerOf(const grpc::ServerContextBase& ctx);

struct ServiceOptions {
  // IssueCoupon's deadline when the caller sets none.
  absl::Duration issue_deadline = absl::Seconds(5);
  // How long IssueCoupon with wait_for_result waits at most, without a
  // deadline of the caller's.
  absl::Duration max_result_wait = absl::Seconds(10);
  // Watches with positions get at most one update per request this often.
  absl::Duration position_interval = absl::Seconds(1);
};

/// Callback-API service. Thread-safe: gRPC calls it from its own threads.
/// The collaborators must outlive the server it is registered with, and so
/// must the service: its timer thread answers waiting IssueCoupon calls and
/// ticks the watches' positions. Every RPC that changes a coupon asks
/// `admin` first.
class CouponGrpcService final : public v1::CouponService::CallbackService {
 public:
  CouponGrpcService(IssueService* issue, ResultHub* hub, GatewayStore* store,
                    AdminAuthorizer* admin, ServiceOptions options)
      : issue_(issue),
        hub_(hub),
        store_(store),
        admin_(admin),
        options_(options) {
    ParseRequestsOurselves();
  }

  grpc::ServerUnaryReactor* CreateCoupon(grpc::CallbackServerContext* ctx,
                                         const v1::CreateCouponRequest* req,
                                         v1::Coupon* resp) override;
  grpc::ServerUnaryReactor* GetCoupon(grpc::CallbackServerContext* ctx,
                                      const v1::GetCouponRequest* req,
                                      v1::Coupon* resp) override;
  grpc::ServerUnaryReactor* IssueCoupon(grpc::CallbackServerContext* ctx,
                                        const v1::IssueCouponRequest* req,
                                        v1::IssueCouponResponse* resp) override;
  grpc::ServerWriteReactor<v1::IssueResult>* WatchIssueResults(
      grpc::CallbackServerContext* ctx,
      const v1::WatchIssueResultsRequest* req) override;
  grpc::ServerUnaryReactor* GetIssueResult(grpc::CallbackServerContext* ctx,
                                           const v1::GetIssueResultRequest* req,
                                           v1::IssueResult* resp) override;
  grpc::ServerUnaryReactor* ListUserCoupons(
      grpc::CallbackServerContext* ctx, const v1::ListUserCouponsRequest* req,
      v1::ListUserCouponsResponse* resp) override;

 private:
  // Replaces the generated handlers with ones that parse each request
  // themselves, so bytes protobuf refuses get INVALID_ARGUMENT naming the
  // field (gateway/api/parsed_request.h).
  void ParseRequestsOurselves();

  IssueService* issue_;
  ResultHub* hub_;
  GatewayStore* store_;
  AdminAuthorizer* admin_;
  const ServiceOptions options_;
  service::TimerThread timers_;
};

}  // namespace coupon::gateway
