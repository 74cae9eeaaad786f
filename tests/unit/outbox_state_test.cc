#include "redis-issuer/outbox/outbox_state.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "redis-issuer/outbox/outbox_scheduler.h"
#include "tests/testing/status_matchers.h"

namespace coupon::outbox {
namespace {

using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
const absl::Status kNoStock = absl::FailedPreconditionError(
    "postgres: ERROR: new row for relation \"coupons\" violates check "
    "constraint \"remaining_within_total\"");

TEST(OutboxStateTest, SuccessIsDone) {
  OutboxTransition t =
      NextOutboxState(0, absl::OkStatus(), 3, kNow, absl::Minutes(1));
  EXPECT_EQ(t.state, OutboxState::kDone);
  EXPECT_EQ(t.attempts, 1);
  EXPECT_EQ(t.last_error, "");
}

TEST(OutboxStateTest, SuccessAfterFailuresCountsEveryAttempt) {
  OutboxTransition t =
      NextOutboxState(2, absl::OkStatus(), 3, kNow, absl::Minutes(1));
  EXPECT_EQ(t.state, OutboxState::kDone);
  EXPECT_EQ(t.attempts, 3);
}

TEST(OutboxStateTest, FirstFailureRetriesAfterTheInterval) {
  OutboxTransition t = NextOutboxState(0, kNoStock, 3, kNow, absl::Minutes(1));
  EXPECT_EQ(t.state, OutboxState::kPending);
  EXPECT_EQ(t.attempts, 1);
  EXPECT_EQ(t.next_attempt_at, kNow + absl::Minutes(1));
  EXPECT_THAT(t.last_error, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(t.last_error, HasSubstr("remaining_within_total"));
}

TEST(OutboxStateTest, ZeroRetryIntervalIsDueAtOnce) {
  OutboxTransition t =
      NextOutboxState(0, kNoStock, 3, kNow, absl::ZeroDuration());
  EXPECT_EQ(t.state, OutboxState::kPending);
  EXPECT_EQ(t.next_attempt_at, kNow);
}

TEST(OutboxStateTest, LastFailureIsFailedWithMaxAttempts) {
  OutboxTransition second =
      NextOutboxState(1, kNoStock, 3, kNow, absl::Minutes(1));
  EXPECT_EQ(second.state, OutboxState::kPending);
  EXPECT_EQ(second.attempts, 2);

  OutboxTransition last =
      NextOutboxState(2, kNoStock, 3, kNow, absl::Minutes(1));
  EXPECT_EQ(last.state, OutboxState::kFailed);
  EXPECT_EQ(last.attempts, 3);
  EXPECT_THAT(last.last_error, HasSubstr("remaining_within_total"));
}

TEST(OutboxStateTest, OneAttemptMeansNoRetry) {
  OutboxTransition t = NextOutboxState(0, kNoStock, 1, kNow, absl::Minutes(1));
  EXPECT_EQ(t.state, OutboxState::kFailed);
  EXPECT_EQ(t.attempts, 1);
}

TEST(OutboxStateTest, LoweredLimitFailsAtOnceAndKeepsTheTrueCount) {
  // The row waited with 4 attempts while the limit went down to 2.
  OutboxTransition t = NextOutboxState(4, kNoStock, 2, kNow, absl::Minutes(1));
  EXPECT_EQ(t.state, OutboxState::kFailed);
  EXPECT_EQ(t.attempts, 5);
}

// The seed: "failed events are retried every minute, at most 3 times" -- the
// first attempt and then 3 retries, a minute apart.
TEST(OutboxStateTest, DefaultsAreTheFirstAttemptAndThreeRetries) {
  const OutboxConfig defaults;
  EXPECT_EQ(defaults.interval, absl::Seconds(10));
  EXPECT_EQ(defaults.retry_interval, absl::Minutes(1));
  int attempts = 0;
  absl::Time now = kNow;
  std::vector<OutboxState> states;
  for (;;) {
    OutboxTransition t =
        NextOutboxState(attempts, kNoStock, defaults.max_attempts, now,
                        defaults.retry_interval);
    states.push_back(t.state);
    attempts = t.attempts;
    if (t.state != OutboxState::kPending) break;
    EXPECT_EQ(t.next_attempt_at, now + absl::Minutes(1));
    now = t.next_attempt_at;
  }
  EXPECT_THAT(states, ::testing::ElementsAre(
                          OutboxState::kPending, OutboxState::kPending,
                          OutboxState::kPending, OutboxState::kFailed));
  EXPECT_EQ(attempts, 4);
}

TEST(OutboxStateTest, StateNamesAreTheTableValues) {
  EXPECT_EQ(OutboxStateName(OutboxState::kPending), "PENDING");
  EXPECT_EQ(OutboxStateName(OutboxState::kDone), "DONE");
  EXPECT_EQ(OutboxStateName(OutboxState::kFailed), "FAILED");
}

TEST(OutboxConfigTest, DefaultsAreValid) {
  EXPECT_THAT(OutboxConfig().Validate(), IsOk());
}

TEST(OutboxConfigTest, MessagesNameTheFlag) {
  OutboxConfig c;
  c.max_attempts = 0;
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     "--outbox_max_attempts: must be 1..100, got 0"));
  c = OutboxConfig();
  c.batch_size = 0;
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--outbox_batch_size:")));
  c = OutboxConfig();
  c.interval = absl::ZeroDuration();
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--outbox_interval:")));
  c = OutboxConfig();
  c.retry_interval = absl::Seconds(-1);
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--outbox_retry_interval:")));
  c = OutboxConfig();
  c.pg_dsn = "";
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--pg_dsn:")));
  c = OutboxConfig();
  c.metrics_port = 65536;
  EXPECT_THAT(c.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--metrics_port: must be 0..65535 (0: off), got 65536"));
}

TEST(OutboxConfigTest, ZeroRetryIntervalIsAllowed) {
  OutboxConfig c;
  c.retry_interval = absl::ZeroDuration();
  EXPECT_THAT(c.Validate(), IsOk());
}

}  // namespace
}  // namespace coupon::outbox
