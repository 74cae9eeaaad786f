#include "gateway/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/wire/event_codec.h"
#include "common/kafka/producer.h"
#include "common/pg/pg.h"
#include "common/service/instance_id.h"
#include "common/service/redact.h"
#include "common/metrics/http_server.h"
#include "gateway/issue/coupon_cache.h"
#include "gateway/api/gateway_metrics.h"
#include "gateway/api/grpc_service.h"
#include "gateway/issue/issue_service.h"
#include "gateway/issue/kafka_issuer.h"
#include "redis-issuer/redis_issuer.h"
#include "common/redis/redis.h"
#include "gateway/store/pg_gateway_store.h"
#include "gateway/store/answer_recorder.h"
#include "gateway/results/result_hub.h"
#include "gateway/results/result_listener.h"
#include "gateway/results/stored_result_poller.h"
#include "glog/logging.h"
#include "grpc/health/v1/health.pb.h"

namespace coupon::gateway {

struct GatewayServer::Parts {
  // First: destroyed last, so /metrics answers until the very end.
  std::unique_ptr<metrics::HttpServer> http;
  std::unique_ptr<pg::Pool> pool;
  std::unique_ptr<PgGatewayStore> store;
  std::unique_ptr<redis::Client> redis;
  std::unique_ptr<RedisIssuer> redis_issuer;  // when issuer = redis
  std::unique_ptr<RedisAwareStore> redis_store;
  std::unique_ptr<CouponCache> coupons;
  std::unique_ptr<ResultHub> hub;
  std::unique_ptr<kafka::Producer> producer;
  // All three feed the hub, so they are declared after it: destroyed first.
  std::unique_ptr<ResultListener> listener;   // kafka mode's result feed
  std::unique_ptr<redis::Subscriber> results;  // redis mode's result feed
  std::unique_ptr<StoredResultPoller> poller;  // answers other gateways stored
  std::unique_ptr<Issuer> issuer;
  // Its last callbacks may hand requests to the issuer: destroyed before it.
  std::unique_ptr<AnswerRecorder> recorder;
  // Redis mode: its callbacks publish to the hub, destroyed after it.
  std::unique_ptr<redis_issuer::CopyWriter> copies;
  // Redis mode: its callbacks finish the issuer's decisions (and hand copies
  // to the writer), so it stops first and answers what still waits.
  std::unique_ptr<redis::AsyncClient> redis_async;
  std::unique_ptr<AdminAuthorizer> admin;
  std::unique_ptr<UserRateLimiter> limiter;
  std::unique_ptr<IssueService> issue;
  std::unique_ptr<CouponGrpcService> service;

  // What the gRPC service reads from: PostgreSQL, and Redis in that mode.
  GatewayStore* reads() {
    if (redis_store) return redis_store.get();
    return store.get();
  }
  Issuer* the_issuer() {
    if (issuer) return issuer.get();
    return redis_issuer.get();
  }
};

namespace {

using Parts = GatewayServer::Parts;

// No session of a gateway waits long for anything: a statement that would
// (a lock held by a frozen worker, a server gone silent) fails, and the call
// is answered UNAVAILABLE or, for an answer to store, decided by the worker.
pg::SessionSettings GatewaySession(const GatewayConfig& config,
                                   const std::string& gateway_id) {
  pg::SessionSettings s;
  s.statement_timeout = config.pg_timeout;
  s.lock_timeout = std::min(config.pg_timeout, absl::Seconds(1));
  s.idle_in_transaction_timeout = absl::Seconds(10);
  s.keepalives_idle = absl::Seconds(10);
  s.keepalives_interval = absl::Seconds(2);
  s.keepalives_count = 3;
  s.tcp_user_timeout = absl::Seconds(15);
  s.application_name = absl::StrCat("coupon-gateway ", gateway_id);
  s.key_lookups_only = true;
  return s;
}

// The session of a thread whose statements each commit on their own (the
// answer recorder, the Redis mode's copy writer): no statement_timeout. One
// that fired while the commit waits for a synchronous standby would leave
// the rows on the primary alone and report them stored.
pg::SessionSettings CommitSession(pg::SessionSettings session) {
  session.statement_timeout = absl::ZeroDuration();
  return session;
}

// PostgreSQL, the caches, and the coupons read through them.
void StartStores(const GatewayConfig& config, const pg::SessionSettings& session,
                 Parts& p) {
  p.pool = std::make_unique<pg::Pool>(config.pg_dsn, config.pg_pool_size,
                                      config.pg_timeout, session);
  p.store = std::make_unique<PgGatewayStore>(p.pool.get(), config.pg_timeout);
  HubLimits limits;
  limits.cache.result_bytes = size_t(config.result_cache_mib) << 20;
  limits.cache.holder_bytes = size_t(config.holder_cache_mib) << 20;
  limits.max_watches = config.max_watches;
  limits.watch_queue_bytes = size_t(config.watch_queue_mib) << 20;
  p.hub = std::make_unique<ResultHub>(limits);
  // A coupon read with no stock left is sold out for good.
  p.coupons = std::make_unique<CouponCache>(
      [store = p.store.get(), hub = p.hub.get()](int64_t id) {
        absl::StatusOr<CouponInfo> coupon = store->GetCoupon(id);
        if (coupon.ok() && coupon->remaining_quantity == 0) hub->cache().SoldOut(id);
        return coupon;
      },
      config.not_found_ttl, /*max_entries=*/100'000);
}

// The improved system: the producer, the result listener, the answer
// recorder and the Kafka issuer.
absl::Status StartKafkaMode(const GatewayConfig& config, const std::string& gateway_id,
                            const pg::SessionSettings& session, Parts& p) {
  kafka::ProducerConfig producer_config;
  producer_config.brokers = config.kafka_brokers;
  producer_config.client_id = absl::StrCat("coupon-gateway-", gateway_id);
  producer_config.message_timeout_ms = config.kafka_message_timeout_ms;
  producer_config.linger_ms = config.kafka_linger_ms;
  producer_config.max_queued_messages = config.kafka_max_queued_messages;
  producer_config.extra = config.kafka_extra;
  auto producer = kafka::Producer::Create(producer_config);
  if (!producer.ok()) return producer.status();
  p.producer = std::move(*producer);
  // Not fatal: the gateway starts while Kafka is down and answers
  // UNAVAILABLE until it is back.
  if (absl::Status warm = p.producer->WarmUp(config.request_topic, absl::Seconds(5));
      !warm.ok()) {
    LOG(WARNING) << "gateway: " << warm;
  }
  ResultListenerConfig listener_config;
  listener_config.brokers = config.kafka_brokers;
  listener_config.topic = config.result_topic;
  listener_config.replay_window = config.result_replay_window;
  listener_config.extra = config.kafka_extra;
  listener_config.worker_group = config.worker_group;
  listener_config.request_topic = config.request_topic;
  p.listener = std::make_unique<ResultListener>(listener_config, p.hub.get());
  if (absl::Status s = p.listener->Start(); !s.ok()) return s;

  RecorderConfig recorder_config;
  recorder_config.pg_dsn = config.pg_dsn;
  // A stuck database fills the recorder's queue, and the worker decides
  // meanwhile.
  recorder_config.session = CommitSession(session);
  recorder_config.connect_timeout = config.pg_timeout;
  recorder_config.batch_wait = config.answer_batch_wait;
  // A sold-out coupon's every copy, once read, spares each storm answer its
  // probe of user_coupons. At most a quarter of the holder budget, at about
  // 160 bytes a holder.
  ResultCache& cache = p.hub->cache();
  recorder_config.knows_no_copy = [&cache](int64_t coupon_id, const std::string& user_id) {
    return cache.HoldsNoCopy(coupon_id, user_id);
  };
  recorder_config.learn_copies = [&cache](int64_t coupon_id,
                                          const std::vector<UserCouponRow>& copies) {
    cache.LearnAllHolders(coupon_id, copies);
  };
  recorder_config.max_copies =
      static_cast<int64_t>((size_t(config.holder_cache_mib) << 20) / 4 / 160);
  p.recorder = std::make_unique<AnswerRecorder>(recorder_config);
  p.issuer = std::make_unique<KafkaIssuer>(p.producer.get(), p.recorder.get(), p.hub.get(),
                                           config.request_topic, gateway_id);
  return absl::OkStatus();
}

// The design's existing system: Redis, its issuer and its result channel.
absl::Status StartRedisMode(const GatewayConfig& config,
                            const pg::SessionSettings& session, Parts& p) {
  redis::RedisConfig redis_config;
  redis_config.addr = config.redis_addr;
  redis_config.password = config.redis_password;
  redis_config.pool_size = config.redis_pool_size;
  redis_config.command_timeout = config.redis_timeout;
  auto redis = redis::Client::Create(redis_config);
  if (!redis.ok()) return redis.status();
  p.redis = std::move(*redis);
  redis_issuer::CopyWriterConfig copies;
  copies.pg_dsn = config.pg_dsn;
  copies.session = CommitSession(session);
  copies.connect_timeout = config.pg_timeout;
  copies.rounds.batch_wait = config.answer_batch_wait;
  copies.record_ttl = config.redis_record_ttl;
  p.copies = std::make_unique<redis_issuer::CopyWriter>(copies, p.redis.get());
  auto async = redis::AsyncClient::Create(redis_config);
  if (!async.ok()) return async.status();
  p.redis_async = std::move(*async);
  p.redis_issuer = std::make_unique<RedisIssuer>(p.redis_async.get(), p.redis.get(),
                                                 p.copies.get(), p.hub.get(),
                                                 config.redis_record_ttl);
  p.redis_store = std::make_unique<RedisAwareStore>(p.store.get(), p.redis_issuer.get());
  p.results = std::make_unique<redis::Subscriber>(
      redis_config, redis_issuer::kResultChannel,
      [hub = p.hub.get()](const std::string& payload) {
        absl::StatusOr<IssueResult> result = DecodeIssueResult(payload);
        if (result.ok()) hub->Publish(*result);
      });
  p.results->Start();
  return absl::OkStatus();
}

// Who may do what, the IssueCoupon front end and the gRPC service.
absl::Status StartFrontEnd(const GatewayConfig& config, Parts& p) {
  p.poller = std::make_unique<StoredResultPoller>(p.hub.get(), p.reads());
  auto admin = AdminAuthorizer::Create(config.admin);
  if (!admin.ok()) return admin.status();
  p.admin = std::move(*admin);
  if (!config.tls.enabled() && !config.admin.tokens_file.empty()) {
    LOG(WARNING) << "gateway: admin bearer tokens travel in plain text: set "
                    "--tls_cert_file unless a proxy in front terminates TLS";
  }
  if (config.user_rate_limit.enabled()) {
    p.limiter = std::make_unique<UserRateLimiter>(config.user_rate_limit);
  }
  p.issue = std::make_unique<IssueService>(
      p.coupons.get(), config.precheck ? &p.hub->cache() : nullptr, p.the_issuer(),
      p.limiter.get());
  ServiceOptions options;
  options.issue_deadline = config.issue_deadline;
  options.max_result_wait = config.max_result_wait;
  options.position_interval = config.position_interval;
  p.service = std::make_unique<CouponGrpcService>(p.issue.get(), p.hub.get(), p.reads(),
                                                  p.admin.get(), options);
  return absl::OkStatus();
}

// The gRPC server on --listen, with health and reflection, not serving yet.
absl::StatusOr<std::unique_ptr<grpc::Server>> BuildServer(const GatewayConfig& config,
                                                          grpc::Service* service,
                                                          int* port) {
  grpc::EnableDefaultHealthCheckService(true);
  // Keeps the health schema linked in, for reflection (see health.proto).
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC shares a busy port by default (SO_REUSEPORT): a second gateway on
  // the same port would silently take half the connections. Fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Long-lived streams would stay on the replicas that were up when they
  // opened; aged connections are closed so clients spread over new ones.
  if (config.max_connection_age != absl::InfiniteDuration()) {
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_MS,
        static_cast<int>(absl::ToInt64Milliseconds(config.max_connection_age)));
  }
  if (config.max_connection_age_grace != absl::InfiniteDuration()) {
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
        static_cast<int>(absl::ToInt64Milliseconds(config.max_connection_age_grace)));
  }
  builder.AddListeningPort(config.listen, MakeServerCredentials(config.tls), port);
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || *port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", config.listen, " (address in use, or not an address:port?)"));
  }
  server->GetHealthCheckService()->SetServingStatus(false);
  return server;
}

// Where the gateway connects and how, secrets redacted: e.g. that sslmode or
// SASL is in effect.
void LogStarted(const GatewayConfig& config, const std::string& gateway_id, int port) {
  const bool kafka = config.issuer_kind() == IssuerKind::kKafka;
  LOG(INFO) << "gateway " << gateway_id << " (" << (kafka ? "kafka" : "redis")
            << " issuer) listening on port " << port
            << (kafka ? absl::StrCat(", kafka ", config.kafka_brokers, ", topics ",
                                     config.request_topic, " -> ", config.result_topic)
                      : absl::StrCat(", redis ", config.redis_addr));
  LOG(INFO) << "gateway: " << config.tls.Describe() << "; postgres "
            << RedactDsn(config.pg_dsn)
            << (config.kafka_extra.empty() || !kafka
                    ? ""
                    : absl::StrCat("; kafka properties ", RedactProperties(config.kafka_extra)))
            << "; per-user limit "
            << (config.user_rate_limit.enabled()
                    ? absl::StrCat(config.user_rate_limit.burst, " at once, then ",
                                   config.user_rate_limit.per_second, "/s")
                    : "off");
}

}  // namespace

GatewayServer::GatewayServer() : parts_(std::make_unique<Parts>()) {}

absl::StatusOr<std::unique_ptr<GatewayServer>> GatewayServer::Start(
    const GatewayConfig& config) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  std::unique_ptr<GatewayServer> self(new GatewayServer());
  Parts& p = *self->parts_;
  if (config.metrics_port != 0) {
    auto http = metrics::ServeMetrics("0.0.0.0", config.metrics_port,
                                      [gw = self.get()] { return gw->serving_.load(); });
    if (!http.ok()) {
      return absl::Status(http.status().code(),
                          absl::StrCat("--metrics_port: ", http.status().message()));
    }
    p.http = std::move(*http);
  }
  ServingGauge().Set(0);
  const std::string gateway_id = service::InstanceId();
  const pg::SessionSettings session = GatewaySession(config, gateway_id);
  StartStores(config, session, p);
  absl::Status mode = config.issuer_kind() == IssuerKind::kKafka
                          ? StartKafkaMode(config, gateway_id, session, p)
                          : StartRedisMode(config, session, p);
  if (!mode.ok()) return mode;
  if (absl::Status s = StartFrontEnd(config, p); !s.ok()) return s;
  auto server = BuildServer(config, p.service.get(), &self->port_);
  if (!server.ok()) return server.status();
  self->server_ = std::move(*server);
  self->StartReadiness();
  LogStarted(config, gateway_id, self->port_);
  return self;
}

void GatewayServer::StartReadiness() {
  readiness_ = std::thread([this] {
    while (!stopping_.load()) {
      if (ready()) {
        server_->GetHealthCheckService()->SetServingStatus(true);
        serving_.store(true);
        ServingGauge().Set(1);
        LOG(INFO) << "gateway: serving (result listener ready)";
        return;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  });
}

void GatewayServer::Wait() { server_->Wait(); }

bool GatewayServer::ready() const {
  // Kafka mode: caught up with the result topic; Redis mode: subscribed to
  // the result channel.
  if (parts_->listener) return parts_->listener->ready();
  return parts_->results && parts_->results->subscribed();
}

void GatewayServer::Shutdown(absl::Duration grace) {
  const absl::Time deadline = absl::Now() + grace;
  stopping_.store(true);
  if (readiness_.joinable()) readiness_.join();
  if (!server_ || shut_down_) return;
  shut_down_ = true;
  // First, so load balancers and probes stop sending calls here.
  server_->GetHealthCheckService()->SetServingStatus(false);
  serving_.store(false);
  ServingGauge().Set(0);
  // Open watches would otherwise hold the shutdown for the whole grace and
  // then end CANCELLED; ended now with UNAVAILABLE, clients move on at once.
  parts_->hub->watches().ShutdownWatchers();
  // Refuses new calls and waits for the open ones. An IssueCoupon call ends
  // with its event's delivery report, so the calls answered here are every
  // acknowledgement the clients wait for.
  server_->Shutdown(absl::ToChronoTime(deadline));
  // Calls cut off at the deadline leave events in the producer: give them to
  // the broker in what is left of the grace (their clients got an error and
  // retry with the same request_id, which is never issued twice).
  if (parts_->producer) {
    const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
    if (absl::Status flushed = parts_->producer->Flush(left); !flushed.ok()) {
      LOG(WARNING) << "gateway: shutdown: " << flushed;
    }
  }
  LOG(INFO) << "gateway: calls drained, producer flushed";
}

GatewayServer::~GatewayServer() {
  Shutdown(absl::Seconds(5));
  server_.reset();
  // The producer's destructor flushes outstanding events, so every accepted
  // call that is still waiting gets its answer before the process ends.
  parts_.reset();
}

}  // namespace coupon::gateway
