#pragma once

// Requests the gateway parses itself, so that bytes protobuf refuses get
// INVALID_ARGUMENT naming the field, like every other bad input.
//
// Left to gRPC, a request protobuf cannot parse (above all a proto3 string
// field holding invalid UTF-8) never reaches a handler: the callback API fails
// the call with UNIMPLEMENTED and an empty message
// (grpcpp/impl/codegen/server_callback_handlers.h), which tells a client
// nothing and looks like a missing method. Instead, each method's handler is
// swapped for one whose request type is ParsedRequest<Request>: gRPC's
// SerializationTraits extension point hands us the bytes, ParseProto
// (common/wire/proto_parse.h) parses them, and the handler answers the parse error
// itself. The wire, the proto files and the generated clients are unchanged.

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace coupon::gateway {

template <typename Request>
struct ParsedRequest {
  Request message;
  // OK, or INVALID_ARGUMENT naming the first bad field.
  absl::Status status;
};

// Parses the request bytes in `buffer` into `message`; see ParseProto.
absl::Status ParseRequest(const grpc::ByteBuffer& buffer,
                          google::protobuf::Message* message);

// The handler that ParseRequestsOurselves installs in place of the generated
// one: `method` of `service` gets the parsed request, or the call fails with
// the parse error before reaching it.
template <typename Service, typename Request, typename Response>
grpc::internal::MethodHandler* ParsedUnaryHandler(
    Service* service,
    grpc::ServerUnaryReactor* (Service::*method)(grpc::CallbackServerContext*,
                                                 const Request*, Response*),
    grpc::Status (*to_grpc)(const absl::Status&)) {
  return new grpc::internal::CallbackUnaryHandler<ParsedRequest<Request>,
                                                  Response>(
      [service, method, to_grpc](grpc::CallbackServerContext* ctx,
                                 const ParsedRequest<Request>* request,
                                 Response* response) {
        if (!request->status.ok()) {
          grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
          reactor->Finish(to_grpc(request->status));
          return reactor;
        }
        return (service->*method)(ctx, &request->message, response);
      });
}

/// Ends a server stream at once with a status. gRPC owns it from creation;
/// it deletes itself in OnDone.
template <typename Response>
class FailedWriteReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit FailedWriteReactor(const grpc::Status& status) {
    this->Finish(status);
  }
  void OnDone() override { delete this; }
};

template <typename Service, typename Request, typename Response>
grpc::internal::MethodHandler* ParsedServerStreamingHandler(
    Service* service,
    grpc::ServerWriteReactor<Response>* (Service::*method)(
        grpc::CallbackServerContext*, const Request*),
    grpc::Status (*to_grpc)(const absl::Status&)) {
  return new grpc::internal::CallbackServerStreamingHandler<
      ParsedRequest<Request>, Response>(
      [service, method, to_grpc](grpc::CallbackServerContext* ctx,
                                 const ParsedRequest<Request>* request)
          -> grpc::ServerWriteReactor<Response>* {
        if (!request->status.ok()) {
          return new FailedWriteReactor<Response>(to_grpc(request->status));
        }
        return (service->*method)(ctx, &request->message);
      });
}

}  // namespace coupon::gateway

namespace grpc {

// The callback handlers turn any failed Deserialize into UNIMPLEMENTED with
// no message, so this one always succeeds and leaves the verdict in
// `status` for the handler to answer. Requests only: never serialized.
template <typename Request>
class SerializationTraits<coupon::gateway::ParsedRequest<Request>> {
 public:
  static Status Deserialize(ByteBuffer* buffer,
                            coupon::gateway::ParsedRequest<Request>* request) {
    request->status = coupon::gateway::ParseRequest(*buffer, &request->message);
    buffer->Clear();
    return Status::OK;
  }
};

}  // namespace grpc
