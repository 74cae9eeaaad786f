#pragma once

// Field checks shared by the gateway (API input) and the worker (event input).
// Each returns INVALID_ARGUMENT naming the field, with a message a person can
// act on.

#include <cstdint>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace coupon {

inline constexpr size_t kMaxUserIdBytes = 128;
inline constexpr size_t kMaxRequestIdBytes = 128;
inline constexpr size_t kMaxCouponNameChars = 200;
inline constexpr int64_t kMaxTotalQuantity = 1'000'000'000;

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates).
bool IsValidUtf8(absl::string_view s);

absl::Status ValidateCouponId(absl::string_view field, int64_t coupon_id);
// 1..128 bytes of UTF-8 without control characters.
absl::Status ValidateUserId(absl::string_view field, absl::string_view user_id);
// 1..128 characters of [A-Za-z0-9._:-].
absl::Status ValidateRequestId(absl::string_view field,
                               absl::string_view request_id);
// 1..200 characters of UTF-8 without control characters.
absl::Status ValidateCouponName(absl::string_view field, absl::string_view name);
absl::Status ValidateTotalQuantity(absl::string_view field, int64_t quantity);
// The range google.protobuf.Timestamp allows (0001-01-01 to 9999-12-31 UTC,
// nanos 0..999,999,999), which also keeps its microseconds within int64.
absl::Status ValidateTimestamp(absl::string_view field, int64_t seconds,
                               int32_t nanos);

// ALREADY_EXISTS for a request id reused for another coupon or user: the
// first use owns the id (the gateway, the worker and the Redis mode's
// writers answer it alike).
absl::Status RequestIdReused(absl::string_view request_id);

}  // namespace coupon
