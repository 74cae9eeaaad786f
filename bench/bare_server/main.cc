// bare-grpc-server: the ceiling of any gateway on this machine. It serves
// CouponService from the same gRPC build, with the same callback API and
// threads as the gateway, and does no work: IssueCoupon answers SOLD_OUT at
// once, CreateCoupon hands out numbers, a watch only waits to be cancelled.
// bench/compare.sh drives it with `flashsale --verify=false` and with ghz.
// Every flag can also be set by the environment variable of its name in
// upper case.

#include <atomic>
#include <csignal>
#include <iostream>
#include <memory>
#include <thread>

#include "absl/flags/flag.h"
#include "common/service/flags_env.h"
#include "coupon/v1/coupon_service.grpc.pb.h"
#include "glog/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50061", "gRPC address to listen on.");

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

/// Thread-safe: gRPC calls it from its callback threads.
class BareService final : public coupon::v1::CouponService::CallbackService {
 public:
  grpc::ServerUnaryReactor* CreateCoupon(
      grpc::CallbackServerContext* ctx, const coupon::v1::CreateCouponRequest* req,
      coupon::v1::Coupon* resp) override {
    resp->set_coupon_id(next_coupon_id_.fetch_add(1));
    resp->set_name(req->name());
    resp->set_total_quantity(req->total_quantity());
    resp->set_remaining_quantity(req->total_quantity());
    return Done(ctx);
  }

  grpc::ServerUnaryReactor* IssueCoupon(
      grpc::CallbackServerContext* ctx, const coupon::v1::IssueCouponRequest* req,
      coupon::v1::IssueCouponResponse* resp) override {
    resp->set_request_id(req->request_id());
    resp->set_outcome(coupon::v1::ISSUE_OUTCOME_SOLD_OUT);
    return Done(ctx);
  }

  // Sends the headers, as the gateway does once a watch is registered, then
  // waits for the client to cancel.
  grpc::ServerWriteReactor<coupon::v1::IssueResult>* WatchIssueResults(
      grpc::CallbackServerContext* ctx,
      const coupon::v1::WatchIssueResultsRequest* req) override {
    /// Deletes itself in OnDone.
    class Idle final : public grpc::ServerWriteReactor<coupon::v1::IssueResult> {
     public:
      Idle() { StartSendInitialMetadata(); }
      void OnCancel() override { Finish(grpc::Status::CANCELLED); }
      void OnDone() override { delete this; }
    };
    return new Idle;
  }

 private:
  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  std::atomic<int64_t> next_coupon_id_{1};
};

}  // namespace

int main(int argc, char** argv) {
  coupon::ParseFlagsWithEnv(
      argc, argv,
      "bare-grpc-server: CouponService that does nothing, the ceiling of a "
      "gateway. Every flag can also be set by the environment variable of "
      "its name in upper case.");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  BareService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen),
                           grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    LOG(ERROR) << "cannot listen on " << absl::GetFlag(FLAGS_listen);
    return 1;
  }
  LOG(INFO) << "bare-grpc-server serving on " << absl::GetFlag(FLAGS_listen);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
