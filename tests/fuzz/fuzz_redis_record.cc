// ParseRecord on any bytes, as the Redis mode's gateway and the outbox
// scheduler read a request record back from Redis: it never crashes, it only
// refuses with INTERNAL, and what it accepts writes back (FormatRecord) to a
// record that parses the same.

#include <cstddef>
#include <cstdint>

#include "glog/logging.h"
#include "redis-issuer/records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coupon;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<redis_issuer::Record> parsed = redis_issuer::ParseRecord("req-1", text);
  if (!parsed.ok()) {
    CHECK(absl::IsInternal(parsed.status())) << parsed.status();
    return 0;
  }
  CHECK_EQ(parsed->result.request_id, "req-1");
  absl::StatusOr<redis_issuer::Record> again = redis_issuer::ParseRecord(
      "req-1", redis_issuer::FormatRecord(parsed->result, parsed->reserved));
  CHECK(again.ok()) << again.status();
  CHECK(again->result == parsed->result);
  CHECK_EQ(again->reserved, parsed->reserved);
  return 0;
}
