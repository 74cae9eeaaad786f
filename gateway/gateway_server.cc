#include "gateway/gateway_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/events/event_codec.h"
#include "common/kafka/producer.h"
#include "common/pg/pg.h"
#include "gateway/coupon_cache.h"
#include "gateway/grpc_service.h"
#include "gateway/issue_service.h"
#include "gateway/kafka_issuer.h"
#include "gateway/redis_issuer.h"
#include "common/redis/redis.h"
#include "gateway/pg_gateway_store.h"
#include "gateway/result_hub.h"
#include "gateway/result_listener.h"
#include "glog/logging.h"
#include "grpc/health/v1/health.pb.h"

namespace coupon::gateway {

absl::Status GatewayConfig::Validate() const {
  auto bad = [](absl::string_view flag, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
  };
  if (issuer != "kafka" && issuer != "redis") {
    return bad("issuer", absl::StrCat("must be kafka or redis, got \"", issuer, "\""));
  }
  if (listen.empty()) return bad("listen", "is empty");
  if (kafka_brokers.empty()) return bad("kafka_brokers", "is empty");
  if (pg_dsn.empty()) return bad("pg_dsn", "is empty");
  if (request_topic.empty()) return bad("request_topic", "is empty");
  if (result_topic.empty()) return bad("result_topic", "is empty");
  if (pg_pool_size < 1 || pg_pool_size > 1000) {
    return bad("pg_pool_size", absl::StrCat("must be 1..1000, got ", pg_pool_size));
  }
  if (pg_timeout <= absl::ZeroDuration()) return bad("pg_timeout", "must be positive");
  if (issue_deadline <= absl::ZeroDuration()) {
    return bad("issue_deadline", "must be positive");
  }
  if (kafka_message_timeout_ms < 100) {
    return bad("kafka_message_timeout_ms", "must be at least 100");
  }
  if (kafka_linger_ms < 0 || kafka_linger_ms > 1000) {
    return bad("kafka_linger_ms", "must be 0..1000");
  }
  if (kafka_max_queued_messages < 1) {
    return bad("kafka_max_queued_messages", "must be positive");
  }
  if (result_replay_window < absl::ZeroDuration()) {
    return bad("result_replay_window", "must not be negative");
  }
  if (issuer == "redis") {
    redis::RedisConfig rc;
    rc.addr = redis_addr;
    rc.pool_size = redis_pool_size;
    rc.command_timeout = redis_timeout;
    if (absl::Status s = rc.Validate(); !s.ok()) return s;
    if (redis_record_ttl < absl::Minutes(1)) {
      return bad("redis_record_ttl", "must be at least 1m");
    }
  }
  if (max_cached_results < 1 || max_issued_pairs < 1) {
    return bad("max_cached_results/max_issued_pairs", "must be positive");
  }
  return absl::OkStatus();
}

struct GatewayServer::Parts {
  std::unique_ptr<pg::Pool> pool;
  std::unique_ptr<PgGatewayStore> store;
  std::unique_ptr<redis::Client> redis;
  std::unique_ptr<RedisIssuer> redis_issuer;  // when issuer = redis
  std::unique_ptr<RedisAwareStore> redis_store;
  std::unique_ptr<CouponCache> coupons;
  std::unique_ptr<ResultHub> hub;
  std::unique_ptr<kafka::Producer> producer;
  // Both feed the hub, so they are declared after it: destroyed first.
  std::unique_ptr<ResultListener> listener;   // kafka mode's result feed
  std::unique_ptr<redis::Subscriber> results;  // redis mode's result feed
  std::unique_ptr<Issuer> issuer;
  std::unique_ptr<IssueService> issue;
  std::unique_ptr<CouponGrpcService> service;
};

GatewayServer::GatewayServer() : parts_(std::make_unique<Parts>()) {}

absl::StatusOr<std::unique_ptr<GatewayServer>> GatewayServer::Start(
    const GatewayConfig& config) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  std::unique_ptr<GatewayServer> self(new GatewayServer());
  Parts& p = *self->parts_;

  char host[256] = "gateway";
  gethostname(host, sizeof(host) - 1);
  const std::string gateway_id = absl::StrCat(host, "-", getpid());

  p.pool = std::make_unique<pg::Pool>(config.pg_dsn, config.pg_pool_size,
                                      config.pg_timeout);
  p.store = std::make_unique<PgGatewayStore>(p.pool.get(), config.pg_timeout);
  p.coupons = std::make_unique<CouponCache>(
      [store = p.store.get()](int64_t id) { return store->GetCoupon(id); },
      config.not_found_ttl, /*max_entries=*/100'000);
  p.hub = std::make_unique<ResultHub>(
      HubLimits{config.max_cached_results, config.max_issued_pairs});

  GatewayStore* store = p.store.get();
  if (config.issuer == "kafka") {
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
    if (absl::Status warm =
            p.producer->WarmUp(config.request_topic, absl::Seconds(5));
        !warm.ok()) {
      LOG(WARNING) << "gateway: " << warm;
    }

    ResultListenerConfig listener_config;
    listener_config.brokers = config.kafka_brokers;
    listener_config.topic = config.result_topic;
    listener_config.replay_window = config.result_replay_window;
    listener_config.extra = config.kafka_extra;
    p.listener = std::make_unique<ResultListener>(listener_config, p.hub.get());
    if (absl::Status s = p.listener->Start(); !s.ok()) return s;

    p.issuer = std::make_unique<KafkaIssuer>(p.producer.get(),
                                             config.request_topic, gateway_id);
  } else {
    redis::RedisConfig redis_config;
    redis_config.addr = config.redis_addr;
    redis_config.password = config.redis_password;
    redis_config.pool_size = config.redis_pool_size;
    redis_config.command_timeout = config.redis_timeout;
    auto redis = redis::Client::Create(redis_config);
    if (!redis.ok()) return redis.status();
    p.redis = std::move(*redis);
    p.redis_issuer = std::make_unique<RedisIssuer>(
        p.redis.get(), p.pool.get(), p.hub.get(), config.redis_record_ttl);
    p.redis_store = std::make_unique<RedisAwareStore>(p.store.get(),
                                                      p.redis_issuer.get());
    p.results = std::make_unique<redis::Subscriber>(
        redis_config, kResultChannel, [hub = p.hub.get()](const std::string& payload) {
          absl::StatusOr<IssueResult> result = DecodeIssueResult(payload);
          if (result.ok()) hub->Publish(*result);
        });
    p.results->Start();
    store = p.redis_store.get();
  }
  Issuer* issuer = p.issuer ? p.issuer.get() : p.redis_issuer.get();
  p.issue = std::make_unique<IssueService>(
      p.coupons.get(), config.precheck ? p.hub.get() : nullptr, issuer);
  p.service = std::make_unique<CouponGrpcService>(
      p.issue.get(), p.hub.get(), store, config.issue_deadline);

  grpc::EnableDefaultHealthCheckService(true);
  // Keeps the health schema linked in, for reflection (see health.proto).
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC shares a busy port by default (SO_REUSEPORT): a second gateway on
  // the same port would silently take half the connections. Fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(),
                           &self->port_);
  builder.RegisterService(p.service.get());
  self->server_ = builder.BuildAndStart();
  if (!self->server_ || self->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen,
                     " (address in use, or not an address:port?)"));
  }
  self->server_->GetHealthCheckService()->SetServingStatus(false);
  self->readiness_ = std::thread([gw = self.get()] {
    while (!gw->stopping_.load()) {
      if (gw->ready()) {
        gw->server_->GetHealthCheckService()->SetServingStatus(true);
        LOG(INFO) << "gateway: serving (result listener ready)";
        return;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  });
  if (config.issuer == "kafka") {
    LOG(INFO) << "gateway " << gateway_id << " (kafka issuer) listening on port "
              << self->port_ << ", kafka " << config.kafka_brokers << ", topics "
              << config.request_topic << " -> " << config.result_topic;
  } else {
    LOG(INFO) << "gateway " << gateway_id << " (redis issuer) listening on port "
              << self->port_ << ", redis " << config.redis_addr;
  }
  return self;
}

void GatewayServer::Wait() { server_->Wait(); }

bool GatewayServer::ready() const {
  // Kafka mode: caught up with the result topic; Redis mode: subscribed to
  // the result channel.
  if (parts_->listener) return parts_->listener->ready();
  return parts_->results && parts_->results->subscribed();
}

void GatewayServer::Shutdown(absl::Duration grace) {
  stopping_.store(true);
  if (readiness_.joinable()) readiness_.join();
  if (!server_) return;
  server_->GetHealthCheckService()->SetServingStatus(false);
  // Open watches would otherwise hold the shutdown for the whole grace and
  // then end CANCELLED; ended now with UNAVAILABLE, clients move on at once.
  parts_->hub->ShutdownWatchers();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

GatewayServer::~GatewayServer() {
  Shutdown(absl::Seconds(5));
  server_.reset();
  // The producer's destructor flushes outstanding events, so every accepted
  // call that is still waiting gets its answer before the process ends.
  parts_.reset();
}

}  // namespace coupon::gateway
