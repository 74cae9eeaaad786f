// coupon-issuer-worker: a member of the consumer group that decides issuance.
// Its settings (each a flag and an environment variable of its name in upper
// case) are in issuer-worker/config.cc and docs/operations.md.

#include <atomic>
#include <csignal>

#include "common/service/process.h"
#include "glog/logging.h"
#include "issuer-worker/config.h"
#include "issuer-worker/worker.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  const coupon::worker::WorkerConfig config = coupon::service::ParseOrExit(
      coupon::worker::WorkerSchema(), argc, argv,
      "coupon-issuer-worker: decides coupon issuance from the request topic.");
  coupon::service::InitProcess(argv[0]);

  // Before Create: a SIGTERM while starting up then stops the worker cleanly
  // too (Run returns at once and leaves the group).
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  auto worker = coupon::worker::IssuerWorker::Create(config);
  if (!worker.ok()) {
    LOG(ERROR) << "worker cannot start: " << worker.status();
    return 1;
  }
  if (absl::Status ran = (*worker)->Run(g_stop); !ran.ok()) {
    LOG(ERROR) << "worker: " << ran;
    return 1;
  }
  LOG(INFO) << "worker: stopped";
  return 0;
}
