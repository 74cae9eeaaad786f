#include "common/service/timer_thread.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coupon::service {
namespace {

TEST(TimerThread, RunsCallbacksInTheOrderOfTheirTimes) {
  TimerThread timers;
  absl::Mutex mu;
  std::vector<int> ran;
  absl::Notification last;
  const absl::Time now = absl::Now();
  // Scheduled out of order; a past time runs at once.
  timers.Schedule(now + absl::Milliseconds(60), [&] {
    absl::MutexLock lock(&mu);
    ran.push_back(3);
    last.Notify();
  });
  timers.Schedule(now + absl::Milliseconds(30), [&] {
    absl::MutexLock lock(&mu);
    ran.push_back(2);
  });
  timers.Schedule(now - absl::Seconds(1), [&] {
    absl::MutexLock lock(&mu);
    ran.push_back(1);
  });
  ASSERT_TRUE(last.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::MutexLock lock(&mu);
  EXPECT_THAT(ran, ::testing::ElementsAre(1, 2, 3));
}

TEST(TimerThread, ACancelledCallbackNeverRuns) {
  TimerThread timers;
  std::atomic<bool> ran{false};
  absl::Notification after;
  const TimerThread::Id id =
      timers.Schedule(absl::Now() + absl::Milliseconds(20), [&] { ran = true; });
  timers.Cancel(id);
  timers.Schedule(absl::Now() + absl::Milliseconds(50), [&] { after.Notify(); });
  ASSERT_TRUE(after.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(ran.load());
  timers.Cancel(id);  // again, and unknown ids: nothing happens
  timers.Cancel(12345);
}

TEST(TimerThread, CancelWaitsForARunningCallback) {
  TimerThread timers;
  absl::Notification started, release;
  std::atomic<bool> finished{false};
  const TimerThread::Id id = timers.Schedule(absl::Now(), [&] {
    started.Notify();
    release.WaitForNotification();
    finished = true;
  });
  started.WaitForNotification();
  std::thread releaser([&] {
    absl::SleepFor(absl::Milliseconds(50));
    release.Notify();
  });
  timers.Cancel(id);
  EXPECT_TRUE(finished.load()) << "Cancel returned while the callback ran";
  releaser.join();
}

TEST(TimerThread, ACallbackMayScheduleAndCancel) {
  TimerThread timers;
  absl::Notification second;
  TimerThread::Id self = 0;
  self = timers.Schedule(absl::Now(), [&] {
    timers.Cancel(self);  // itself, running: returns at once
    timers.Schedule(absl::Now(), [&] { second.Notify(); });
  });
  EXPECT_TRUE(second.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

}  // namespace
}  // namespace coupon::service
