#include "issuer-worker/worker.h"

#include <librdkafka/rdkafkacpp.h>
#include <unistd.h>

#include <mutex>
#include <set>
#include <tuple>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/kafka/config.h"
#include "common/kafka/producer.h"
#include "common/metrics/http_server.h"
#include "common/metrics/metrics.h"
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
    return bad("batch_wait",
               absl::StrCat("must be 0..1s, got ", absl::FormatDuration(batch_wait)));
  }
  if (publish_timeout < absl::Seconds(1)) {
    return bad("publish_timeout", absl::StrCat("must be at least 1s, got ",
                                               absl::FormatDuration(publish_timeout)));
  }
  if (session_timeout_ms < 1000) {
    return bad("session_timeout_ms",
               absl::StrCat("must be >= 1000, got ", session_timeout_ms));
  }
  if (metrics_port < 0 || metrics_port > 65535) {
    return bad("metrics_port",
               absl::StrCat("must be 0..65535 (0: off), got ", metrics_port));
  }
  if (absl::Status s = pg_session.Validate("pg_"); !s.ok()) return s;
  // These are what keep a frozen worker from holding coupons: never off.
  for (const auto& [flag, d, least] :
       {std::tuple<const char*, absl::Duration, absl::Duration>{
            "pg_lock_timeout", pg_session.lock_timeout, absl::Milliseconds(100)},
        {"pg_statement_timeout", pg_session.statement_timeout, absl::Seconds(1)},
        {"pg_idle_in_transaction_timeout", pg_session.idle_in_transaction_timeout,
         absl::Seconds(1)}}) {
    if (d < least) {
      return bad(flag, absl::StrCat("must be at least ", absl::FormatDuration(least),
                                    " (it keeps a frozen worker from holding its "
                                    "coupons' locks), got ",
                                    absl::FormatDuration(d)));
    }
  }
  return absl::OkStatus();
}

namespace {

/// The worker's metrics, in the process's registry.
struct WorkerMetrics {
  metrics::Histogram& batch_events;
  metrics::Histogram& transaction_seconds;
  metrics::Histogram& batch_seconds;
  metrics::CounterFamily& decisions;
  metrics::Counter& republished;
  metrics::Counter& reused;
  metrics::Counter& dead_letters;
  metrics::Counter& retries;
  metrics::Gauge& assigned;
  metrics::GaugeFamily& lag;

  static WorkerMetrics& Get() {
    static WorkerMetrics* m = new WorkerMetrics(metrics::Registry::Default());
    return *m;
  }

 private:
  explicit WorkerMetrics(metrics::Registry& r)
      : batch_events(r.AddHistogram(
                          "coupon_worker_batch_events",
                          "Events per batch (one poll, one transaction).", {},
                          {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
                           10000})
                         .WithLabelValues()),
        transaction_seconds(
            r.AddHistogram("coupon_worker_transaction_seconds",
                           "The batch's PostgreSQL transaction (lock, decide, "
                           "store, commit), when it committed.",
                           {}, metrics::LatencyBuckets())
                .WithLabelValues()),
        batch_seconds(r.AddHistogram("coupon_worker_batch_seconds",
                                     "A batch from its transaction to its "
                                     "offset commit, results acknowledged "
                                     "in between; batches done only.",
                                     {}, metrics::LatencyBuckets())
                          .WithLabelValues()),
        decisions(r.AddCounter("coupon_worker_decisions_total",
                               "Requests decided and stored, by outcome "
                               "(replays are not decided again).",
                               {"outcome"})),
        republished(r.AddCounter("coupon_worker_republished_total",
                                 "Results of requests decided before "
                                 "(redelivered events, repeated request ids) "
                                 "published again unchanged.")
                        .WithLabelValues()),
        reused(r.AddCounter("coupon_worker_reused_request_ids_total",
                            "Requests refused REQUEST_ID_REUSED: their id "
                            "belongs to another coupon or user (never stored).")
                   .WithLabelValues()),
        dead_letters(r.AddCounter("coupon_worker_dead_letters_total",
                                  "Events sent to the dead-letter topic.")
                         .WithLabelValues()),
        retries(r.AddCounter("coupon_worker_batch_retries_total",
                             "Batches given back to the log and tried again "
                             "(database or broker trouble).")
                    .WithLabelValues()),
        assigned(r.AddGauge("coupon_worker_assigned_partitions",
                            "Partitions of the request topic this member owns.")
                     .WithLabelValues()),
        lag(r.AddGauge("coupon_worker_consumer_lag",
                       "Events of an owned partition not yet committed by the "
                       "group (librdkafka's consumer_lag, every 5 s).",
                       {"topic", "partition"})) {
    for (Outcome o : {Outcome::kIssued, Outcome::kSoldOut, Outcome::kAlreadyIssued,
                      Outcome::kNotStarted, Outcome::kExpired}) {
      decisions.WithLabelValues({std::string(OutcomeName(o))});
    }
  }
};

/// Tracks which partitions this member owns. librdkafka calls it from inside
/// consume(), on the worker loop's thread.
class Rebalancer : public RdKafka::RebalanceCb {
 public:
  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    std::string list;
    for (auto* p : partitions) absl::StrAppend(&list, " ", p->partition());
    WorkerMetrics& m = WorkerMetrics::Get();
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      LOG(INFO) << "worker: assigned partitions" << list;
      for (auto* p : partitions) owned_.insert(p->partition());
      owned_count_.store(static_cast<int>(owned_.size()));
      consumer->assign(partitions);
      joined_.store(true);
    } else {
      // Nothing is in flight here: a batch is always committed (or given up
      // for a replay) before the next consume().
      LOG(INFO) << "worker: revoked partitions" << list;
      for (auto* p : partitions) {
        owned_.erase(p->partition());
        m.lag.Remove({p->topic(), absl::StrCat(p->partition())});
      }
      owned_count_.store(static_cast<int>(owned_.size()));
      consumer->unassign();
    }
    m.assigned.Set(owned_count_.load());
  }
  bool Owns(int32_t partition) const { return owned_.count(partition) > 0; }
  int owned_count() const { return owned_count_.load(); }
  bool joined() const { return joined_.load(); }

 private:
  std::set<int32_t> owned_;
  std::atomic<int> owned_count_{0};
  std::atomic<bool> joined_{false};
};

/// Reads the consumer's statistics (consumer lag per partition) and passes
/// every other event to the log. librdkafka calls it from inside consume(),
/// on the worker loop's thread, like the Rebalancer it reads.
class ConsumerEvents : public RdKafka::EventCb {
 public:
  ConsumerEvents(std::string topic, const Rebalancer* owner)
      : topic_(std::move(topic)), owner_(owner) {}

  void event_cb(RdKafka::Event& event) override {
    if (event.type() == RdKafka::Event::EVENT_STATS) {
      RecordLag(event.str());
    } else {
      kafka::LogEvent(event);
    }
  }

 private:
  // topics.<topic>.partitions.<n>.consumer_lag: the partition's last stable
  // offset minus the group's committed offset, -1 while unknown.
  void RecordLag(const std::string& json) {
    google::protobuf::Struct stats;
    if (!google::protobuf::util::JsonStringToMessage(json, &stats).ok()) {
      LOG_EVERY_N(WARNING, 100) << "worker: unreadable consumer statistics";
      return;
    }
    const auto& topics = stats.fields();
    auto topics_it = topics.find("topics");
    if (topics_it == topics.end()) return;
    const auto& by_topic = topics_it->second.struct_value().fields();
    auto topic_it = by_topic.find(topic_);
    if (topic_it == by_topic.end()) return;
    const auto& fields = topic_it->second.struct_value().fields();
    auto partitions_it = fields.find("partitions");
    if (partitions_it == fields.end()) return;
    metrics::GaugeFamily& lag = WorkerMetrics::Get().lag;
    for (const auto& [key, value] : partitions_it->second.struct_value().fields()) {
      int32_t partition = 0;
      if (!absl::SimpleAtoi(key, &partition) || partition < 0) continue;  // "-1"
      const auto& p = value.struct_value().fields();
      auto lag_it = p.find("consumer_lag");
      if (lag_it == p.end()) continue;
      const double n = lag_it->second.number_value();
      if (owner_->Owns(partition) && n >= 0) {
        lag.WithLabelValues({topic_, key}).Set(n);
      } else {
        lag.Remove({topic_, key});
      }
    }
  }

  const std::string topic_;
  const Rebalancer* owner_;
};

}  // namespace

struct IssuerWorker::Impl {
  WorkerConfig config;
  Rebalancer rebalancer;  // outlives consumer
  std::unique_ptr<ConsumerEvents> events;  // outlives consumer
  std::unique_ptr<kafka::Producer> producer;
  std::unique_ptr<PgIssuanceStore> store;
  std::unique_ptr<BatchProcessor> processor;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer;
  std::atomic<bool> stopping{false};
  // Last: its /readyz handler reads the members above, so it stops first.
  std::unique_ptr<metrics::HttpServer> http;
};

IssuerWorker::IssuerWorker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

int IssuerWorker::owned_partitions() const {
  return impl_->rebalancer.owned_count();
}

bool IssuerWorker::ready() const {
  return impl_->rebalancer.joined() && !impl_->stopping.load();
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

  pg::SessionSettings session = config.pg_session;
  if (session.application_name.empty()) {
    session.application_name = absl::StrCat("coupon-issuer-worker ", member);
  }
  impl->store = std::make_unique<PgIssuanceStore>(
      config.pg_dsn, config.pg_connect_timeout, session);
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
      // For coupon_worker_consumer_lag.
      {"statistics.interval.ms", "5000"},
  };
  for (const auto& [k, v] : config.kafka_extra) props[k] = v;
  auto conf = kafka::MakeConf(props);
  if (!conf.ok()) return conf.status();
  impl->events =
      std::make_unique<ConsumerEvents>(config.request_topic, &impl->rebalancer);
  std::string error;
  if ((*conf)->set("rebalance_cb",
                   static_cast<RdKafka::RebalanceCb*>(&impl->rebalancer),
                   error) != RdKafka::Conf::CONF_OK ||
      (*conf)->set("event_cb", static_cast<RdKafka::EventCb*>(impl->events.get()),
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
  std::unique_ptr<IssuerWorker> worker(new IssuerWorker(std::move(impl)));
  if (config.metrics_port != 0) {
    auto http = metrics::ServeMetrics("0.0.0.0", config.metrics_port,
                                      [w = worker.get()] { return w->ready(); });
    if (!http.ok()) {
      return absl::Status(http.status().code(),
                          absl::StrCat("--metrics_port: ", http.status().message()));
    }
    worker->impl_->http = std::move(*http);
    LOG(INFO) << "worker: /metrics, /healthz, /readyz on port " << config.metrics_port;
  }
  return worker;
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
    const absl::Time batch_start = absl::Now();
    absl::Status done = im.processor->Process(batch, im.config.publish_timeout, &stats);
    counters_.batches++;
    // Stored decisions count even when the batch is retried: the retry
    // republishes them rather than deciding them again.
    WorkerMetrics& m = WorkerMetrics::Get();
    for (const auto& [outcome, n] : stats.decided_by_outcome) {
      m.decisions.WithLabelValues({std::string(OutcomeName(outcome))}).Inc(n);
    }
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
      m.batch_events.Observe(static_cast<double>(stats.events));
      m.transaction_seconds.ObserveDuration(stats.store_time);
      m.batch_seconds.ObserveDuration(absl::Now() - batch_start);
      m.republished.Inc(static_cast<double>(stats.republished));
      m.reused.Inc(static_cast<double>(stats.reused));
      m.dead_letters.Inc(static_cast<double>(stats.dead_letters));
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
    m.retries.Inc();
    LOG(WARNING) << "worker: batch of " << batch.size() << " events from "
                 << ranges.size() << " partitions not done, retrying in "
                 << backoff << ": " << done;
    for (const auto& [partition, range] : ranges) {
      std::unique_ptr<RdKafka::TopicPartition> first(RdKafka::TopicPartition::create(
          im.config.request_topic, partition, range.first));
      RdKafka::ErrorCode err = consumer.seek(*first, 5000);
      if (err == RdKafka::ERR_NO_ERROR) continue;
      // A partition taken from us meanwhile is read again by its new owner
      // from the group's committed offset. One we still own would be read on
      // from past the batch, and the next commit would skip undecided events:
      // stop instead, so the group starts this member's partitions again
      // from the committed offsets (the supervisor restarts the process).
      if (!im.rebalancer.Owns(partition)) continue;
      im.stopping.store(true);
      consumer.close();
      im.consumer.reset();
      WorkerMetrics::Get().assigned.Set(0);
      return absl::InternalError(absl::StrCat(
          "worker: cannot seek partition ", partition, " back to ", range.first,
          " after a failed batch (", RdKafka::err2str(err),
          "); exiting so that no undecided event is skipped"));
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
  // The batch in hand is committed (or given back) by now. close() revokes
  // our partitions and leaves the group, so the others take them over at
  // once instead of after --session_timeout_ms.
  im.stopping.store(true);
  LOG(INFO) << "worker: stopping; leaving group " << im.config.group_id;
  consumer.close();
  im.consumer.reset();
  WorkerMetrics::Get().assigned.Set(0);
  return absl::OkStatus();
}

}  // namespace coupon::worker
