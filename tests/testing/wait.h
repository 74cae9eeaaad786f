#pragma once

// Waiting in tests: every wait has a deadline, and a wait that runs out says
// what it waited for, so a test fails with a reason instead of spinning until
// ctest's timeout kills it.

#include <functional>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace coupon::testing {

// Calls `done` every `poll` until it returns true (success) or `timeout` has
// passed (a failure naming `what`). Use as ASSERT_TRUE(WaitFor(...)).
inline ::testing::AssertionResult WaitFor(const std::function<bool()>& done,
                                          absl::Duration timeout, const std::string& what,
                                          absl::Duration poll = absl::Milliseconds(20)) {
  const absl::Time until = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= until) {
      return ::testing::AssertionFailure()
             << "still waiting after " << absl::FormatDuration(timeout) << ": " << what;
    }
    absl::SleepFor(poll);
  }
  return ::testing::AssertionSuccess();
}

}  // namespace coupon::testing
