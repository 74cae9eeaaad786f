// coupon-outbox-scheduler: applies the Redis issuance mode's stock events
// (coupon_outbox rows) to coupons.remaining_quantity, and settles the copies
// reserved in Redis that no gateway wrote. Any number of replicas may run.
// Its settings (each a flag and an environment variable of its name in upper
// case) are in outbox_scheduler.cc and docs/operations.md.

#include <atomic>
#include <csignal>

#include "common/service/process.h"
#include "glog/logging.h"
#include "redis-issuer/outbox/outbox_scheduler.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  const coupon::outbox::OutboxConfig config = coupon::service::ParseOrExit(
      coupon::outbox::OutboxSchema(), argc, argv,
      "coupon-outbox-scheduler: takes the copies the Redis mode issued from "
      "the "
      "coupons' PostgreSQL stock, and writes those it reserved but no gateway "
      "wrote.");
  coupon::service::InitProcess(argv[0]);

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  auto scheduler = coupon::outbox::OutboxScheduler::Create(config);
  if (!scheduler.ok()) {
    LOG(ERROR) << "outbox scheduler cannot start: " << scheduler.status();
    return 1;
  }
  if (absl::Status ran = (*scheduler)->Run(g_stop); !ran.ok()) {
    LOG(ERROR) << "outbox scheduler: " << ran;
    return 1;
  }
  return 0;
}
