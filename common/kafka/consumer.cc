#include "common/kafka/consumer.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/kafka/config.h"
#include "glog/logging.h"

namespace coupon::kafka {
namespace {

// The message's bytes, or nullopt for a timeout or an error (logged).
std::optional<Record> ToRecord(RdKafka::Message& msg, const char* who) {
  if (msg.err() == RdKafka::ERR__TIMED_OUT) return std::nullopt;
  if (msg.err() != RdKafka::ERR_NO_ERROR) {
    LOG_EVERY_N(WARNING, 50) << who << ": " << msg.errstr();
    return std::nullopt;
  }
  Record r;
  if (msg.key()) r.key = *msg.key();
  r.payload.assign(static_cast<const char*>(msg.payload()), msg.len());
  r.topic = msg.topic_name();
  r.partition = msg.partition();
  r.offset = msg.offset();
  if (RdKafka::Headers* headers = msg.headers()) {  // owned by msg
    for (const RdKafka::Headers::Header& h : headers->get_all()) {
      r.headers.emplace_back(
          h.key(), std::string(static_cast<const char*>(h.value()),
                               h.value() ? h.value_size() : 0));
    }
  }
  return r;
}

int Millis(absl::Duration d) {
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(d)));
}

// A consumer that never subscribes, so it never joins its group.id, and
// never commits: `props` and then `extra` over these. `what` names it in
// the error.
absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> UnsubscribedConsumer(
    const std::string& brokers, const std::string& group,
    std::map<std::string, std::string> props,
    const std::map<std::string, std::string>& extra, const std::string& what) {
  props["bootstrap.servers"] = brokers;
  props["group.id"] = group;
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  props["socket.timeout.ms"] = kSocketTimeoutMs;
  for (const auto& [k, v] : extra) props[k] = v;
  auto conf = MakeConf(props);
  if (!conf.ok()) return conf.status();
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf->get(), error));
  if (!consumer) return absl::InvalidArgumentError(absl::StrCat(what, ": ", error));
  return consumer;
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> TopicPartitions(
    RdKafka::Handle& handle, const std::string& topic_name,
    absl::Duration timeout) {
  std::string error;
  std::unique_ptr<RdKafka::Topic> topic(
      RdKafka::Topic::create(&handle, topic_name, nullptr, error));
  if (!topic) return absl::InternalError(absl::StrCat("kafka: ", error));
  RdKafka::Metadata* raw = nullptr;
  RdKafka::ErrorCode err =
      handle.metadata(false, topic.get(), &raw, Millis(timeout));
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat(
        "kafka: no metadata for ", topic_name, ": ", RdKafka::err2str(err)));
  }
  const auto* topics = metadata->topics();
  if (topics->empty() || (*topics)[0]->err() != RdKafka::ERR_NO_ERROR ||
      (*topics)[0]->partitions()->empty()) {
    return absl::NotFoundError(
        absl::StrCat("kafka: topic ", topic_name,
                     " does not exist (create it: scripts/stack topics)"));
  }
  std::vector<int32_t> partitions;
  for (const auto* p : *(*topics)[0]->partitions())
    partitions.push_back(p->id());
  return partitions;
}

/// Tracks the partitions this member owns, and reads the consumer's
/// statistics (each owned partition's lag), passing every other event to
/// the log. librdkafka calls both from inside consume(), on the polling
/// thread; the counts are read from any thread.
class KafkaGroupConsumer::Callbacks : public RdKafka::RebalanceCb,
                                      public RdKafka::EventCb,
                                      public RdKafka::OffsetCommitCb {
 public:
  explicit Callbacks(const GroupConsumerConfig* config) : config_(config) {}

  void rebalance_cb(
      RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
      std::vector<RdKafka::TopicPartition*>& partitions) override {
    // Cooperative (incremental) rebalances name only the partitions that
    // move; eager ones take everything away and hand out a whole new set.
    const bool incremental = consumer->rebalance_protocol() == "COOPERATIVE";
    std::string list;
    for (auto* p : partitions) absl::StrAppend(&list, " ", p->partition());
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      LOG(INFO) << "kafka: " << config_->group_id << ": assigned partitions"
                << list;
      const bool assigned =
          incremental ? Done(consumer->incremental_assign(partitions), "assign")
                      : Done(consumer->assign(partitions), "assign");
      if (assigned) {
        for (auto* p : partitions) owned_.insert(p->partition());
      }
      joined_.store(true);
    } else if (err == RdKafka::ERR__REVOKE_PARTITIONS) {
      // Nothing is in flight here: the loop commits (or gives back) a batch
      // before it polls again.
      LOG(INFO) << "kafka: " << config_->group_id << ": revoked partitions"
                << list << (consumer->assignment_lost() ? " (lost)" : "");
      for (auto* p : partitions) Forget(p->partition());
      if (incremental) {
        Done(consumer->incremental_unassign(partitions), "unassign");
      } else {
        Done(consumer->unassign(), "unassign");
      }
    } else {
      // A failed rebalance: librdkafka asks for the whole assignment to go.
      LOG(WARNING) << "kafka: " << config_->group_id
                   << ": rebalance failed: " << RdKafka::err2str(err)
                   << "; giving up partitions" << list;
      const std::set<int32_t> owned = owned_;
      for (int32_t partition : owned) Forget(partition);
      Done(consumer->unassign(), "unassign");
    }
    owned_count_.store(static_cast<int>(owned_.size()));
    if (config_->on_assignment) config_->on_assignment(owned_count_.load());
  }

  void event_cb(RdKafka::Event& event) override {
    if (event.type() == RdKafka::Event::EVENT_STATS) {
      ReadLag(event.str());
    } else {
      LogEvent(event);
    }
  }

  // An offset commit's outcome (Commit does not wait for it). A failed one
  // costs a replay of what it covered, nothing else: the next commit covers
  // it, and a new owner that starts before it republishes stored results.
  void offset_commit_cb(RdKafka::ErrorCode err,
                        std::vector<RdKafka::TopicPartition*>& offsets) override {
    if (err == RdKafka::ERR_NO_ERROR || err == RdKafka::ERR__NO_OFFSET) return;
    LOG(WARNING) << "kafka: " << config_->group_id << ": offset commit of "
                 << offsets.size() << " partition(s): " << RdKafka::err2str(err);
  }

  bool Owns(int32_t partition) const { return owned_.count(partition) > 0; }
  int owned_count() const { return owned_count_.load(); }
  bool joined() const { return joined_.load(); }

 private:
  // topics.<topic>.partitions.<n>.consumer_lag: the partition's last stable
  // offset minus the group's committed offset, -1 while unknown.
  void ReadLag(const std::string& json) {
    if (!config_->on_lag) return;
    google::protobuf::Struct stats;
    if (!google::protobuf::util::JsonStringToMessage(json, &stats).ok()) {
      LOG_EVERY_N(WARNING, 100) << "kafka: unreadable consumer statistics";
      return;
    }
    const auto& fields = stats.fields();
    auto topics = fields.find("topics");
    if (topics == fields.end()) return;
    const auto& by_topic = topics->second.struct_value().fields();
    auto topic = by_topic.find(config_->topic);
    if (topic == by_topic.end()) return;
    const auto& topic_fields = topic->second.struct_value().fields();
    auto partitions = topic_fields.find("partitions");
    if (partitions == topic_fields.end()) return;
    for (const auto& [key, value] :
         partitions->second.struct_value().fields()) {
      int32_t partition = 0;
      if (!absl::SimpleAtoi(key, &partition) || partition < 0)
        continue;  // "-1"
      const auto& p = value.struct_value().fields();
      auto lag = p.find("consumer_lag");
      if (lag == p.end()) continue;
      const double n = lag->second.number_value();
      config_->on_lag(partition,
                      Owns(partition) && n >= 0 ? static_cast<int64_t>(n) : -1);
    }
  }

  void Forget(int32_t partition) {
    owned_.erase(partition);
    if (config_->on_lag) config_->on_lag(partition, -1);
  }
  // Log a failed (re)assignment; true when it worked. The cooperative
  // calls return an Error to free, the eager ones a code.
  bool Done(RdKafka::Error* error, const char* what) {
    if (error == nullptr) return true;
    LOG(ERROR) << "kafka: " << config_->group_id << ": " << what << ": "
               << error->str();
    delete error;
    return false;
  }
  bool Done(RdKafka::ErrorCode code, const char* what) {
    if (code == RdKafka::ERR_NO_ERROR) return true;
    LOG(ERROR) << "kafka: " << config_->group_id << ": " << what << ": "
               << RdKafka::err2str(code);
    return false;
  }

  const GroupConsumerConfig* config_;
  std::set<int32_t> owned_;  // polling thread only
  std::atomic<int> owned_count_{0};
  std::atomic<bool> joined_{false};
};

KafkaGroupConsumer::KafkaGroupConsumer(GroupConsumerConfig config)
    : config_(std::move(config)),
      callbacks_(std::make_unique<Callbacks>(&config_)) {}

absl::StatusOr<std::unique_ptr<KafkaGroupConsumer>> KafkaGroupConsumer::Create(
    GroupConsumerConfig config) {
  std::map<std::string, std::string> props = {
      {"bootstrap.servers", config.brokers},
      {"group.id", config.group_id},
      {"client.id", config.client_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"session.timeout.ms", absl::StrCat(config.session_timeout_ms)},
      {"heartbeat.interval.ms",
       absl::StrCat(std::max(100, config.session_timeout_ms / 5))},
      {"fetch.wait.max.ms", kFetchWaitMaxMs},
      {"enable.partition.eof", "false"},
      // Read only what the producers committed to the log.
      {"isolation.level", "read_committed"},
      // For the lag of each owned partition.
      {"statistics.interval.ms", "5000"},
      {"socket.timeout.ms", kSocketTimeoutMs},
      {"partition.assignment.strategy", config.assignment},
  };
  for (const auto& [k, v] : config.extra) props[k] = v;
  auto conf = MakeConf(props);
  if (!conf.ok()) return conf.status();
  std::unique_ptr<KafkaGroupConsumer> self(
      new KafkaGroupConsumer(std::move(config)));
  std::string error;
  if ((*conf)->set("rebalance_cb",
                   static_cast<RdKafka::RebalanceCb*>(self->callbacks_.get()),
                   error) != RdKafka::Conf::CONF_OK ||
      (*conf)->set("event_cb",
                   static_cast<RdKafka::EventCb*>(self->callbacks_.get()),
                   error) != RdKafka::Conf::CONF_OK ||
      (*conf)->set("offset_commit_cb",
                   static_cast<RdKafka::OffsetCommitCb*>(self->callbacks_.get()),
                   error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(error);
  }
  self->consumer_.reset(RdKafka::KafkaConsumer::create(conf->get(), error));
  if (!self->consumer_) {
    return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", error));
  }
  RdKafka::ErrorCode err = self->consumer_->subscribe({self->config_.topic});
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("kafka subscribe: ", RdKafka::err2str(err)));
  }
  return self;
}

KafkaGroupConsumer::~KafkaGroupConsumer() { Close(); }

std::optional<Record> KafkaGroupConsumer::Poll(absl::Duration timeout) {
  std::unique_ptr<RdKafka::Message> msg(consumer_->consume(Millis(timeout)));
  return ToRecord(*msg, "kafka consume");
}

bool KafkaGroupConsumer::Owns(int32_t partition) const {
  return callbacks_->Owns(partition);
}

absl::Status KafkaGroupConsumer::Commit(
    const std::map<int32_t, int64_t>& next_offsets) {
  std::vector<std::unique_ptr<RdKafka::TopicPartition>> owned;
  std::vector<RdKafka::TopicPartition*> offsets;
  for (const auto& [partition, next] : next_offsets) {
    owned.emplace_back(
        RdKafka::TopicPartition::create(config_.topic, partition, next));
    offsets.push_back(owned.back().get());
  }
  // Not waited for: a commit's round trip was a fifth of a batch's cycle
  // when the worker drains a backlog. Its outcome is logged from Poll.
  RdKafka::ErrorCode err = consumer_->commitAsync(offsets);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka: offset commit: ", RdKafka::err2str(err)));
  }
  return absl::OkStatus();
}

absl::Status KafkaGroupConsumer::Seek(int32_t partition, int64_t offset) {
  std::unique_ptr<RdKafka::TopicPartition> to(
      RdKafka::TopicPartition::create(config_.topic, partition, offset));
  RdKafka::ErrorCode err = consumer_->seek(*to, 5000);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("kafka: seek partition ",
                                               partition, " to ", offset, ": ",
                                               RdKafka::err2str(err)));
  }
  return absl::OkStatus();
}

void KafkaGroupConsumer::Close() {
  if (!consumer_) return;
  consumer_->close();
  consumer_.reset();
  if (config_.on_assignment) config_.on_assignment(0);
}

int KafkaGroupConsumer::owned_count() const {
  return callbacks_->owned_count();
}
bool KafkaGroupConsumer::joined() const { return callbacks_->joined(); }

TopicReader::TopicReader(std::string topic,
                         std::unique_ptr<RdKafka::KafkaConsumer> consumer)
    : topic_(std::move(topic)), consumer_(std::move(consumer)) {}

absl::StatusOr<std::unique_ptr<GroupOffsets>> GroupOffsets::Create(
    const std::string& brokers, const std::string& group,
    const std::map<std::string, std::string>& extra) {
  // The group whose offsets are read.
  auto consumer = UnsubscribedConsumer(brokers, group, {}, extra,
                                       absl::StrCat("kafka offsets reader of group ", group));
  if (!consumer.ok()) return consumer.status();
  return std::unique_ptr<GroupOffsets>(new GroupOffsets(std::move(*consumer)));
}

GroupOffsets::GroupOffsets(std::unique_ptr<RdKafka::KafkaConsumer> consumer)
    : consumer_(std::move(consumer)) {}

GroupOffsets::~GroupOffsets() { consumer_->close(); }

absl::StatusOr<std::map<int32_t, int64_t>> GroupOffsets::NextToRead(
    const std::string& topic, absl::Duration timeout) {
  absl::StatusOr<std::vector<int32_t>> ids = TopicPartitions(*consumer_, topic, timeout);
  if (!ids.ok()) return ids.status();
  std::vector<RdKafka::TopicPartition*> partitions;
  for (int32_t id : *ids) partitions.push_back(RdKafka::TopicPartition::create(topic, id));
  const RdKafka::ErrorCode err = consumer_->committed(partitions, Millis(timeout));
  std::map<int32_t, int64_t> next;
  std::vector<int32_t> uncommitted;
  for (RdKafka::TopicPartition* p : partitions) {
    if (err == RdKafka::ERR_NO_ERROR && p->err() == RdKafka::ERR_NO_ERROR) {
      if (p->offset() >= 0) {
        next[p->partition()] = p->offset();
      } else {
        uncommitted.push_back(p->partition());
      }
    }
    delete p;
  }
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat(
        "kafka: committed offsets of ", topic, ": ", RdKafka::err2str(err)));
  }
  for (int32_t partition : uncommitted) {
    int64_t low = 0, high = 0;
    if (consumer_->query_watermark_offsets(topic, partition, &low, &high,
                                           Millis(timeout)) == RdKafka::ERR_NO_ERROR) {
      next[partition] = low;
    }
  }
  return next;
}

absl::StatusOr<std::unique_ptr<TopicReader>> TopicReader::Create(
    const std::string& brokers, const std::string& topic,
    const std::map<std::string, std::string>& extra) {
  // Partitions are assigned by hand. librdkafka wants a group id all the
  // same.
  auto consumer = UnsubscribedConsumer(
      brokers, absl::StrCat("coupon-reader-", topic),
      {{"fetch.wait.max.ms", kFetchWaitMaxMs}, {"enable.partition.eof", "false"}}, extra,
      absl::StrCat("kafka consumer of ", topic));
  if (!consumer.ok()) return consumer.status();
  return std::unique_ptr<TopicReader>(new TopicReader(topic, std::move(*consumer)));
}

TopicReader::~TopicReader() { consumer_->close(); }

absl::StatusOr<std::map<int32_t, int64_t>> TopicReader::AssignFrom(
    absl::Time since) {
  absl::StatusOr<std::vector<int32_t>> ids =
      TopicPartitions(*consumer_, topic_, absl::Seconds(5));
  if (!ids.ok()) return ids.status();
  std::vector<RdKafka::TopicPartition*> partitions;
  const int64_t since_ms = absl::ToUnixMillis(since);
  for (int32_t id : *ids) {
    partitions.push_back(RdKafka::TopicPartition::create(topic_, id, since_ms));
  }
  struct Destroy {
    std::vector<RdKafka::TopicPartition*>& p;
    ~Destroy() { RdKafka::TopicPartition::destroy(p); }
  } destroy{partitions};
  RdKafka::ErrorCode err = consumer_->offsetsForTimes(partitions, 10000);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("kafka: offsets for ", topic_,
                                               ": ", RdKafka::err2str(err)));
  }
  std::map<int32_t, int64_t> behind;
  for (auto* p : partitions) {
    int64_t low = 0, high = 0;
    err = consumer_->query_watermark_offsets(topic_, p->partition(), &low,
                                             &high, 10000);
    if (err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat(
          "kafka: end offsets of ", topic_, ": ", RdKafka::err2str(err)));
    }
    // No event since then: start at the end.
    if (p->offset() < 0) p->set_offset(high);
    if (p->offset() < high) behind[p->partition()] = high;
    VLOG(1) << "kafka: reading " << topic_ << "/" << p->partition() << " from "
            << p->offset() << " to " << high;
  }
  err = consumer_->assign(partitions);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("kafka: assign: ", RdKafka::err2str(err)));
  }
  return behind;
}

std::optional<Record> TopicReader::Poll(absl::Duration timeout) {
  std::unique_ptr<RdKafka::Message> msg(consumer_->consume(Millis(timeout)));
  return ToRecord(*msg, "kafka reader");
}

}  // namespace coupon::kafka
