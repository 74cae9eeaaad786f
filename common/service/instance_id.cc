#include "common/service/instance_id.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace coupon::service {

std::string InstanceId() {
  // gethostname need not terminate a name it truncates: the last byte stays 0.
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    return absl::StrCat("localhost-", getpid());
  }
  return absl::StrCat(host, "-", getpid());
}

}  // namespace coupon::service
