// ParseRecord on any bytes, as the Redis mode's gateway reads a request
// record back from Redis: it never crashes, it only refuses with INTERNAL,
// and what it accepts writes back (Record) to a record that parses the same.

#include <cstddef>
#include <cstdint>

#include "gateway/redis_issuer.h"
#include "glog/logging.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coupon;
  const absl::string_view record(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<IssueResult> parsed = gateway::ParseRecord("req-1", record);
  if (!parsed.ok()) {
    CHECK(absl::IsInternal(parsed.status())) << parsed.status();
    return 0;
  }
  CHECK_EQ(parsed->request_id, "req-1");
  absl::StatusOr<IssueResult> again =
      gateway::ParseRecord("req-1", gateway::Record(*parsed));
  CHECK(again.ok()) << again.status();
  CHECK(*again == *parsed);
  return 0;
}
