// The worker's consume loop with a fake consumer group: batches are
// committed once decided, a failed batch is given back and retried, and the
// loop never reads on past a batch it could not give back.

#include "issuer-worker/consume_loop.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/wire/event_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_publisher.h"
#include "tests/testing/status_matchers.h"

namespace coupon::worker {
namespace {

using ::coupon::testing::FakePublisher;
using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

/// One partition's log and a read position per partition; Seek moves the
/// position back, as librdkafka's does. Stops the loop once the log is read
/// and every batch decided (or after a bounded number of empty polls).
class FakeGroup : public kafka::GroupConsumer {
 public:
  FakeGroup(std::atomic<bool>* stop) : stop_(stop) {}

  void Append(int32_t partition, const IssueRequest& r) {
    logs_[partition].push_back(r);
    owned_.insert(partition);
  }

  std::optional<kafka::Record> Poll(absl::Duration) override {
    for (auto& [partition, log] : logs_) {
      int64_t& pos = positions_[partition];
      if (pos < static_cast<int64_t>(log.size())) {
        const IssueRequest& r = log[pos];
        ++handed_out_;
        return kafka::Record{CouponKey(r.coupon_id), EncodeIssueRequested(r),
                             "coupon-issue-request", partition, pos++};
      }
    }
    if (++empty_polls_ > 50) stop_->store(true);  // a deadline for the loop
    return std::nullopt;
  }
  bool Owns(int32_t partition) const override {
    return owned_.count(partition) > 0;
  }
  absl::Status Commit(const std::map<int32_t, int64_t>& next) override {
    for (const auto& [partition, offset] : next) committed_[partition] = offset;
    // Everything read is decided: done.
    bool all = true;
    for (const auto& [partition, log] : logs_) {
      all = all && committed_[partition] == static_cast<int64_t>(log.size());
    }
    if (all) stop_->store(true);
    return absl::OkStatus();
  }
  absl::Status Seek(int32_t partition, int64_t offset) override {
    seeks_.push_back({partition, offset});
    if (!seek_error_.ok()) return seek_error_;
    positions_[partition] = offset;
    return absl::OkStatus();
  }
  void Close() override { closed_ = true; }

  std::map<int32_t, int64_t> committed_;
  int handed_out_ = 0;  // records Poll returned, replays included
  std::vector<std::pair<int32_t, int64_t>> seeks_;
  absl::Status seek_error_;
  std::set<int32_t> owned_;
  bool closed_ = false;

 private:
  std::atomic<bool>* stop_;
  std::map<int32_t, std::vector<IssueRequest>> logs_;
  std::map<int32_t, int64_t> positions_;
  int empty_polls_ = 0;
};

/// Decides with the decision it is given (DecideBatch), and runs the
/// caller's `meanwhile` as if the commit were on its way; fails the first
/// `failures` batches (before any write, or with `fail_at_commit` after
/// `meanwhile`, as a commit that failed).
class Store : public IssuanceStore {
 public:
  absl::StatusOr<BatchDecision> DecideAndStore(const std::vector<IssueRequest>& requests,
                                               UnixMicros now, const Decide& decide,
                                               const Meanwhile& meanwhile) override {
    batches.push_back(requests.size());
    if (on_decide) on_decide(batches.size());
    if (failures > 0) {
      --failures;
      if (fail_at_commit && meanwhile) meanwhile();
      if (on_failure) on_failure();
      return absl::UnavailableError("postgres: down");
    }
    if (meanwhile) meanwhile();
    if (after_meanwhile) after_meanwhile(batches.size());
    Snapshot snap;
    CouponInfo c;
    c.coupon_id = 7;
    c.total_quantity = c.remaining_quantity = 100;
    snap.coupons[7] = c;
    return decide(requests, std::move(snap), now);
  }
  int failures = 0;
  bool fail_at_commit = false;
  std::function<void()> on_failure;
  std::function<void(size_t call)> on_decide;  // before each decision, numbered from 1
  std::function<void(size_t call)> after_meanwhile;
  std::vector<size_t> batches;
};

class ConsumeLoopTest : public ::testing::Test {
 protected:
  ConsumeLoopTest()
      : group_(&stop_),
        processor_(&store_, &publisher_, TopicNames{}),
        loop_(&group_, &processor_,
              LoopConfig{/*max_batch=*/100, absl::Milliseconds(1),
                         absl::Seconds(5)}) {
    for (int i = 0; i < 3; ++i) {
      group_.Append(2,
                    {absl::StrCat("a", i), 7, absl::StrCat("u", i), 1, "gw"});
      group_.Append(5,
                    {absl::StrCat("b", i), 7, absl::StrCat("v", i), 1, "gw"});
    }
  }

  std::atomic<bool> stop_{false};
  FakeGroup group_;
  Store store_;
  FakePublisher publisher_;
  BatchProcessor processor_;
  ConsumeLoop loop_;
};

TEST_F(ConsumeLoopTest, CommitsTheNextOffsetsOnceTheBatchIsDecided) {
  ASSERT_THAT(loop_.Run(stop_), IsOk());
  EXPECT_THAT(group_.committed_, ElementsAre(Pair(2, 3), Pair(5, 3)));
  EXPECT_EQ(loop_.counters().decided.load(), 6);
  EXPECT_TRUE(group_.closed_) << "the loop leaves the group when it stops";
}

TEST_F(ConsumeLoopTest, TheNextBatchIsCollectedWhileTheTransactionCommits) {
  // Arrives while the first batch is decided: fetched during its commit.
  store_.on_decide = [this](size_t call) {
    if (call == 1) group_.Append(2, {"a-next", 7, "w", 1, "gw"});
  };
  int handed_out_at_commit = 0;
  store_.after_meanwhile = [&](size_t call) {
    if (call == 1) handed_out_at_commit = group_.handed_out_;
  };
  ASSERT_THAT(loop_.Run(stop_), IsOk());
  EXPECT_EQ(handed_out_at_commit, 7) << "the next batch was read during the commit";
  EXPECT_THAT(store_.batches, ElementsAre(6u, 1u));
  EXPECT_THAT(group_.committed_, ElementsAre(Pair(2, 4), Pair(5, 3)));
  EXPECT_TRUE(group_.seeks_.empty());
}

TEST_F(ConsumeLoopTest, AFailedCommitGivesBackTheBatchCollectedMeanwhileToo) {
  store_.failures = 1;
  store_.fail_at_commit = true;
  store_.on_decide = [this](size_t call) {
    if (call == 1) group_.Append(2, {"a-next", 7, "w", 1, "gw"});
  };
  ASSERT_THAT(loop_.Run(stop_), IsOk());
  // The batch collected meanwhile (partition 2 from offset 3) first, then
  // the failed one: the earlier offset stands.
  EXPECT_THAT(group_.seeks_, ElementsAre(Pair(2, 3), Pair(2, 0), Pair(5, 0)));
  EXPECT_THAT(group_.committed_, ElementsAre(Pair(2, 4), Pair(5, 3)));
  EXPECT_EQ(loop_.counters().decided.load(), 7) << "each request decided once";
}

TEST_F(ConsumeLoopTest, AFailedBatchIsGivenBackAndDecidedAgainBeforeAnyCommit) {
  store_.failures = 2;
  ASSERT_THAT(loop_.Run(stop_), IsOk());
  // Each failure seeks both partitions back to the batch's first events.
  EXPECT_THAT(group_.seeks_,
              ElementsAre(Pair(2, 0), Pair(5, 0), Pair(2, 0), Pair(5, 0)));
  EXPECT_THAT(group_.committed_, ElementsAre(Pair(2, 3), Pair(5, 3)));
  EXPECT_EQ(loop_.counters().retries.load(), 2);
  EXPECT_EQ(loop_.counters().decided.load(), 6) << "each request decided once";
}

// Issue 10, item 9: a seek that fails for a partition the member still owns
// must not let the consumer read on past the failed batch (the next commit
// would skip its events): the loop stops instead, committing nothing.
TEST_F(ConsumeLoopTest,
       AFailedSeekOfAnOwnedPartitionStopsTheLoopAndCommitsNothing) {
  store_.failures = 1;
  // More events arrive behind the failed batch: reading on would decide and
  // commit them, past the failed batch's.
  store_.on_failure = [this] {
    group_.Append(2, {"a-late", 7, "late", 1, "gw"});
  };
  group_.seek_error_ =
      absl::UnavailableError("kafka: seek partition 2: timed out");
  EXPECT_THAT(loop_.Run(stop_),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("no undecided event is skipped")));
  EXPECT_TRUE(group_.committed_.empty());
  EXPECT_TRUE(group_.closed_);
  EXPECT_EQ(store_.batches.size(), 1u)
      << "nothing decided after the failed seek";
}

TEST_F(ConsumeLoopTest, AFailedSeekOfAPartitionTakenAwayIsHarmless) {
  store_.failures = 1;
  // Both partitions move to another member while the batch fails.
  store_.on_failure = [this] { group_.owned_.clear(); };
  group_.seek_error_ = absl::FailedPreconditionError("kafka: not assigned");
  ASSERT_THAT(loop_.Run(stop_), IsOk());
  EXPECT_THAT(group_.seeks_, ElementsAre(Pair(2, 0), Pair(5, 0)));
  EXPECT_TRUE(group_.committed_.empty()) << "the new owner decides them";
}

/// Holds every delivery callback until Release; after it, acknowledges at
/// once with the released status.
class HeldPublisher : public EventPublisher {
 public:
  void Publish(const std::string&, std::string, std::string, Headers,
               DeliveryCallback done) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!released_) {
      held_.push_back(std::move(done));
      changed_.notify_all();
      return;
    }
    lock.unlock();
    done(status_, Placement{0, 0});
  }
  bool Available() const override { return true; }
  // Acknowledges what is held with `status`; later events are acknowledged
  // OK at once.
  void Release(absl::Status status) {
    std::vector<DeliveryCallback> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
      held.swap(held_);
    }
    for (auto& done : held) done(status, Placement{0, 0});
  }
  // How many are held once `n` are, or after 5 s: the batch processor
  // publishes from a thread of its own.
  size_t WaitHeld(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, std::chrono::seconds(5), [&] { return held_.size() >= n; });
    return held_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<DeliveryCallback> held_;
  bool released_ = false;
  absl::Status status_;
};

class PipelinedLoopTest : public ::testing::Test {
 protected:
  PipelinedLoopTest()
      : group_(&stop_),
        processor_(&store_, &publisher_, TopicNames{}),
        loop_(&group_, &processor_,
              LoopConfig{/*max_batch=*/100, absl::Milliseconds(1), absl::Seconds(5)}) {
    for (int i = 0; i < 3; ++i) {
      group_.Append(2, {absl::StrCat("a", i), 7, absl::StrCat("u", i), 1, "gw"});
      group_.Append(5, {absl::StrCat("b", i), 7, absl::StrCat("v", i), 1, "gw"});
    }
    // The first batch's transaction sees one more event arrive; the second
    // batch's sees how the first stands, then lets its acknowledgements go.
    store_.on_decide = [this](size_t call) {
      if (call == 1) group_.Append(2, {"a-next", 7, "w", 1, "gw"});
      if (call == 2) {
        first_held_ = publisher_.WaitHeld(6);
        committed_during_second_ = group_.committed_;
        publisher_.Release(first_ack_);
      }
    };
  }

  std::atomic<bool> stop_{false};
  FakeGroup group_;
  Store store_;
  HeldPublisher publisher_;
  BatchProcessor processor_;
  ConsumeLoop loop_;
  absl::Status first_ack_;
  size_t first_held_ = 0;
  std::map<int32_t, int64_t> committed_during_second_;
};

TEST_F(PipelinedLoopTest, TheNextBatchIsDecidedWhileTheOneBeforeAwaitsItsAcknowledgements) {
  ASSERT_THAT(loop_.Run(stop_), IsOk());
  EXPECT_THAT(store_.batches, ElementsAre(6u, 1u));
  EXPECT_EQ(first_held_, 6u) << "the first batch's results were still unacknowledged";
  EXPECT_TRUE(committed_during_second_.empty())
      << "a batch is committed only once its results are acknowledged";
  EXPECT_THAT(group_.committed_, ElementsAre(Pair(2, 4), Pair(5, 3)));
  EXPECT_TRUE(group_.seeks_.empty());
}

TEST_F(PipelinedLoopTest, TwoBatchesMayAwaitTheirAcknowledgementsWhileAThirdIsDecided) {
  size_t held_at_third = 0;
  store_.on_decide = [&](size_t call) {
    if (call == 1) group_.Append(2, {"a-next", 7, "w", 1, "gw"});
    if (call == 2) group_.Append(5, {"b-next", 7, "x", 1, "gw"});
    if (call == 3) {
      held_at_third = publisher_.WaitHeld(7);
      committed_during_second_ = group_.committed_;
      publisher_.Release(absl::OkStatus());
    }
  };
  ASSERT_THAT(loop_.Run(stop_), IsOk());
  EXPECT_THAT(store_.batches, ElementsAre(6u, 1u, 1u));
  EXPECT_EQ(held_at_third, 7u) << "the first two batches' results were unacknowledged";
  EXPECT_TRUE(committed_during_second_.empty());
  EXPECT_TRUE(group_.seeks_.empty()) << "no batch timed out waiting";
  EXPECT_THAT(group_.committed_, ElementsAre(Pair(2, 4), Pair(5, 4)));
}

TEST_F(PipelinedLoopTest, AFailedAcknowledgementGivesBackTheBatchAndTheOneDecidedAfterIt) {
  first_ack_ = absl::UnavailableError("kafka: broker down");
  ASSERT_THAT(loop_.Run(stop_), IsOk());
  // The second batch (partition 2 from offset 3) first, then the first (both
  // partitions from 0): where both hold a partition, the earlier offset
  // stands.
  EXPECT_THAT(group_.seeks_, ElementsAre(Pair(2, 3), Pair(2, 0), Pair(5, 0)));
  EXPECT_EQ(loop_.counters().retries.load(), 1);
  EXPECT_THAT(group_.committed_, ElementsAre(Pair(2, 4), Pair(5, 3)));
}

}  // namespace
}  // namespace coupon::worker
