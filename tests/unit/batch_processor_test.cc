#include "issuer-worker/batch_processor.h"

#include <condition_variable>
#include <mutex>

#include "common/wire/event_codec.h"
#include "coupon/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_publisher.h"
#include "tests/testing/status_matchers.h"

namespace coupon::worker {
namespace {

using ::coupon::testing::FakePublisher;
using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// Decides against an in-memory snapshot: the real DecideBatch, no database.
class MemoryStore : public IssuanceStore {
 public:
  absl::StatusOr<BatchDecision> DecideAndStore(const std::vector<IssueRequest>& requests,
                                               UnixMicros now, const Decide& decide,
                                               const Meanwhile& meanwhile) override {
    ++calls;
    if (!fail_with.ok()) return fail_with;
    BatchDecision decision = decide(requests, snapshot, now);
    if (meanwhile) meanwhile();
    return decision;
  }
  Snapshot snapshot;
  absl::Status fail_with;
  int calls = 0;
};

CouponInfo Coupon(int64_t id, int64_t stock) {
  CouponInfo c;
  c.coupon_id = id;
  c.total_quantity = stock;
  c.remaining_quantity = stock;
  return c;
}

RawEvent Event(const IssueRequest& r, int64_t offset) {
  return RawEvent{CouponKey(r.coupon_id), EncodeIssueRequested(r),
                  "coupon-issue-request", 3, offset};
}

class BatchProcessorTest : public ::testing::Test {
 protected:
  BatchProcessorTest() : processor_(&store_, &publisher_, TopicNames{}) {
    store_.snapshot.coupons[7] = Coupon(7, 1);
  }
  MemoryStore store_;
  FakePublisher publisher_;
  BatchProcessor processor_;
  BatchStats stats_;
};

TEST_F(BatchProcessorTest, PublishesOneResultPerRequestKeyedByCoupon) {
  std::vector<RawEvent> events = {Event({"r1", 7, "a", 1, "gw"}, 10),
                                  Event({"r2", 7, "b", 1, "gw"}, 11)};
  ASSERT_THAT(processor_.Process(events, absl::Seconds(5), &stats_), IsOk());
  auto sent = publisher_.sent();
  ASSERT_THAT(sent, SizeIs(2));
  for (const auto& s : sent) {
    EXPECT_EQ(s.topic, "coupon-issue-result");
    EXPECT_EQ(s.key, "7");
  }
  EXPECT_EQ(DecodeIssueResult(sent[0].payload)->outcome, Outcome::kIssued);
  EXPECT_EQ(DecodeIssueResult(sent[1].payload)->outcome, Outcome::kSoldOut);
  EXPECT_EQ(stats_.decided, 2u);
  EXPECT_EQ(stats_.issued, 1u);
  // Each result says how far its request partition is decided: the batch's
  // last offset there (gateways count places in line from it).
  for (const auto& s : sent) {
    ASSERT_THAT(s.headers, SizeIs(1));
    EXPECT_EQ(s.headers[0].first, kDecidedThroughHeader);
    absl::StatusOr<DecidedThrough> through = DecodeDecidedThrough(s.headers[0].second);
    ASSERT_TRUE(through.ok()) << through.status();
    EXPECT_EQ(through->offset, 11);
    EXPECT_EQ(through->partition, events[0].partition);
  }
}

TEST_F(BatchProcessorTest, MalformedAndUnknownGoToTheDeadLetterTopic) {
  std::vector<RawEvent> events = {
      RawEvent{"k", "\x01garbage", "coupon-issue-request", 3, 20},
      Event({"r1", 99, "a", 1, "gw"}, 21),  // unknown coupon
      Event({"r2", 7, "b", 1, "gw"}, 22)};
  ASSERT_THAT(processor_.Process(events, absl::Seconds(5), &stats_), IsOk());
  EXPECT_EQ(stats_.dead_letters, 2u);
  int dead = 0, results = 0;
  for (const auto& s : publisher_.sent()) {
    if (s.topic == "coupon-issue-request.dlq") {
      v1::DeadLetter dl;
      ASSERT_TRUE(dl.ParseFromString(s.payload));
      EXPECT_EQ(dl.partition(), 3);
      EXPECT_FALSE(dl.reason().empty());
      if (dl.offset() == 21) EXPECT_THAT(dl.reason(), HasSubstr("coupon_id"));
      ++dead;
    } else {
      ++results;
    }
  }
  EXPECT_EQ(dead, 2);
  EXPECT_EQ(results, 1);
}

TEST_F(BatchProcessorTest, OnlyMalformedEventsNeverTouchTheStore) {
  std::vector<RawEvent> events = {RawEvent{"", "", "coupon-issue-request", 0, 1}};
  ASSERT_THAT(processor_.Process(events, absl::Seconds(5), &stats_), IsOk());
  EXPECT_EQ(store_.calls, 0);
  EXPECT_EQ(stats_.dead_letters, 1u);
}

TEST_F(BatchProcessorTest, StoreFailurePublishesNothing) {
  store_.fail_with = absl::UnavailableError("postgres: down");
  std::vector<RawEvent> events = {Event({"r1", 7, "a", 1, "gw"}, 10)};
  EXPECT_THAT(processor_.Process(events, absl::Seconds(5), &stats_),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(publisher_.sent(), SizeIs(0));
}

TEST_F(BatchProcessorTest, UnacknowledgedResultFailsTheBatch) {
  publisher_.set_delivery_status(absl::UnavailableError("kafka: down"));
  std::vector<RawEvent> events = {Event({"r1", 7, "a", 1, "gw"}, 10)};
  EXPECT_THAT(processor_.Process(events, absl::Seconds(5), &stats_),
              StatusIs(absl::StatusCode::kUnavailable));
}

// Holds every Publish until opened, as a broker connection that is slow to
// take events would hold librdkafka's queue.
class GatedPublisher : public EventPublisher {
 public:
  void Publish(const std::string& topic, std::string key, std::string payload,
               Headers headers, DeliveryCallback done) override {
    std::unique_lock<std::mutex> lock(mu_);
    opened_.wait(lock, [&] { return open_; });
    lock.unlock();
    inner.Publish(topic, std::move(key), std::move(payload), std::move(headers),
                  std::move(done));
  }
  bool Available() const override { return true; }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    opened_.notify_all();
  }
  FakePublisher inner;

 private:
  std::mutex mu_;
  std::condition_variable opened_;
  bool open_ = false;
};

TEST(BatchProcessorPublishingTest, BatchesGoOutInTheOrderSubmittedAndWaitCoversThemAll) {
  MemoryStore store;
  store.snapshot.coupons[7] = Coupon(7, 100);
  GatedPublisher publisher;
  BatchProcessor processor(&store, &publisher, TopicNames{});
  std::vector<RawEvent> first, second;
  for (int i = 0; i < 20; ++i) {
    first.push_back(Event({absl::StrCat("a", i), 7, absl::StrCat("ua", i), 1, "gw"}, i));
    second.push_back(Event({absl::StrCat("b", i), 7, absl::StrCat("ub", i), 1, "gw"}, 20 + i));
  }
  BatchStats first_stats, second_stats;
  // Submit does not wait for the publisher: both batches are submitted while
  // it takes nothing.
  absl::StatusOr<BatchProcessor::Submitted> a =
      processor.Submit(first, absl::Seconds(5), &first_stats);
  ASSERT_THAT(a.status(), IsOk());
  absl::StatusOr<BatchProcessor::Submitted> b =
      processor.Submit(second, absl::Seconds(5), &second_stats);
  ASSERT_THAT(b.status(), IsOk());
  EXPECT_EQ(first_stats.issued, 20u);
  // Nothing is acknowledged yet, so the batch is not done.
  BatchProcessor::Submitted not_yet = *a;
  not_yet.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_THAT(processor.Wait(not_yet, &first_stats),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  publisher.Open();
  ASSERT_THAT(processor.Wait(*b, &second_stats), IsOk());
  ASSERT_THAT(processor.Wait(*a, &first_stats), IsOk());
  auto sent = publisher.inner.sent();
  ASSERT_THAT(sent, SizeIs(40));
  for (int i = 0; i < 40; ++i) {
    absl::StatusOr<IssueResult> r = DecodeIssueResult(sent[i].payload);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->request_id, absl::StrCat(i < 20 ? "a" : "b", i % 20)) << "event " << i;
  }
}

}  // namespace
}  // namespace coupon::worker
