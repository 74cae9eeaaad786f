#include "issuer-worker/worker.h"

#include <librdkafka/rdkafkacpp.h>
#include <unistd.h>

#include <mutex>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/kafka/config.h"
#include "common/kafka/producer.h"
#include "glog/logging.h"
#include "issuer-worker/batch_processor.h"
#include "issuer-worker/pg_issuance_store.h"

namespace coupon::worker {

absl::Status WorkerConfig::Validate() const {
  auto bad = [](absl::string_view flag, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
  };
  if (kafka_brokers.empty()) return bad("kafka_brokers", "is empty");
  if (pg_dsn.empty()) return bad("pg_dsn", "is empty");
  if (group_id.empty()) return bad("group_id", "is empty");
  if (request_topic.empty() || result_topic.empty() || dead_letter_topic.empty()) {
    return bad("request_topic/result_topic/dead_letter_topic", "is empty");
  }
  if (max_batch < 1 || max_batch > 100000) {
    return bad("max_batch", absl::StrCat("must be 1..100000, got ", max_batch));
  }
  if (batch_wait < absl::ZeroDuration() || batch_wait > absl::Seconds(1)) {
    return bad("batch_wait", "must be 0..1s");
  }
  if (publish_timeout < absl::Seconds(1)) {
    return bad("publish_timeout", "must be at least 1s");
  }
  if (session_timeout_ms < 1000) return bad("session_timeout_ms", "must be >= 1000");
  return absl::OkStatus();
}

namespace {

/// Tracks which partitions this member owns. librdkafka calls it from inside
/// consume(), on the worker loop's thread.
class Rebalancer : public RdKafka::RebalanceCb {
 public:
  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    std::string list;
    for (auto* p : partitions) absl::StrAppend(&list, " ", p->partition());
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      LOG(INFO) << "worker: assigned partitions" << list;
      for (auto* p : partitions) owned_.insert(p->partition());
      owned_count_.store(static_cast<int>(owned_.size()));
      consumer->assign(partitions);
    } else {
      // Nothing is in flight here: a batch is always committed (or given up
      // for a replay) before the next consume().
      LOG(INFO) << "worker: revoked partitions" << list;
      for (auto* p : partitions) owned_.erase(p->partition());
      owned_count_.store(static_cast<int>(owned_.size()));
      consumer->unassign();
    }
  }
  bool Owns(int32_t partition) const { return owned_.count(partition) > 0; }
  int owned_count() const { return owned_count_.load(); }

 private:
  std::set<int32_t> owned_;
  std::atomic<int> owned_count_{0};
};

}  // namespace

struct IssuerWorker::Impl {
  WorkerConfig config;
  Rebalancer rebalancer;  // outlives consumer
  std::unique_ptr<kafka::Producer> producer;
  std::unique_ptr<PgIssuanceStore> store;
  std::unique_ptr<BatchProcessor> processor;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer;
};

IssuerWorker::IssuerWorker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

int IssuerWorker::owned_partitions() const {
  return impl_->rebalancer.owned_count();
}

IssuerWorker::~IssuerWorker() {
  if (impl_->consumer) impl_->consumer->close();
}

absl::StatusOr<std::unique_ptr<IssuerWorker>> IssuerWorker::Create(
    const WorkerConfig& config) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->config = config;

  char host[256] = "worker";
  gethostname(host, sizeof(host) - 1);
  const std::string member = absl::StrCat(host, "-", getpid());

  kafka::ProducerConfig pc;
  pc.brokers = config.kafka_brokers;
  pc.client_id = absl::StrCat("coupon-issuer-", member);
  pc.message_timeout_ms = static_cast<int>(
      absl::ToInt64Milliseconds(config.publish_timeout));
  pc.linger_ms = 1;
  pc.extra = config.kafka_extra;
  auto producer = kafka::Producer::Create(pc);
  if (!producer.ok()) return producer.status();
  impl->producer = std::move(*producer);
  // Connect before the first batch needs it; not fatal, the loop retries.
  for (const std::string& topic : {config.result_topic, config.dead_letter_topic}) {
    if (absl::Status warm = impl->producer->WarmUp(topic, absl::Seconds(5));
        !warm.ok()) {
      LOG(WARNING) << "worker: " << warm;
    }
  }

  impl->store = std::make_unique<PgIssuanceStore>(config.pg_dsn,
                                                  config.pg_connect_timeout);
  if (absl::Status db = impl->store->Connect(); !db.ok()) {
    LOG(WARNING) << "worker: " << db << "; retrying with the first batch";
  }
  impl->processor = std::make_unique<BatchProcessor>(
      impl->store.get(), impl->producer.get(),
      TopicNames{config.result_topic, config.dead_letter_topic});

  std::map<std::string, std::string> props = {
      {"bootstrap.servers", config.kafka_brokers},
      {"group.id", config.group_id},
      {"client.id", pc.client_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"session.timeout.ms", absl::StrCat(config.session_timeout_ms)},
      {"heartbeat.interval.ms",
       absl::StrCat(std::max(100, config.session_timeout_ms / 5))},
      {"fetch.wait.max.ms", "10"},
      {"enable.partition.eof", "false"},
      // Read only what the producers committed to the log.
      {"isolation.level", "read_committed"},
  };
  for (const auto& [k, v] : config.kafka_extra) props[k] = v;
  auto conf = kafka::MakeConf(props);
  if (!conf.ok()) return conf.status();
  std::string error;
  if ((*conf)->set("rebalance_cb",
                   static_cast<RdKafka::RebalanceCb*>(&impl->rebalancer),
                   error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(error);
  }
  impl->consumer.reset(RdKafka::KafkaConsumer::create(conf->get(), error));
  if (!impl->consumer) {
    return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", error));
  }
  RdKafka::ErrorCode err = impl->consumer->subscribe({config.request_topic});
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("kafka subscribe: ", RdKafka::err2str(err)));
  }
  LOG(INFO) << "worker " << member << " joining group " << config.group_id
            << " on " << config.request_topic;
  return std::unique_ptr<IssuerWorker>(new IssuerWorker(std::move(impl)));
}

absl::Status IssuerWorker::Run(const std::atomic<bool>& stop) {
  Impl& im = *impl_;
  RdKafka::KafkaConsumer& consumer = *im.consumer;
  absl::Duration backoff = absl::Milliseconds(100);

  while (!stop.load()) {
    // Collect one batch: whatever arrives within batch_wait of the first
    // event, up to max_batch, per partition in offset order.
    std::map<int32_t, std::vector<RawEvent>> by_partition;
    int total = 0;
    absl::Time until = absl::InfiniteFuture();
    while (total < im.config.max_batch) {
      int wait_ms = total == 0 ? 100
                               : static_cast<int>(std::max<int64_t>(
                                     0, absl::ToInt64Milliseconds(
                                            until - absl::Now())));
      std::unique_ptr<RdKafka::Message> msg(consumer.consume(wait_ms));
      if (msg->err() == RdKafka::ERR__TIMED_OUT) {
        if (total > 0 || stop.load()) break;
        continue;
      }
      if (msg->err() != RdKafka::ERR_NO_ERROR) {
        LOG_EVERY_N(WARNING, 50) << "worker: consume: " << msg->errstr();
        if (total > 0) break;
        continue;
      }
      if (total == 0) until = absl::Now() + im.config.batch_wait;
      RawEvent e;
      if (msg->key()) e.key = *msg->key();
      e.payload.assign(static_cast<const char*>(msg->payload()), msg->len());
      e.topic = msg->topic_name();
      e.partition = msg->partition();
      e.offset = msg->offset();
      by_partition[e.partition].push_back(std::move(e));
      ++total;
      if (absl::Now() >= until) break;
    }

    // One transaction for the whole poll: each partition's events stay in
    // offset order, coupons are independent, and the coupon locks are taken
    // in id order. Per-partition transactions paid the fixed costs (commit,
    // acknowledgements, offset commit) once per ~50 events when a sale spans
    // many coupons.
    std::vector<RawEvent> batch;
    std::vector<std::pair<int32_t, std::pair<int64_t, int64_t>>> ranges;  // partition -> [first, last]
    for (auto& [partition, events] : by_partition) {
      // Revoked while we collected: the new owner reads these again.
      if (!im.rebalancer.Owns(partition)) continue;
      ranges.push_back({partition, {events.front().offset, events.back().offset}});
      for (RawEvent& e : events) batch.push_back(std::move(e));
    }
    if (batch.empty()) continue;

    BatchStats stats;
    absl::Status done = im.processor->Process(batch, im.config.publish_timeout, &stats);
    counters_.batches++;
    if (done.ok()) {
      std::vector<std::unique_ptr<RdKafka::TopicPartition>> owned;
      std::vector<RdKafka::TopicPartition*> offsets;
      for (const auto& [partition, range] : ranges) {
        owned.emplace_back(RdKafka::TopicPartition::create(
            im.config.request_topic, partition, range.second + 1));
        offsets.push_back(owned.back().get());
      }
      const absl::Time commit_start = absl::Now();
      RdKafka::ErrorCode err = consumer.commitSync(offsets);
      const absl::Duration commit_time = absl::Now() - commit_start;
      if (err != RdKafka::ERR_NO_ERROR) {
        // Decided and published already; a new owner replays the events
        // and republishes the stored results.
        LOG(WARNING) << "worker: offset commit failed: " << RdKafka::err2str(err);
      }
      counters_.events += stats.events;
      counters_.decided += stats.decided;
      counters_.issued += stats.issued;
      counters_.dead_letters += stats.dead_letters;
      VLOG(1) << "worker: " << stats.events << " events from "
              << ranges.size() << " partitions: " << stats.decided
              << " decided, " << stats.republished << " republished, "
              << stats.dead_letters << " dead; store " << stats.store_time
              << ", publish " << stats.publish_time << ", commit "
              << commit_time;
      backoff = absl::Milliseconds(100);
      continue;
    }
    // Give the batch back to the log and try again after a pause: the
    // database or broker may be restarting. Nothing was committed.
    counters_.retries++;
    LOG(WARNING) << "worker: batch of " << batch.size() << " events from "
                 << ranges.size() << " partitions not done, retrying in "
                 << backoff << ": " << done;
    for (const auto& [partition, range] : ranges) {
      std::unique_ptr<RdKafka::TopicPartition> first(RdKafka::TopicPartition::create(
          im.config.request_topic, partition, range.first));
      RdKafka::ErrorCode err = consumer.seek(*first, 5000);
      if (err != RdKafka::ERR_NO_ERROR) {
        LOG(WARNING) << "worker: seek partition " << partition << " to "
                     << range.first << ": " << RdKafka::err2str(err);
      }
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
  LOG(INFO) << "worker: stopping; leaving group " << im.config.group_id;
  consumer.close();
  im.consumer.reset();
  return absl::OkStatus();
}

}  // namespace coupon::worker
