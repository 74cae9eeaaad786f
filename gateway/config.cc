#include "gateway/config.h"

#include "absl/strings/numbers.h"
#include "common/redis/redis.h"

namespace coupon::gateway {
namespace {

using C = GatewayConfig;
using service::Bad;
using service::InRange;
using service::NonEmpty;
using service::NotNegative;
using service::Positive;
using service::Setting;

// gRPC takes milliseconds as an int: at most 596h (INT32_MAX ms is 596h31m).
constexpr absl::Duration kMaxGrpcArg = absl::Hours(596);

// The rules across settings: the metrics port beside the gRPC port, the
// Redis mode's settings, TLS, the admin identities, the per-user limit.
absl::Status AcrossSettings(const C& c) {
  if (int listen_port = 0;
      c.metrics_port != 0 &&
      absl::SimpleAtoi(c.listen.substr(c.listen.rfind(':') + 1),
                       &listen_port) &&
      listen_port == c.metrics_port) {
    return Bad("metrics_port",
               absl::StrCat(c.metrics_port,
                            " is the gRPC port of --listen=", c.listen));
  }
  if (c.issuer_kind() == IssuerKind::kRedis) {
    redis::RedisConfig rc;
    rc.addr = c.redis_addr;
    rc.pool_size = c.redis_pool_size;
    rc.command_timeout = c.redis_timeout;
    if (absl::Status s = rc.Validate(); !s.ok()) return s;
    if (c.redis_record_ttl < absl::Minutes(1)) {
      return Bad("redis_record_ttl", "must be at least 1m");
    }
  }
  if (absl::Status s = c.tls.Validate(); !s.ok()) return s;
  if (!c.admin.client_names.empty() && !c.tls.mutual()) {
    return Bad(
        "admin_client_names",
        "needs --tls_client_ca_file: client certificates are only verified "
        "under mutual TLS");
  }
  if (absl::Status s = c.admin.Validate(); !s.ok()) return s;
  return c.user_rate_limit.Validate();
}

}  // namespace

const service::Schema<GatewayConfig>& GatewaySchema() {
  static const auto* schema = new service::Schema<C>(
      service::Schema<C>(
          {
              Setting<C, std::string>("issuer",
                                      "Where issuance is decided: kafka "
                                      "(queued for coupon-issuer-worker) or "
                                      "redis (decided in Redis at once; run "
                                      "coupon-outbox-scheduler).",
                                      &C::issuer,
                                      service::OneOf({"kafka", "redis"})),
              Setting<C, bool>("precheck",
                               "Answer from what this gateway knows (a "
                               "request's stored result, a user "
                               "holding a copy, a sold-out coupon), storing "
                               "what it infers before it "
                               "answers; false: every request inside the "
                               "window goes to the issuer.",
                               &C::precheck),
              Setting<C, std::string>("listen", "gRPC address to listen on.",
                                      &C::listen, NonEmpty()),
              Setting<C, std::string>(
                  "kafka_brokers",
                  "Kafka bootstrap servers, host:port[,host:port].",
                  &C::kafka_brokers, NonEmpty()),
              Setting<C, std::map<std::string, std::string>>(
                  "kafka_properties",
                  "Extra librdkafka properties, k=v,k=v (security.protocol, "
                  "sasl.*, ssl.*).",
                  &C::kafka_extra),
              Setting<C, std::string>(
                  "pg_dsn",
                  "PostgreSQL connection string (URI or key=value; "
                  "sslmode and several hosts too).",
                  &C::pg_dsn, NonEmpty()),
              Setting<C, std::string>(
                  "request_topic", "Topic the issue requests are produced to.",
                  &C::request_topic, NonEmpty()),
              Setting<C, std::string>(
                  "result_topic", "Topic the decided results are read from.",
                  &C::result_topic, NonEmpty()),
              Setting<C, std::string>(
                  "worker_group",
                  "The issuer-workers' consumer group. The gateway reads its "
                  "committed offsets every 10s, never joining it, to know how "
                  "far a partition with no recent result is decided (the place "
                  "in line); empty: not read.",
                  &C::worker_group),
              Setting<C, int>("pg_pool_size", "PostgreSQL connections at most.",
                              &C::pg_pool_size, InRange(1, 1000)),
              Setting<C, absl::Duration>(
                  "pg_timeout",
                  "Connect, pool-wait and statement timeout for PostgreSQL; a "
                  "lock is waited "
                  "for at most 1s of it.",
                  &C::pg_timeout, Positive()),
              Setting<C, absl::Duration>(
                  "issue_deadline",
                  "IssueCoupon deadline when the caller sets none.",
                  &C::issue_deadline, Positive()),
              Setting<C, absl::Duration>(
                  "max_result_wait",
                  "IssueCoupon with wait_for_result waits for the final "
                  "result at most this long when the caller sets no "
                  "deadline; then it answers ACCEPTED with the position.",
                  &C::max_result_wait, Positive()),
              Setting<C, absl::Duration>(
                  "answer_batch_wait",
                  "How long an answer the gateway stores itself (and, in the "
                  "Redis mode, an issued copy) waits for others to share its "
                  "commit (0: none).",
                  &C::answer_batch_wait,
                  service::InRange(absl::ZeroDuration(), absl::Milliseconds(100))),
              Setting<C, absl::Duration>(
                  "position_interval",
                  "Watches that ask for positions get at most one QUEUED "
                  "update per request this often, when the place changed.",
                  &C::position_interval, Positive()),
              Setting<C, int>(
                  "kafka_message_timeout_ms",
                  "How long the producer retries one event; the call itself is "
                  "answered UNAVAILABLE shortly before its deadline if the "
                  "event is "
                  "not acknowledged by then.",
                  &C::kafka_message_timeout_ms, service::AtLeast(100)),
              Setting<C, int>("kafka_linger_ms", "Producer batching delay.",
                              &C::kafka_linger_ms, InRange(0, 1000)),
              Setting<C, int>(
                  "kafka_max_queued_messages",
                  "Events waiting for the broker at most; past it calls fail "
                  "UNAVAILABLE at once.",
                  &C::kafka_max_queued_messages, Positive()),
              Setting<C, absl::Duration>(
                  "result_replay_window",
                  "At start, read results decided this long ago again; a "
                  "shorter window costs "
                  "database round trips, never a different answer.",
                  &C::result_replay_window, NotNegative()),
              Setting<C, absl::Duration>(
                  "not_found_ttl",
                  "How long an unknown coupon id is remembered as unknown.",
                  &C::not_found_ttl, NotNegative()),
              Setting<C, int>(
                  "result_cache_mib",
                  "MiB for the results this gateway remembers by request id "
                  "and the "
                  "requests it queued; the oldest are forgotten first (a "
                  "forgotten "
                  "one costs a database read, never a different answer).",
                  &C::result_cache_mib, InRange(1, 65536)),
              Setting<C, int>("holder_cache_mib",
                              "MiB for who holds a copy of which coupon and "
                              "which coupons are "
                              "sold out; the oldest is forgotten first.",
                              &C::holder_cache_mib, InRange(1, 65536)),
              Setting<C, int>("max_watches",
                              "WatchIssueResults streams open at once; past it "
                              "a new watch is "
                              "refused RESOURCE_EXHAUSTED.",
                              &C::max_watches, InRange(1, 1'000'000)),
              Setting<C, int>(
                  "watch_queue_mib",
                  "MiB of results the open watches may hold unsent between "
                  "them "
                  "(each at most 8192); a watch that would pass it ends "
                  "RESOURCE_EXHAUSTED, telling its client to watch again by "
                  "request_ids.",
                  &C::watch_queue_mib, InRange(1, 65536)),
              Setting<C, absl::Duration>(
                  "shutdown_grace",
                  "On SIGTERM, how long open calls may take to finish; "
                  "the producer's flush gets what is left of it.",
                  &C::shutdown_grace,
                  InRange(absl::ZeroDuration(), absl::Hours(1))),
              Setting<C, int>("metrics_port",
                              "Port of /metrics (Prometheus), /healthz and "
                              "/readyz (200 while the "
                              "health service says SERVING, else 503: for "
                              "probes that cannot "
                              "speak TLS) on every interface; 0 turns it off.",
                              &C::metrics_port, InRange(0, 65535, " (0: off)")),
              Setting<C, absl::Duration>(
                  "max_connection_age",
                  "Connections are asked to go away (GOAWAY) this long after "
                  "they opened, so "
                  "long-lived watch streams spread over new replicas; inf: "
                  "never.",
                  &C::max_connection_age,
                  service::InfOr(InRange(absl::Seconds(1), kMaxGrpcArg,
                                         ", or inf for never"))),
              Setting<C, absl::Duration>(
                  "max_connection_age_grace",
                  "After --max_connection_age, how long the calls on a "
                  "connection may still "
                  "take before it is closed; inf: no limit.",
                  &C::max_connection_age_grace,
                  service::InfOr(InRange(absl::ZeroDuration(), kMaxGrpcArg,
                                         ", or inf for no limit"))),
              Setting<C, std::string>("redis_addr",
                                      "Redis host:port (--issuer=redis).",
                                      &C::redis_addr),
              Setting<C, std::string>(
                  "redis_password",
                  "Redis AUTH password (--issuer=redis); prefer the "
                  "REDIS_PASSWORD environment variable. Never logged.",
                  &C::redis_password)
                  .Secret(),
              Setting<C, int>("redis_pool_size",
                              "Redis connections at most (--issuer=redis).",
                              &C::redis_pool_size),
              Setting<C, absl::Duration>(
                  "redis_timeout",
                  "Redis connect and command timeout (--issuer=redis).",
                  &C::redis_timeout),
              Setting<C, absl::Duration>(
                  "redis_record_ttl",
                  "How long Redis keeps each request's result other than "
                  "ISSUED and a reserved copy (--issuer=redis), which it keeps "
                  "for good; inf: every result for good (an id resent later is "
                  "never decided again, at one small record per request).",
                  &C::redis_record_ttl),
              Setting<C, std::string>(
                  "tls_cert_file",
                  "PEM certificate chain for TLS on the gRPC port; empty: "
                  "plain text. Re-read "
                  "every minute.",
                  [](C& c) -> std::string& { return c.tls.cert_file; }),
              Setting<C, std::string>(
                  "tls_key_file",
                  "PEM private key of --tls_cert_file (unencrypted).",
                  [](C& c) -> std::string& { return c.tls.key_file; }),
              Setting<C, std::string>(
                  "tls_client_ca_file",
                  "PEM CA bundle: turns on mutual TLS, client certificates "
                  "required and "
                  "verified against it.",
                  [](C& c) -> std::string& { return c.tls.client_ca_file; }),
              Setting<C, std::string>(
                  "admin_auth",
                  "required: CreateCoupon needs an identity from "
                  "--admin_tokens_file or "
                  "--admin_client_names (with neither, every caller is "
                  "refused); none: anyone "
                  "may create coupons (local development only).",
                  [](C& c) -> std::string& { return c.admin.mode; }),
              Setting<C, std::string>(
                  "admin_tokens_file",
                  "File of allowed admin bearer tokens, one per line (a "
                  "mounted Secret); "
                  "callers send `authorization: Bearer <token>`. Re-read when "
                  "it changes.",
                  [](C& c) -> std::string& { return c.admin.tokens_file; }),
              Setting<C, std::vector<std::string>>(
                  "admin_client_names",
                  "Client-certificate names (subject CN or SAN) allowed to "
                  "create coupons, "
                  "comma-separated; needs --tls_client_ca_file.",
                  [](C& c) -> std::vector<std::string>& {
                    return c.admin.client_names;
                  }),
              Setting<C, double>(
                  "user_rate_limit",
                  "IssueCoupon calls per second per user id, sustained; past "
                  "it "
                  "RESOURCE_EXHAUSTED. 0 turns the limit off.",
                  [](C& c) -> double& { return c.user_rate_limit.per_second; }),
              Setting<C, int>(
                  "user_burst",
                  "IssueCoupon calls a user id may make at once before "
                  "--user_rate_limit applies.",
                  [](C& c) -> int& { return c.user_rate_limit.burst; }),
          })
          // A library user opens no port unasked; the binary serves metrics.
          .Defaults([](C& c) { c.metrics_port = 9464; })
          .Check(AcrossSettings));
  return *schema;
}

absl::Status GatewayConfig::Validate() const {
  return GatewaySchema().Validate(*this);
}

}  // namespace coupon::gateway
