#include "redis-issuer/records.h"

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace coupon::redis_issuer {

std::string QueueKey(int64_t id) { return absl::StrCat("coupon:queue:", id); }
std::string IssuedKey(int64_t id, const std::string& user) {
  return absl::StrCat("coupon:issued:", id, ":", user);
}
std::string LimitKey(int64_t id) { return absl::StrCat("coupon:limit:", id); }
std::string RequestKey(const std::string& request_id) {
  return absl::StrCat("coupon:request:", request_id);
}

std::string FormatRecord(const IssueResult& r, bool reserved) {
  std::string outcome =
      reserved ? "RESERVED" : std::string(OutcomeName(r.outcome));
  if (!reserved && r.outcome == Outcome::kIssued && r.user_coupon_id > 0) {
    absl::StrAppend(&outcome, ":", r.user_coupon_id);
  }
  return absl::StrCat(outcome, "|", r.remaining_quantity, "|", r.decided_at, "|",
                      r.coupon_id, "|", r.user_id);
}

std::string TtlSeconds(absl::Duration ttl) {
  if (ttl == absl::InfiniteDuration()) return "0";
  return absl::StrCat(std::max<int64_t>(absl::ToInt64Seconds(ttl), 1));
}

std::string RecordTtlSeconds(const IssueResult& settled, absl::Duration ttl) {
  if (settled.outcome == Outcome::kIssued) return "0";
  return TtlSeconds(ttl);
}

std::string WithKeep(absl::string_view script) {
  return absl::StrCat(R"lua(
local function keep(key, record, ttl)
  if ttl == '0' then
    redis.call('SET', key, record)
  else
    redis.call('SET', key, record, 'EX', ttl)
  end
end
)lua",
                      script);
}

absl::StatusOr<Record> ParseRecord(const std::string& request_id,
                                   absl::string_view text) {
  std::vector<absl::string_view> f = absl::StrSplit(text, absl::MaxSplits('|', 4));
  Record rec;
  IssueResult& r = rec.result;
  r.request_id = request_id;
  auto malformed = [&] {
    return absl::InternalError(
        absl::StrCat("redis: malformed record for request ", request_id));
  };
  if (f.size() != 5) return malformed();
  std::vector<absl::string_view> head = absl::StrSplit(f[0], absl::MaxSplits(':', 1));
  if (head[0] == "RESERVED" && head.size() == 1) {
    rec.reserved = true;
    r.outcome = Outcome::kIssued;
  } else {
    std::optional<Outcome> outcome = OutcomeFromName(head[0]);
    if (!outcome || !IsStoredOutcome(*outcome)) return malformed();
    r.outcome = *outcome;
    if (head.size() == 2 && (*outcome != Outcome::kIssued ||
                             !absl::SimpleAtoi(head[1], &r.user_coupon_id) ||
                             r.user_coupon_id <= 0)) {
      return malformed();
    }
  }
  if (!absl::SimpleAtoi(f[1], &r.remaining_quantity) ||
      !absl::SimpleAtoi(f[2], &r.decided_at) ||
      !absl::SimpleAtoi(f[3], &r.coupon_id)) {
    return malformed();
  }
  r.user_id = std::string(f[4]);
  return rec;
}

}  // namespace coupon::redis_issuer
