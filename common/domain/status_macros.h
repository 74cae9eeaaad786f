#pragma once

// Our abseil (20220623) has no RETURN_IF_ERROR / ASSIGN_OR_RETURN.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define COUPON_STATUS_CONCAT_INNER(a, b) a##b
#define COUPON_STATUS_CONCAT(a, b) COUPON_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status _status_to_return = (expr); \
    if (!_status_to_return.ok()) {             \
      return _status_to_return;                \
    }                                          \
  } while (false)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(COUPON_STATUS_CONCAT(_statusor_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                          \
  if (!statusor.ok()) {                            \
    return std::move(statusor).status();           \
  }                                                \
  lhs = std::move(statusor).value()
