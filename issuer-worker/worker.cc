#include "issuer-worker/worker.h"

#include "absl/strings/str_cat.h"
#include "common/kafka/consumer.h"
#include "common/kafka/producer.h"
#include "common/metrics/http_server.h"
#include "common/metrics/metrics.h"
#include "common/service/instance_id.h"
#include "glog/logging.h"
#include "issuer-worker/pg_issuance_store.h"
#include "issuer-worker/worker_metrics.h"

namespace coupon::worker {

struct IssuerWorker::Parts {
  std::unique_ptr<kafka::Producer> producer;
  std::unique_ptr<PgIssuanceStore> store;
  std::unique_ptr<BatchProcessor> processor;
  std::unique_ptr<kafka::KafkaGroupConsumer> consumer;
  std::unique_ptr<ConsumeLoop> loop;
  std::atomic<bool> stopping{false};
  // Last: its /readyz handler reads the members above, so it stops first.
  std::unique_ptr<metrics::HttpServer> http;
};

IssuerWorker::IssuerWorker(std::unique_ptr<Parts> parts)
    : parts_(std::move(parts)) {}

IssuerWorker::~IssuerWorker() { parts_->http.reset(); }

const LoopCounters& IssuerWorker::counters() const {
  return parts_->loop->counters();
}

int IssuerWorker::owned_partitions() const {
  return parts_->consumer->owned_count();
}

bool IssuerWorker::ready() const {
  return parts_->consumer->joined() && !parts_->stopping.load();
}

namespace {

// The results' and dead letters' producer, connected before the first batch
// needs it (not fatal: the loop retries).
absl::StatusOr<std::unique_ptr<kafka::Producer>> MakeProducer(const WorkerConfig& config,
                                                             const std::string& client_id) {
  kafka::ProducerConfig pc;
  pc.brokers = config.kafka_brokers;
  pc.client_id = client_id;
  pc.message_timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(config.publish_timeout));
  pc.linger_ms = 1;
  pc.extra = config.kafka_extra;
  auto producer = kafka::Producer::Create(pc);
  if (!producer.ok()) return producer.status();
  for (const std::string& topic : {config.result_topic, config.dead_letter_topic}) {
    if (absl::Status warm = (*producer)->WarmUp(topic, absl::Seconds(5)); !warm.ok()) {
      LOG(WARNING) << "worker: " << warm;
    }
  }
  return producer;
}

// The group member, reporting its partitions and their lag as metrics.
absl::StatusOr<std::unique_ptr<kafka::KafkaGroupConsumer>> MakeConsumer(
    const WorkerConfig& config, const std::string& client_id) {
  WorkerMetrics& m = metrics::Instance<WorkerMetrics>();
  kafka::GroupConsumerConfig cc;
  cc.brokers = config.kafka_brokers;
  cc.group_id = config.group_id;
  cc.topic = config.request_topic;
  cc.client_id = client_id;
  cc.session_timeout_ms = config.session_timeout_ms;
  cc.assignment = config.partition_assignment;
  cc.extra = config.kafka_extra;
  cc.on_assignment = [&m](int owned) { m.assigned.Set(owned); };
  cc.on_lag = [&m, topic = config.request_topic](int32_t partition, int64_t lag) {
    if (lag < 0) {
      m.lag.Remove({topic, absl::StrCat(partition)});
    } else {
      m.lag.WithLabelValues({topic, absl::StrCat(partition)}).Set(static_cast<double>(lag));
    }
  };
  return kafka::KafkaGroupConsumer::Create(std::move(cc));
}

}  // namespace

absl::StatusOr<std::unique_ptr<IssuerWorker>> IssuerWorker::Create(
    const WorkerConfig& config) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  auto p = std::make_unique<Parts>();
  const std::string member = service::InstanceId();
  const std::string client_id = absl::StrCat("coupon-issuer-", member);
  auto producer = MakeProducer(config, client_id);
  if (!producer.ok()) return producer.status();
  p->producer = std::move(*producer);

  pg::SessionSettings session = config.pg_session;
  if (session.application_name.empty()) {
    session.application_name = absl::StrCat("coupon-issuer-worker ", member);
  }
  p->store = std::make_unique<PgIssuanceStore>(config.pg_dsn, config.pg_connect_timeout,
                                               session);
  if (absl::Status db = p->store->Connect(); !db.ok()) {
    LOG(WARNING) << "worker: " << db << "; retrying with the first batch";
  }
  p->processor = std::make_unique<BatchProcessor>(
      p->store.get(), p->producer.get(),
      TopicNames{config.result_topic, config.dead_letter_topic});
  auto consumer = MakeConsumer(config, client_id);
  if (!consumer.ok()) return consumer.status();
  p->consumer = std::move(*consumer);
  p->loop = std::make_unique<ConsumeLoop>(
      p->consumer.get(), p->processor.get(),
      LoopConfig{config.max_batch, config.batch_wait, config.publish_timeout});
  LOG(INFO) << "worker " << member << " joining group " << config.group_id << " on "
            << config.request_topic;

  std::unique_ptr<IssuerWorker> worker(new IssuerWorker(std::move(p)));
  if (config.metrics_port != 0) {
    auto http = metrics::ServeMetrics("0.0.0.0", config.metrics_port,
                                      [w = worker.get()] { return w->ready(); });
    if (!http.ok()) {
      return absl::Status(http.status().code(),
                          absl::StrCat("--metrics_port: ", http.status().message()));
    }
    worker->parts_->http = std::move(*http);
    LOG(INFO) << "worker: /metrics, /healthz, /readyz on port " << config.metrics_port;
  }
  return worker;
}

absl::Status IssuerWorker::Run(const std::atomic<bool>& stop) {
  struct Stopping {  // not ready from here on, however Run ends
    std::atomic<bool>& flag;
    ~Stopping() { flag.store(true); }
  } stopping{parts_->stopping};
  absl::Status ran = parts_->loop->Run(stop);
  LOG(INFO) << "worker: stopped; left the group";
  return ran;
}

}  // namespace coupon::worker
