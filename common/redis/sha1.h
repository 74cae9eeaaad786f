#pragma once

// SHA-1, only to name Lua scripts the way Redis does (EVALSHA); not for
// anything that needs a secure hash.

#include <string>

#include "absl/strings/string_view.h"

namespace coupon::redis {

// Lower-case hex digest (40 characters).
std::string Sha1Hex(absl::string_view data);

}  // namespace coupon::redis
