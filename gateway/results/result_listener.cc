#include "gateway/results/result_listener.h"

#include <librdkafka/rdkafkacpp.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/wire/event_codec.h"
#include "common/kafka/config.h"
#include "glog/logging.h"

namespace coupon::gateway {

ResultListener::ResultListener(ResultListenerConfig config, ResultHub* hub)
    : config_(std::move(config)), hub_(hub) {}

ResultListener::~ResultListener() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (consumer_) consumer_->close();
}

absl::Status ResultListener::Start() {
  char host[256] = "gateway";
  gethostname(host, sizeof(host) - 1);
  std::map<std::string, std::string> props = {
      {"bootstrap.servers", config_.brokers},
      // Never joins or commits: partitions are assigned by hand.
      {"group.id", absl::StrCat("coupon-gateway-", host, "-", getpid())},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"fetch.wait.max.ms", "10"},
      {"enable.partition.eof", "false"},
  };
  for (const auto& [k, v] : config_.extra) props[k] = v;
  auto conf = kafka::MakeConf(props);
  if (!conf.ok()) return conf.status();
  std::string error;
  consumer_.reset(RdKafka::KafkaConsumer::create(conf->get(), error));
  if (!consumer_) {
    return absl::InvalidArgumentError(
        absl::StrCat("kafka result consumer: ", error));
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

absl::Status ResultListener::Assign() {
  std::string error;
  std::unique_ptr<RdKafka::Topic> topic(
      RdKafka::Topic::create(consumer_.get(), config_.topic, nullptr, error));
  if (!topic) return absl::InternalError(error);
  RdKafka::Metadata* raw = nullptr;
  RdKafka::ErrorCode err =
      consumer_->metadata(false, topic.get(), &raw, /*timeout_ms=*/5000);
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka: metadata for ", config_.topic, ": ",
                     RdKafka::err2str(err)));
  }
  const auto* topics = metadata->topics();
  if (topics->empty() || (*topics)[0]->err() != RdKafka::ERR_NO_ERROR ||
      (*topics)[0]->partitions()->empty()) {
    return absl::NotFoundError(absl::StrCat(
        "kafka: topic ", config_.topic,
        " does not exist (create it: scripts/stack topics)"));
  }
  std::vector<RdKafka::TopicPartition*> partitions;
  const int64_t since_ms =
      absl::ToUnixMillis(absl::Now() - config_.replay_window);
  for (const auto* p : *(*topics)[0]->partitions()) {
    partitions.push_back(
        RdKafka::TopicPartition::create(config_.topic, p->id(), since_ms));
  }
  err = consumer_->offsetsForTimes(partitions, 10000);
  if (err != RdKafka::ERR_NO_ERROR) {
    RdKafka::TopicPartition::destroy(partitions);
    return absl::UnavailableError(absl::StrCat(
        "kafka: offsets for ", config_.topic, ": ", RdKafka::err2str(err)));
  }
  behind_.clear();
  for (auto* p : partitions) {
    int64_t low = 0, high = 0;
    err = consumer_->query_watermark_offsets(config_.topic, p->partition(),
                                             &low, &high, 10000);
    if (err != RdKafka::ERR_NO_ERROR) {
      RdKafka::TopicPartition::destroy(partitions);
      return absl::UnavailableError(absl::StrCat(
          "kafka: end offsets of ", config_.topic, ": ", RdKafka::err2str(err)));
    }
    // No message since then: start at the end.
    if (p->offset() < 0) p->set_offset(high);
    if (p->offset() < high) behind_[p->partition()] = high;
    VLOG(1) << "result listener: partition " << p->partition() << " from "
            << p->offset() << " to " << high;
  }
  err = consumer_->assign(partitions);
  const size_t count = partitions.size();
  RdKafka::TopicPartition::destroy(partitions);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("kafka: assign: ", RdKafka::err2str(err)));
  }
  LOG(INFO) << "result listener: reading " << count << " partitions of "
            << config_.topic << " from " << config_.replay_window << " ago";
  return absl::OkStatus();
}

void ResultListener::Track(int32_t partition, int64_t offset) {
  auto it = behind_.find(partition);
  if (it == behind_.end() || offset + 1 < it->second) return;
  behind_.erase(it);
  if (behind_.empty()) {
    ready_.store(true);
    LOG(INFO) << "result listener: caught up with " << config_.topic;
  }
}

void ResultListener::Run() {
  bool assigned_all = false;
  while (!stop_.load() && !assigned_all) {
    absl::Status assigned = Assign();
    if (assigned.ok()) {
      assigned_all = true;
      if (behind_.empty()) ready_.store(true);
      break;
    }
    LOG(WARNING) << "result listener: " << assigned << "; retrying";
    absl::SleepFor(absl::Seconds(1));
  }
  while (!stop_.load()) {
    std::unique_ptr<RdKafka::Message> msg(consumer_->consume(100));
    if (msg->err() == RdKafka::ERR__TIMED_OUT) continue;
    if (msg->err() != RdKafka::ERR_NO_ERROR) {
      LOG_EVERY_N(WARNING, 100) << "result listener: " << msg->errstr();
      continue;
    }
    if (!ready_.load()) Track(msg->partition(), msg->offset());
    absl::StatusOr<IssueResult> result = DecodeIssueResult(absl::string_view(
        static_cast<const char*>(msg->payload()), msg->len()));
    if (!result.ok()) {
      LOG_EVERY_N(ERROR, 100) << "result listener: skipping partition "
                              << msg->partition() << " offset "
                              << msg->offset() << ": " << result.status();
      continue;
    }
    hub_->Publish(*result);
  }
}

}  // namespace coupon::gateway
