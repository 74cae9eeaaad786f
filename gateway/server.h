#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/config.h"

namespace grpc {
class Server;
}

namespace coupon::gateway {


/// The running gateway: gRPC server, producer, result listener and caches.
/// Start once from one thread; the destructor shuts it all down (gRPC first,
/// then the producer after flushing, then the listener, and /metrics last).
class GatewayServer {
 public:
  static absl::StatusOr<std::unique_ptr<GatewayServer>> Start(
      const GatewayConfig& config);
  ~GatewayServer();

  // The port actually bound (useful with ":0").
  int port() const { return port_; }
  // True once the gateway receives every result (Kafka mode: its listener has
  // caught up with the result topic; Redis mode: it is subscribed to the
  // result channel); until then the health service says NOT_SERVING.
  bool ready() const;
  void Wait();
  // Turns health NOT_SERVING, ends open watch streams with UNAVAILABLE (the
  // clients watch again elsewhere), stops taking calls, and waits up to
  // `grace` for open calls: an IssueCoupon call waits for its event's
  // acknowledgement. Then flushes the producer in what is left of `grace`.
  // Once; later calls do nothing.
  void Shutdown(absl::Duration grace);

  // The gateway's parts, in the order they are built and (reversed)
  // destroyed; server.cc only.
  struct Parts;

 private:
  GatewayServer();
  // Flips health to SERVING once ready(), from a thread of its own.
  void StartReadiness();
  std::unique_ptr<Parts> parts_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  // Flips health to SERVING once the listener is ready; joined by Shutdown.
  std::thread readiness_;
  std::atomic<bool> stopping_{false};
  // What the health service says, also answered on the metrics port's
  // /readyz: kubelet's gRPC probes speak plain text only, so under TLS the
  // probes use HTTP.
  std::atomic<bool> serving_{false};
  bool shut_down_ = false;
};

}  // namespace coupon::gateway
