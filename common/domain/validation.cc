#include "common/domain/validation.h"

#include "absl/strings/str_cat.h"

namespace coupon {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 if malformed.
// Stores the code point in *cp.
size_t DecodeUtf8(absl::string_view s, size_t i, uint32_t* cp) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t b0 = byte(i);
  size_t len;
  uint32_t min;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, *cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, *cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, *cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (byte(i + k) & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return len;
}

bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp < 0xA0); }

// Well-formed UTF-8 without control characters (C0, DEL, C1); counts the
// characters into *chars when given.
absl::Status CheckPrintableUtf8(absl::string_view field, absl::string_view s,
                                size_t* chars) {
  uint32_t cp;
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++count) {
    size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) {
      return Invalid(field, absl::StrCat("is not valid UTF-8 (byte ", i, ")"));
    }
    if (IsControl(cp)) {
      return Invalid(field,
                     absl::StrCat("has a control character at byte ", i));
    }
    i += n;
  }
  if (chars != nullptr) *chars = count;
  return absl::OkStatus();
}

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

absl::Status ValidateCouponId(absl::string_view field, int64_t coupon_id) {
  if (coupon_id <= 0) {
    return Invalid(field, absl::StrCat("must be a positive coupon id, got ",
                                       coupon_id));
  }
  return absl::OkStatus();
}

absl::Status ValidateUserId(absl::string_view field, absl::string_view user_id) {
  if (user_id.empty()) return Invalid(field, "is required");
  if (user_id.size() > kMaxUserIdBytes) {
    return Invalid(field, absl::StrCat("is ", user_id.size(),
                                       " bytes; at most ", kMaxUserIdBytes));
  }
  return CheckPrintableUtf8(field, user_id, nullptr);
}

absl::Status ValidateRequestId(absl::string_view field,
                               absl::string_view request_id) {
  if (request_id.empty()) return Invalid(field, "is required");
  if (request_id.size() > kMaxRequestIdBytes) {
    return Invalid(field, absl::StrCat("is ", request_id.size(),
                                       " characters; at most ",
                                       kMaxRequestIdBytes));
  }
  for (size_t i = 0; i < request_id.size(); ++i) {
    char c = request_id[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
              c == '-';
    if (!ok) {
      return Invalid(field, absl::StrCat("may hold only [A-Za-z0-9._:-]; "
                                         "found a disallowed byte at ",
                                         i));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateCouponName(absl::string_view field, absl::string_view name) {
  if (name.empty()) return Invalid(field, "is required");
  size_t chars = 0;
  if (absl::Status s = CheckPrintableUtf8(field, name, &chars); !s.ok())
    return s;
  if (chars > kMaxCouponNameChars) {
    return Invalid(field, absl::StrCat("is ", chars, " characters; at most ",
                                       kMaxCouponNameChars));
  }
  return absl::OkStatus();
}

absl::Status ValidateTotalQuantity(absl::string_view field, int64_t quantity) {
  if (quantity < 1 || quantity > kMaxTotalQuantity) {
    return Invalid(field, absl::StrCat("must be between 1 and ",
                                       kMaxTotalQuantity, ", got ", quantity));
  }
  return absl::OkStatus();
}

absl::Status ValidateTimestamp(absl::string_view field, int64_t seconds,
                               int32_t nanos) {
  // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
  constexpr int64_t kMinSeconds = -62'135'596'800;
  constexpr int64_t kMaxSeconds = 253'402'300'799;
  if (seconds < kMinSeconds || seconds > kMaxSeconds) {
    return Invalid(
        field, absl::StrCat("seconds must be between ", kMinSeconds, " and ",
                            kMaxSeconds, " (years 1 to 9999), got ", seconds));
  }
  if (nanos < 0 || nanos > 999'999'999) {
    return Invalid(
        field,
        absl::StrCat("nanos must be between 0 and 999999999, got ", nanos));
  }
  return absl::OkStatus();
}

absl::Status RequestIdReused(absl::string_view request_id) {
  return absl::AlreadyExistsError(absl::StrCat(
      "request_id: \"", request_id,
      "\" was already used for another coupon or user; use a new one"));
}

}  // namespace coupon
