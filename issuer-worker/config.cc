#include "issuer-worker/config.h"

#include <tuple>

#include "absl/strings/str_cat.h"

namespace coupon::worker {

absl::Status WorkerConfig::Validate() const {
  auto bad = [](absl::string_view flag, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
  };
  if (kafka_brokers.empty()) return bad("kafka_brokers", "is empty");
  if (pg_dsn.empty()) return bad("pg_dsn", "is empty");
  if (group_id.empty()) return bad("group_id", "is empty");
  if (request_topic.empty() || result_topic.empty() || dead_letter_topic.empty()) {
    return bad("request_topic/result_topic/dead_letter_topic", "is empty");
  }
  if (max_batch < 1 || max_batch > 100000) {
    return bad("max_batch", absl::StrCat("must be 1..100000, got ", max_batch));
  }
  if (batch_wait < absl::ZeroDuration() || batch_wait > absl::Seconds(1)) {
    return bad("batch_wait",
               absl::StrCat("must be 0..1s, got ", absl::FormatDuration(batch_wait)));
  }
  if (publish_timeout < absl::Seconds(1)) {
    return bad("publish_timeout", absl::StrCat("must be at least 1s, got ",
                                               absl::FormatDuration(publish_timeout)));
  }
  if (session_timeout_ms < 1000) {
    return bad("session_timeout_ms",
               absl::StrCat("must be >= 1000, got ", session_timeout_ms));
  }
  if (metrics_port < 0 || metrics_port > 65535) {
    return bad("metrics_port",
               absl::StrCat("must be 0..65535 (0: off), got ", metrics_port));
  }
  if (absl::Status s = pg_session.Validate("pg_"); !s.ok()) return s;
  // These are what keep a frozen worker from holding coupons: never off.
  for (const auto& [flag, d, least] :
       {std::tuple<const char*, absl::Duration, absl::Duration>{
            "pg_lock_timeout", pg_session.lock_timeout, absl::Milliseconds(100)},
        {"pg_statement_timeout", pg_session.statement_timeout, absl::Seconds(1)},
        {"pg_idle_in_transaction_timeout", pg_session.idle_in_transaction_timeout,
         absl::Seconds(1)}}) {
    if (d < least) {
      return bad(flag, absl::StrCat("must be at least ", absl::FormatDuration(least),
                                    " (it keeps a frozen worker from holding its "
                                    "coupons' locks), got ",
                                    absl::FormatDuration(d)));
    }
  }
  return absl::OkStatus();
}

}  // namespace coupon::worker
