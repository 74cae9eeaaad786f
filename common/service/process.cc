#include "common/service/process.h"

#include "absl/synchronization/mutex.h"
#include "glog/logging.h"

namespace coupon::service {

void InitProcess(const char* argv0) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  google::InitGoogleLogging(argv0);
  FLAGS_logtostderr = true;
}

}  // namespace coupon::service
