// coupon-gateway: the stateless gRPC front door. Its settings (each a flag
// and an environment variable of its name in upper case) are in
// gateway/config.cc and docs/operations.md.

#include <csignal>
#include <thread>

#include "common/service/process.h"
#include "gateway/config.h"
#include "gateway/server.h"
#include "glog/logging.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  const coupon::gateway::GatewayConfig config = coupon::service::ParseOrExit(
      coupon::gateway::GatewaySchema(), argc, argv,
      "coupon-gateway: accepts IssueCoupon and streams results.");
  coupon::service::InitProcess(argv[0]);

  // Before Start: a SIGTERM while starting up still ends in a clean shutdown.
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  auto server = coupon::gateway::GatewayServer::Start(config);
  if (!server.ok()) {
    LOG(ERROR) << "gateway cannot start: " << server.status();
    return 1;
  }
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  LOG(INFO) << "gateway: shutting down";
  (*server)->Shutdown(config.shutdown_grace);
  server->reset();
  LOG(INFO) << "gateway: stopped";
  return 0;
}
