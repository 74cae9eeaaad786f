#include "common/kafka/producer.h"

#include <librdkafka/rdkafkacpp.h>

#include "absl/strings/str_cat.h"
#include "common/kafka/config.h"
#include "common/kafka/consumer.h"
#include "common/metrics/metrics.h"
#include "glog/logging.h"

namespace coupon::kafka {
namespace {

/// One topic's delivery metrics; children of process-wide families.
struct TopicMetrics {
  metrics::Histogram* ack_latency;
  metrics::Counter* delivered;
  metrics::Counter* failed;

  explicit TopicMetrics(const std::string& topic) {
    auto& registry = metrics::Registry::Default();
    ack_latency =
        &registry
             .AddHistogram("coupon_kafka_producer_ack_latency_seconds",
                           "Time from produce() to the broker's acknowledgement "
                           "(acks=all) of each acknowledged event, per topic.",
                           {"topic"}, metrics::LatencyBuckets())
             .WithLabelValues({topic});
    auto& deliveries = registry.AddCounter(
        "coupon_kafka_producer_deliveries_total",
        "Delivery reports of produced events, per topic: result ok "
        "(acknowledged) or failed (timed out, refused, purged at exit).",
        {"topic", "result"});
    delivered = &deliveries.WithLabelValues({topic, "ok"});
    failed = &deliveries.WithLabelValues({topic, "failed"});
  }
};

}  // namespace

// librdkafka calls these from within poll(), i.e. on the poll thread.
class Producer::Callbacks : public RdKafka::DeliveryReportCb,
                            public RdKafka::EventCb {
 public:
  explicit Callbacks(std::atomic<bool>* brokers_up) : brokers_up_(brokers_up) {}

  void dr_cb(RdKafka::Message& message) override {
    auto* done = static_cast<DeliveryCallback*>(message.msg_opaque());
    absl::Status status;
    Placement placed;
    TopicMetrics& m = MetricsFor(message.topic_name());
    if (message.err() == RdKafka::ERR_NO_ERROR) {
      brokers_up_->store(true);
      m.delivered->Inc();
      placed = Placement{message.partition(), message.offset()};
      // Microseconds since produce(), measured by librdkafka; -1 if unknown.
      if (const int64_t us = message.latency(); us >= 0) {
        m.ack_latency->Observe(static_cast<double>(us) / 1e6);
      }
    } else if (message.err() == RdKafka::ERR__MSG_TIMED_OUT) {
      status = absl::UnavailableError(
          absl::StrCat("kafka: event not acknowledged in time: ",
                       message.errstr()));
    } else {
      status = absl::UnavailableError(
          absl::StrCat("kafka: delivery failed: ", message.errstr()));
    }
    if (!status.ok()) m.failed->Inc();
    if (done) {
      (*done)(status, placed);
      delete done;
    }
  }

  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_ERROR:
        if (event.err() == RdKafka::ERR__ALL_BROKERS_DOWN) {
          brokers_up_->store(false);
        }
        LOG(WARNING) << "kafka producer: " << RdKafka::err2str(event.err())
                     << ": " << event.str();
        break;
      case RdKafka::Event::EVENT_STATS:
        // A broker in state UP means we can reach the cluster again.
        brokers_up_->store(event.str().find("\"state\":\"UP\"") !=
                           std::string::npos);
        break;
      case RdKafka::Event::EVENT_LOG:
        if (event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
          LOG(WARNING) << "kafka producer: " << event.fac() << ": "
                       << event.str();
        }
        break;
      default:
        break;
    }
  }

 private:
  TopicMetrics& MetricsFor(const std::string& topic) {
    auto it = metrics_.find(topic);
    if (it == metrics_.end()) it = metrics_.try_emplace(topic, topic).first;
    return it->second;
  }

  std::atomic<bool>* brokers_up_;
  // By topic name; only dr_cb touches it, on the poll thread (or in the
  // destructor once the poll thread has ended).
  std::map<std::string, TopicMetrics> metrics_;
};

Producer::Producer() : callbacks_(std::make_unique<Callbacks>(&brokers_up_)) {}

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(
    const ProducerConfig& config) {
  std::map<std::string, std::string> props = {
      {"bootstrap.servers", config.brokers},
      {"client.id", config.client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", absl::StrCat(config.linger_ms)},
      {"message.timeout.ms", absl::StrCat(config.message_timeout_ms)},
      {"queue.buffering.max.messages", absl::StrCat(config.max_queued_messages)},
      // Same partition for a key as Java clients.
      {"partitioner", "murmur2_random"},
      {"statistics.interval.ms", "1000"},
      {"socket.timeout.ms", kSocketTimeoutMs},
  };
  // What every guarantee rests on: an event is acknowledged only once every
  // in-sync replica has it, and a retry never writes it twice or out of
  // order. A property that would loosen it is refused, not applied.
  for (const auto& [k, v] : config.extra) {
    if ((k == "acks" && v != "all" && v != "-1") ||
        (k == "enable.idempotence" && v != "true") || k == "partitioner") {
      return absl::InvalidArgumentError(absl::StrCat(
          "kafka property ", k, "=", v,
          ": the service needs acks=all, enable.idempotence=true and the "
          "Java-compatible partitioner; remove it"));
    }
    props[k] = v;
  }
  auto conf = MakeConf(props);
  if (!conf.ok()) return conf.status();

  std::unique_ptr<Producer> self(new Producer());
  std::string error;
  if ((*conf)->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(
                                self->callbacks_.get()),
                   error) != RdKafka::Conf::CONF_OK ||
      (*conf)->set("event_cb",
                   static_cast<RdKafka::EventCb*>(self->callbacks_.get()),
                   error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("kafka producer: ", error));
  }
  self->producer_.reset(RdKafka::Producer::create(conf->get(), error));
  if (!self->producer_) {
    return absl::InvalidArgumentError(
        absl::StrCat("kafka producer: cannot create: ", error));
  }
  self->poller_ = std::thread([p = self.get()] { p->PollLoop(); });
  return self;
}

Producer::~Producer() {
  absl::Status flushed = Flush(absl::Seconds(30));
  if (!flushed.ok()) LOG(WARNING) << flushed;
  stop_.store(true);
  poller_.join();
  // Fail what is still queued so every callback runs exactly once.
  producer_->purge(RdKafka::Producer::PURGE_QUEUE |
                   RdKafka::Producer::PURGE_INFLIGHT);
  producer_->poll(0);
  producer_.reset();
}

void Producer::PollLoop() {
  while (!stop_.load()) producer_->poll(50);
}

void Producer::Publish(const std::string& topic, std::string key,
                       std::string payload, Headers headers,
                       DeliveryCallback done) {
  auto* opaque = new DeliveryCallback(std::move(done));
  RdKafka::Headers* kafka_headers = nullptr;
  if (!headers.empty()) {
    kafka_headers = RdKafka::Headers::create();
    for (const auto& [name, value] : headers) {
      kafka_headers->add(name, value.data(), value.size());
    }
  }
  RdKafka::ErrorCode err = producer_->produce(
      topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
      payload.data(), payload.size(), key.data(), key.size(),
      /*timestamp=*/0, kafka_headers, opaque);
  if (err == RdKafka::ERR_NO_ERROR) return;  // produce() owns the headers now
  delete kafka_headers;  // not on failure
  absl::Status status =
      err == RdKafka::ERR__QUEUE_FULL
          ? absl::UnavailableError(
                "kafka: the producer's queue is full (the broker is slow or "
                "unreachable); the event was not queued")
          : absl::UnavailableError(absl::StrCat(
                "kafka: cannot produce to ", topic, ": ", RdKafka::err2str(err)));
  (*opaque)(status, Placement{});
  delete opaque;
}

absl::Status Producer::WarmUp(const std::string& topic, absl::Duration timeout) {
  return TopicPartitions(*producer_, topic, timeout).status();
}

absl::Status Producer::Flush(absl::Duration timeout) {
  RdKafka::ErrorCode err =
      producer_->flush(static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::DeadlineExceededError(
        absl::StrCat("kafka: ", producer_->outq_len(),
                     " events still unacknowledged after flush"));
  }
  return absl::OkStatus();
}

}  // namespace coupon::kafka
