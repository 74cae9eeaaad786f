// bare-grpc-server: the ceiling of any gateway on this machine. It serves
// CouponService from the same gRPC build and does no work: IssueCoupon
// answers SOLD_OUT at once, CreateCoupon hands out numbers, a watch only
// waits to be cancelled. Two ways, to find the fastest server this gRPC
// allows:
//   --api=callback  the callback API with gRPC's own threads, as the gateway;
//   --api=async     the completion-queue API: one completion queue and one
//                   thread per core, each polling its queue (gRPC's
//                   "async server" pattern).
// bench/compare.sh drives it with `flashsale --verify=false` and with ghz.
// Every flag can also be set by the environment variable of its name in
// upper case.

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <memory>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/service/flags_env.h"
#include "common/service/process.h"
#include "coupon/v1/coupon_service.grpc.pb.h"
#include "glog/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50061", "gRPC address to listen on.");
ABSL_FLAG(std::string, api, "callback",
          "callback (the gateway's API) or async (completion queues).");
ABSL_FLAG(int, cqs, 0, "With --api=async: completion queues, one thread each; 0: one per core.");

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

namespace v1 = coupon::v1;
using v1::CouponService;

/// One call in flight on a completion queue; its tag. Proceed runs on the
/// queue's thread only. Each call makes its successor when it starts, so
/// every method always has one call waiting per queue.
class AsyncCall {
 public:
  virtual ~AsyncCall() = default;
  virtual void Proceed(bool ok) = 0;
};

template <typename Request, typename Response>
using RequestMethod = void (CouponService::AsyncService::*)(
    grpc::ServerContext*, Request*, grpc::ServerAsyncResponseWriter<Response>*,
    grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);

/// A unary method: requested, then answered by `answer`, then deleted.
template <typename Request, typename Response>
class AsyncUnary final : public AsyncCall {
 public:
  using Answer = void (*)(const Request&, Response*);
  AsyncUnary(CouponService::AsyncService* service, grpc::ServerCompletionQueue* cq,
             RequestMethod<Request, Response> method, Answer answer)
      : service_(service), cq_(cq), method_(method), answer_(answer), responder_(&ctx_) {
    (service_->*method_)(&ctx_, &request_, &responder_, cq_, cq_, this);
  }
  void Proceed(bool ok) override {
    if (!answered_ && ok) {
      new AsyncUnary(service_, cq_, method_, answer_);
      answer_(request_, &response_);
      answered_ = true;
      responder_.Finish(response_, grpc::Status::OK, this);
      return;
    }
    // Answered (the reply went out, or could not), or the server shut down
    // before a call came: done either way.
    delete this;
  }

 private:
  CouponService::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  RequestMethod<Request, Response> method_;
  Answer answer_;
  grpc::ServerContext ctx_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> responder_;
  bool answered_ = false;
};

/// A watch: sends the headers, then waits for the client to cancel.
class AsyncWatch final : public AsyncCall {
 public:
  AsyncWatch(CouponService::AsyncService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), writer_(&ctx_), done_(this) {
    ctx_.AsyncNotifyWhenDone(&done_);
    service_->RequestWatchIssueResults(&ctx_, &request_, &writer_, cq_, cq_, this);
  }
  void Proceed(bool ok) override {
    if (!started_) {
      started_ = true;
      if (!ok) return;  // shutting down before a call came
      new AsyncWatch(service_, cq_);
      ++pending_;
      writer_.SendInitialMetadata(this);
      return;
    }
    if (--pending_ == 0 && finished_) delete this;
  }

 private:
  // The "done" notification, a tag of its own.
  struct Done final : AsyncCall {
    explicit Done(AsyncWatch* watch) : watch(watch) {}
    void Proceed(bool) override {
      watch->finished_ = true;
      if (watch->pending_ == 0) delete watch;
    }
    AsyncWatch* watch;
  };

  CouponService::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  grpc::ServerContext ctx_;
  v1::WatchIssueResultsRequest request_;
  grpc::ServerAsyncWriter<v1::IssueResult> writer_;
  Done done_;
  bool started_ = false;
  bool finished_ = false;
  int pending_ = 0;
};

std::atomic<int64_t> g_next_coupon_id{1};

void AnswerCreate(const v1::CreateCouponRequest& req, v1::Coupon* resp) {
  resp->set_coupon_id(g_next_coupon_id.fetch_add(1));
  resp->set_name(req.name());
  resp->set_total_quantity(req.total_quantity());
  resp->set_remaining_quantity(req.total_quantity());
}

void AnswerIssue(const v1::IssueCouponRequest& req, v1::IssueCouponResponse* resp) {
  resp->set_request_id(req.request_id());
  resp->set_outcome(v1::ISSUE_OUTCOME_SOLD_OUT);
}

// Polls one completion queue until it is shut down and drained.
void ServeQueue(CouponService::AsyncService* service, grpc::ServerCompletionQueue* cq) {
  new AsyncUnary<v1::CreateCouponRequest, v1::Coupon>(
      service, cq, &CouponService::AsyncService::RequestCreateCoupon, AnswerCreate);
  // Several waiting IssueCoupon calls per queue, so a burst of new calls
  // does not wait for the next request to be posted.
  for (int i = 0; i < 16; ++i) {
    new AsyncUnary<v1::IssueCouponRequest, v1::IssueCouponResponse>(
        service, cq, &CouponService::AsyncService::RequestIssueCoupon, AnswerIssue);
  }
  new AsyncWatch(service, cq);
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<AsyncCall*>(tag)->Proceed(ok);
}

}  // namespace

int main(int argc, char** argv) {
  coupon::ParseFlagsWithEnv(
      argc, argv,
      "bare-grpc-server: CouponService that does nothing, the ceiling of a "
      "gateway. Every flag can also be set by the environment variable of "
      "its name in upper case.");
  coupon::service::InitProcess(argv[0]);

  const std::string api = absl::GetFlag(FLAGS_api);
  if (api != "callback" && api != "async") {
    LOG(ERROR) << "--api: callback or async, got \"" << api << "\"";
    return 2;
  }
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  BareService callback_service;
  CouponService::AsyncService async_service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen),
                           grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  if (api == "callback") {
    builder.RegisterService(&callback_service);
  } else {
    builder.RegisterService(&async_service);
    int n = absl::GetFlag(FLAGS_cqs);
    if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) cqs.push_back(builder.AddCompletionQueue());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    LOG(ERROR) << "cannot listen on " << absl::GetFlag(FLAGS_listen);
    return 1;
  }
  std::vector<std::thread> pollers;
  for (auto& cq : cqs) pollers.emplace_back(ServeQueue, &async_service, cq.get());
  LOG(INFO) << "bare-grpc-server (" << api << " API"
            << (cqs.empty() ? "" : absl::StrCat(", ", cqs.size(), " completion queues"))
            << ") serving on " << absl::GetFlag(FLAGS_listen);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  for (auto& cq : cqs) cq->Shutdown();
  for (auto& t : pollers) t.join();
  return 0;
}
