// KafkaIssuer's answers when the broker does not acknowledge in time. The
// broker is a publisher that keeps the delivery reports until the test sends
// them.

#include "gateway/issue/kafka_issuer.h"

#include <future>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_answer_store.h"
#include "tests/testing/status_matchers.h"

namespace coupon::gateway {
namespace {

using ::coupon::testing::StatusIs;
using ::testing::HasSubstr;

/// Queues events and reports nothing until Deliver(): a broker that died a
/// moment ago, or hangs.
class SilentPublisher : public EventPublisher {
 public:
  void Publish(const std::string&, std::string, std::string, Headers,
               DeliveryCallback done) override {
    std::lock_guard<std::mutex> lock(mu_);
    held_.push_back(std::move(done));
  }
  bool Available() const override { return true; }
  // Reports every held event with `status`, as librdkafka does in the end.
  void Deliver(absl::Status status) {
    std::vector<DeliveryCallback> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held.swap(held_);
    }
    for (auto& done : held) done(status, status.ok() ? Placement{0, 0} : Placement{});
  }

 private:
  std::mutex mu_;
  std::vector<DeliveryCallback> held_;
};

CouponInfo OpenCoupon() {
  CouponInfo c;
  c.coupon_id = 7;
  c.total_quantity = 10;
  c.remaining_quantity = 10;
  return c;
}

TEST(KafkaIssuerTest, UnacknowledgedCallIsUnavailableBeforeItsDeadlineOnce) {
  SilentPublisher broker;
  ResultHub hub;
  testing::FakeAnswerStore store;
  KafkaIssuer issuer(&broker, &store, &hub, "coupon-issue-request", "gw-1");
  std::promise<absl::StatusOr<IssueReply>> answer;
  std::atomic<int> answers{0};
  issuer.Issue({7, "user-1", "req-1"}, OpenCoupon(),
               absl::Now() + absl::Milliseconds(300),
               [&](absl::StatusOr<IssueReply> r) {
                 if (answers.fetch_add(1) == 0) answer.set_value(std::move(r));
               });

  // Answered without any report from the broker.
  auto future = answer.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)),
            std::future_status::ready);
  EXPECT_THAT(future.get(), StatusIs(absl::StatusCode::kUnavailable,
                                     HasSubstr("same request_id")));
  // The broker acknowledges it after all: the call was answered already.
  broker.Deliver(absl::OkStatus());
  EXPECT_EQ(answers.load(), 1);
}

TEST(KafkaIssuerTest, AcknowledgedInTimeIsAcceptedOnce) {
  SilentPublisher broker;
  ResultHub hub;
  testing::FakeAnswerStore store;
  KafkaIssuer issuer(&broker, &store, &hub, "coupon-issue-request", "gw-1");
  std::vector<absl::StatusOr<IssueReply>> answers;
  std::mutex mu;
  for (int i = 0; i < 3; ++i) {
    issuer.Issue({7, "user-1", absl::StrCat("req-", i)}, OpenCoupon(),
                 absl::Now() + absl::Hours(1),
                 [&](absl::StatusOr<IssueReply> r) {
                   std::lock_guard<std::mutex> lock(mu);
                   answers.push_back(std::move(r));
                 });
  }
  broker.Deliver(absl::OkStatus());
  ASSERT_EQ(answers.size(), 3u);
  for (const auto& a : answers) {
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->outcome, Outcome::kAccepted);
  }
}

TEST(KafkaIssuerTest, ReportsAfterTheIssuerIsGoneAreStillAnswered) {
  SilentPublisher broker;
  ResultHub hub;  // outlives the reports, as in the gateway
  testing::FakeAnswerStore store;
  std::atomic<int> answers{0};
  {
    KafkaIssuer issuer(&broker, &store, &hub, "coupon-issue-request", "gw-1");
    issuer.Issue({7, "user-1", "req-1"}, OpenCoupon(),
                 absl::Now() + absl::Hours(1),
                 [&](absl::StatusOr<IssueReply>) { answers.fetch_add(1); });
  }
  // As the producer's flush or purge does at shutdown.
  broker.Deliver(absl::UnavailableError("kafka: purged"));
  EXPECT_EQ(answers.load(), 1);
}

}  // namespace
}  // namespace coupon::gateway
