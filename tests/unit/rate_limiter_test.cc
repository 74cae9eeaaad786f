#include "gateway/issue/rate_limiter.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace coupon::gateway {
namespace {

using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int64_t kSecond = 1'000'000'000;

// A limiter on a clock the test moves by hand.
class RateLimiterTest : public ::testing::Test {
 protected:
  std::unique_ptr<UserRateLimiter> Make(double per_second, int burst,
                                        size_t max_users = 1'000'000) {
    UserRateLimit limit;
    limit.per_second = per_second;
    limit.burst = burst;
    limit.max_users = max_users;
    return std::make_unique<UserRateLimiter>(limit, [this] { return now_; });
  }

  int64_t now_ = 1000 * kSecond;
};

TEST_F(RateLimiterTest, ABurstPassesThenTheUserIsRefusedNamingTheLimit) {
  auto limiter = Make(/*per_second=*/1, /*burst=*/3);
  for (int i = 0; i < 3; ++i) EXPECT_THAT(limiter->Admit("bot"), IsOk()) << i;
  EXPECT_THAT(limiter->Admit("bot"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("user_id: \"bot\""),
                             HasSubstr("3 IssueCoupon calls at once"),
                             HasSubstr("1 per second"), HasSubstr("retry in 1s"))));
  // Someone else is not held back by the bot.
  EXPECT_THAT(limiter->Admit("alice"), IsOk());
}

TEST_F(RateLimiterTest, TokensComeBackAtTheRate) {
  auto limiter = Make(/*per_second=*/2, /*burst=*/2);
  ASSERT_THAT(limiter->Admit("u"), IsOk());
  ASSERT_THAT(limiter->Admit("u"), IsOk());
  ASSERT_THAT(limiter->Admit("u"), StatusIs(absl::StatusCode::kResourceExhausted,
                                            HasSubstr("retry in 500ms")));
  now_ += kSecond / 4;  // half a token
  EXPECT_THAT(limiter->Admit("u"), StatusIs(absl::StatusCode::kResourceExhausted,
                                            HasSubstr("retry in 250ms")));
  now_ += kSecond / 4;  // a whole one
  EXPECT_THAT(limiter->Admit("u"), IsOk());
  EXPECT_THAT(limiter->Admit("u"), StatusIs(absl::StatusCode::kResourceExhausted));
  // A long pause refills to the burst, never beyond it.
  now_ += 3600 * kSecond;
  EXPECT_THAT(limiter->Admit("u"), IsOk());
  EXPECT_THAT(limiter->Admit("u"), IsOk());
  EXPECT_THAT(limiter->Admit("u"), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(RateLimiterTest, RefusedCallsDoNotCount) {
  auto limiter = Make(/*per_second=*/1, /*burst=*/1);
  ASSERT_THAT(limiter->Admit("u"), IsOk());
  for (int i = 0; i < 100; ++i) {
    ASSERT_THAT(limiter->Admit("u"), StatusIs(absl::StatusCode::kResourceExhausted));
  }
  now_ += kSecond;
  EXPECT_THAT(limiter->Admit("u"), IsOk());
}

TEST_F(RateLimiterTest, OffAdmitsEverythingAndTracksNobody) {
  auto limiter = Make(/*per_second=*/0, /*burst=*/0);
  for (int i = 0; i < 1000; ++i) ASSERT_THAT(limiter->Admit("u"), IsOk());
  EXPECT_EQ(limiter->tracked_users(), 0u);
}

TEST_F(RateLimiterTest, IdleUsersAreForgottenWithoutChangingAnyAnswer) {
  auto limiter = Make(/*per_second=*/1, /*burst=*/2);
  for (int u = 0; u < 5000; ++u) ASSERT_THAT(limiter->Admit(absl::StrCat("u", u)), IsOk());
  EXPECT_EQ(limiter->tracked_users(), 5000u);
  // Everyone's bucket is full again after burst / rate = 2 s: the next new
  // user in each shard sweeps it.
  now_ += 3 * kSecond;
  for (int u = 0; u < 5000; ++u) {
    ASSERT_THAT(limiter->Admit(absl::StrCat("new", u)), IsOk());
  }
  EXPECT_LE(limiter->tracked_users(), 5000u + UserRateLimiter::kShards);
  EXPECT_GE(limiter->tracked_users(), 5000u);
  // A forgotten user starts with a full burst, as if remembered.
  EXPECT_THAT(limiter->Admit("u1"), IsOk());
  EXPECT_THAT(limiter->Admit("u1"), IsOk());
  EXPECT_THAT(limiter->Admit("u1"), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(RateLimiterTest, AUserStillLimitedIsNotSweptAway) {
  auto limiter = Make(/*per_second=*/1, /*burst=*/2);
  ASSERT_THAT(limiter->Admit("bot"), IsOk());
  ASSERT_THAT(limiter->Admit("bot"), IsOk());
  // The bot keeps calling, so its bucket never fills up again.
  now_ += kSecond * 19 / 10;
  ASSERT_THAT(limiter->Admit("bot"), IsOk());  // 1.9 tokens, 0.9 left
  // Past the sweep period (2 s): new users make every shard sweep.
  now_ += kSecond * 2 / 10;
  for (int u = 0; u < 2000; ++u) ASSERT_THAT(limiter->Admit(absl::StrCat("u", u)), IsOk());
  // 1.1 tokens: one call, not the fresh burst of 2 a forgotten bot would get.
  EXPECT_THAT(limiter->Admit("bot"), IsOk());
  EXPECT_THAT(limiter->Admit("bot"), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(RateLimiterTest, MemoryIsBoundedAndNewUsersPastItAreLetThrough) {
  constexpr size_t kMaxUsers = 10 * UserRateLimiter::kShards;
  auto limiter = Make(/*per_second=*/1, /*burst=*/1, kMaxUsers);
  for (int u = 0; u < 100'000; ++u) {
    ASSERT_THAT(limiter->Admit(absl::StrCat("flood", u)), IsOk()) << u;
  }
  EXPECT_LE(limiter->tracked_users(), kMaxUsers);
  EXPECT_GE(limiter->tracked_users(), kMaxUsers / 2);
}

TEST(UserRateLimit, BadValuesNameTheFlag) {
  UserRateLimit limit;
  limit.per_second = -1;
  EXPECT_THAT(limit.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("--user_rate_limit")));
  limit.per_second = 5;
  limit.burst = 0;
  EXPECT_THAT(limit.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                         AllOf(HasSubstr("--user_burst"), HasSubstr("got 0"))));
  limit.burst = 10;
  EXPECT_THAT(limit.Validate(), IsOk());
  limit.per_second = 0;  // off: the burst does not matter
  limit.burst = 0;
  EXPECT_THAT(limit.Validate(), IsOk());
}

}  // namespace
}  // namespace coupon::gateway
