#include "issuer-worker/batch_processor.h"

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
                                               UnixMicros now, const Decide& decide) override {
    ++calls;
    if (!fail_with.ok()) return fail_with;
    return decide(requests, snapshot, now);
  }
  Snapshot snapshot;
  absl::Status fail_with;
  int calls = 0;
};

RawEvent Event(const IssueRequest& r, int64_t offset) {
  return RawEvent{CouponKey(r.coupon_id), EncodeIssueRequested(r),
                  "coupon-issue-request", 3, offset};
}

class BatchProcessorTest : public ::testing::Test {
 protected:
  BatchProcessorTest() : processor_(&store_, &publisher_, TopicNames{}) {
    CouponInfo c;
    c.coupon_id = 7;
    c.total_quantity = 1;
    c.remaining_quantity = 1;
    store_.snapshot.coupons[7] = c;
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

}  // namespace
}  // namespace coupon::worker
