// Replay safety against the real broker: idempotency keys sent again, an
// event delivered twice (as after a worker crash between the database commit
// and the offset commit), and a poison event that must not stall its
// partition.

#include <librdkafka/rdkafkacpp.h>

#include <future>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/wire/event_codec.h"
#include "common/kafka/producer.h"
#include "common/wire/proto_convert.h"
#include "coupon/v1/events.pb.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

class ReplayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new IssuanceStack();
    stack_->AddGateway();
    stack_->AddWorker();
    kafka::ProducerConfig config;
    config.brokers = KafkaBrokers();
    auto producer = kafka::Producer::Create(config);
    CHECK(producer.ok()) << producer.status();
    producer_ = producer->release();
  }
  static void TearDownTestSuite() {
    delete producer_;
    delete stack_;
  }

  // Writes straight to a topic, as another producer (or kcat) would.
  static void ProduceRaw(const std::string& topic, const std::string& key,
                         const std::string& payload) {
    std::promise<absl::Status> acked;
    producer_->Publish(topic, key, payload, {},
                       [&](absl::Status s, Placement) { acked.set_value(s); });
    absl::Status s = acked.get_future().get();
    ASSERT_TRUE(s.ok()) << s;
  }

  // Every result published on the result topic from now on, read straight
  // from the broker, as every gateway reads them. Start() before producing.
  class ResultTopic {
   public:
    ResultTopic() {
      std::string error;
      std::unique_ptr<RdKafka::Conf> conf(
          RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
      conf->set("bootstrap.servers", KafkaBrokers(), error);
      conf->set("group.id", "coupon-replay-test-reader", error);
      conf->set("enable.auto.commit", "false", error);
      consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
      CHECK(consumer_) << error;
      std::vector<RdKafka::TopicPartition*> ends;
      for (int32_t p = 0;; ++p) {
        int64_t low = 0, high = 0;
        if (consumer_->query_watermark_offsets(TestKafka().result_topic, p, &low,
                                               &high, 10000) !=
            RdKafka::ERR_NO_ERROR) {
          break;
        }
        ends.push_back(RdKafka::TopicPartition::create(TestKafka().result_topic, p, high));
      }
      CHECK(!ends.empty()) << kStackHint;
      consumer_->assign(ends);
      RdKafka::TopicPartition::destroy(ends);
    }
    ~ResultTopic() { consumer_->close(); }

    // The results for `ids` published since the constructor, in order, until
    // each id has `per_id` of them or `deadline`.
    std::vector<IssueResult> Read(const std::set<std::string>& ids, size_t per_id,
                                  absl::Time deadline) {
      std::vector<IssueResult> out;
      std::map<std::string, size_t> count;
      auto done = [&] {
        for (const auto& id : ids) {
          if (count[id] < per_id) return false;
        }
        return true;
      };
      while (!done() && absl::Now() < deadline) {
        std::unique_ptr<RdKafka::Message> m(consumer_->consume(200));
        if (m->err() != RdKafka::ERR_NO_ERROR) continue;
        auto r = DecodeIssueResult(absl::string_view(
            static_cast<const char*>(m->payload()), m->len()));
        if (!r.ok() || !ids.count(r->request_id)) continue;
        ++count[r->request_id];
        out.push_back(*r);
      }
      return out;
    }

   private:
    std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  };

  static int64_t Issued(int64_t coupon) {
    return QueryInt(stack_->db(),
                    "SELECT count(*) FROM user_coupons WHERE coupon_id = $1",
                    {absl::StrCat(coupon)});
  }

  static IssuanceStack* stack_;
  static kafka::Producer* producer_;
};

IssuanceStack* ReplayTest::stack_ = nullptr;
kafka::Producer* ReplayTest::producer_ = nullptr;

TEST_F(ReplayTest, SameIdempotencyKeyIsOneRequest) {
  const int64_t coupon = stack_->CreateCoupon(10).coupon_id();
  const std::string id = absl::StrCat("idem-", coupon);
  std::vector<IssueCall> calls(20, IssueCall{"idem-user", id, {}, {}});
  IssueConcurrently(stack_->stub(), coupon, calls);
  for (const IssueCall& c : calls) {
    ASSERT_TRUE(c.status.ok()) << c.status.error_message();
    EXPECT_EQ(c.response.request_id(), id);
    EXPECT_THAT(c.response.outcome(),
                ::testing::AnyOf(v1::ISSUE_OUTCOME_ACCEPTED,
                                 v1::ISSUE_OUTCOME_ISSUED));
  }
  WatchOutcome w = WatchToEnd(stack_->stub(), {id});
  ASSERT_TRUE(w.status.ok());
  ASSERT_EQ(w.results.size(), 1u);
  EXPECT_EQ(w.results[0].outcome(), v1::ISSUE_OUTCOME_ISSUED);

  // Sent again after the decision: the same answer, no second copy.
  std::vector<IssueCall> again = {{"idem-user", id, {}, {}}};
  IssueConcurrently(stack_->stub(), coupon, again);
  ASSERT_TRUE(again[0].status.ok());
  EXPECT_EQ(again[0].response.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_EQ(again[0].response.user_coupon_id(), w.results[0].user_coupon_id());
  EXPECT_EQ(Issued(coupon), 1);
  EXPECT_EQ(QueryInt(stack_->db(),
                     "SELECT remaining_quantity FROM coupons WHERE coupon_id = $1",
                     {absl::StrCat(coupon)}),
            9);

  // The same key for another user is refused, not silently merged.
  std::vector<IssueCall> misuse = {{"someone-else", id, {}, {}}};
  IssueConcurrently(stack_->stub(), coupon, misuse);
  EXPECT_EQ(misuse[0].status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(ReplayTest, RedeliveredEventRepublishesTheStoredResult) {
  const int64_t coupon = stack_->CreateCoupon(1).coupon_id();
  const std::string id = absl::StrCat("redeliver-", coupon);
  std::vector<IssueCall> calls = {{"first", id, {}, {}}};
  IssueConcurrently(stack_->stub(), coupon, calls);
  ASSERT_EQ(calls[0].response.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
  WatchOutcome decided = WatchToEnd(stack_->stub(), {id});
  ASSERT_EQ(decided.results.size(), 1u);
  ASSERT_EQ(decided.results[0].outcome(), v1::ISSUE_OUTCOME_ISSUED);

  // Deliver the very same event again, followed by a new request of another
  // user behind it in the same partition, and read what the worker
  // publishes for them.
  ResultTopic topic;
  IssueRequest replay{id, coupon, "first", absl::ToUnixMicros(absl::Now()), "test"};
  ProduceRaw(TestKafka().request_topic, CouponKey(coupon), EncodeIssueRequested(replay));
  IssueRequest next{absl::StrCat(id, "-next"), coupon, "second",
                    absl::ToUnixMicros(absl::Now()), "test"};
  ProduceRaw(TestKafka().request_topic, CouponKey(coupon), EncodeIssueRequested(next));

  std::vector<IssueResult> published = topic.Read(
      {id, next.request_id}, 1, absl::Now() + absl::Seconds(60));
  ASSERT_EQ(published.size(), 2u) << "the worker published no result for one of them";
  EXPECT_EQ(published[0].request_id, id) << "in partition order";
  EXPECT_EQ(ToProto(published[0]).SerializeAsString(),
            decided.results[0].SerializeAsString())
      << "a replay must publish the stored result, not a new decision";
  EXPECT_EQ(published[1].outcome, Outcome::kSoldOut);

  // A live watch of the coupon hears each decision once: the gateway does not
  // pass a replayed result on to watches by coupon or user.
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::WatchIssueResultsRequest by_coupon;
  by_coupon.set_coupon_id(coupon);
  auto reader = stack_->stub().WatchIssueResults(&ctx, by_coupon);
  reader->WaitForInitialMetadata();
  ProduceRaw(TestKafka().request_topic, CouponKey(coupon), EncodeIssueRequested(replay));
  IssueRequest last{absl::StrCat(id, "-last"), coupon, "third",
                    absl::ToUnixMicros(absl::Now()), "test"};
  ProduceRaw(TestKafka().request_topic, CouponKey(coupon), EncodeIssueRequested(last));
  // Until `last` (the gateway may pass on `-next` still, if it learns of it
  // only now).
  v1::IssueResult r;
  bool saw_last = false;
  while (!saw_last && reader->Read(&r)) {
    EXPECT_NE(r.request_id(), id) << "the replay reached a live watch again";
    saw_last = r.request_id() == last.request_id;
  }
  EXPECT_TRUE(saw_last) << "the new request's result never came";
  ctx.TryCancel();
  reader->Finish();
  EXPECT_EQ(Issued(coupon), 1);
}

TEST_F(ReplayTest, PoisonEventGoesToTheDeadLetterTopicAndThePartitionMovesOn) {
  const int64_t coupon = stack_->CreateCoupon(5).coupon_id();
  const std::string dlq = TestKafka().dead_letter_topic;

  // Where the dead-letter topic ends now.
  std::string error;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  conf->set("bootstrap.servers", KafkaBrokers(), error);
  conf->set("group.id", absl::StrCat("dlq-reader-", coupon), error);
  conf->set("enable.auto.commit", "false", error);
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  ASSERT_TRUE(consumer) << error;
  int64_t low = 0, high = 0;
  ASSERT_EQ(consumer->query_watermark_offsets(dlq, 0, &low, &high, 10000),
            RdKafka::ERR_NO_ERROR);

  const std::string garbage = absl::StrCat("\x0f\xff not a protobuf ", coupon);
  ProduceRaw(TestKafka().request_topic, CouponKey(coupon), garbage);
  IssueRequest unknown{absl::StrCat("ghost-", coupon), coupon + 1'000'000, "u",
                       absl::ToUnixMicros(absl::Now()), "test"};
  ProduceRaw(TestKafka().request_topic, CouponKey(coupon), EncodeIssueRequested(unknown));

  // A good request behind them, in the same partition, is still decided.
  const std::string id = absl::StrCat("after-poison-", coupon);
  std::vector<IssueCall> calls = {{"good-user", id, {}, {}}};
  IssueConcurrently(stack_->stub(), coupon, calls);
  WatchOutcome w = WatchToEnd(stack_->stub(), {id});
  ASSERT_EQ(w.results.size(), 1u);
  EXPECT_EQ(w.results[0].outcome(), v1::ISSUE_OUTCOME_ISSUED);

  std::unique_ptr<RdKafka::TopicPartition> from(
      RdKafka::TopicPartition::create(dlq, 0, high));
  std::vector<RdKafka::TopicPartition*> assignment{from.get()};
  ASSERT_EQ(consumer->assign(assignment), RdKafka::ERR_NO_ERROR);
  std::vector<std::string> reasons;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  bool found_garbage = false, found_unknown = false;
  while (absl::Now() < until && !(found_garbage && found_unknown)) {
    std::unique_ptr<RdKafka::Message> m(consumer->consume(500));
    if (m->err() != RdKafka::ERR_NO_ERROR) continue;
    v1::DeadLetter dl;
    ASSERT_TRUE(dl.ParseFromArray(m->payload(), static_cast<int>(m->len())));
    EXPECT_FALSE(dl.reason().empty());
    if (dl.payload() == garbage) found_garbage = true;
    if (dl.payload() == EncodeIssueRequested(unknown)) {
      found_unknown = true;
      EXPECT_THAT(dl.reason(), ::testing::HasSubstr("coupon_id"));
    }
  }
  consumer->close();
  EXPECT_TRUE(found_garbage) << "garbage event not in " << dlq;
  EXPECT_TRUE(found_unknown) << "unknown-coupon event not in " << dlq;
}

}  // namespace
}  // namespace coupon::testing
