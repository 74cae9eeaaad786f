#include <librdkafka/rdkafkacpp.h>

#include "common/kafka/config.h"
#include "common/kafka/producer.h"
#include "gateway/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "issuer-worker/worker.h"
#include "tests/testing/status_matchers.h"

namespace coupon {
namespace {

using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

TEST(KafkaProperties, ParsesPairsAndRejectsJunk) {
  std::map<std::string, std::string> props;
  ASSERT_THAT(kafka::ParseProperties(
                  "security.protocol=SASL_SSL, sasl.mechanism=PLAIN,a=b=c", &props),
              IsOk());
  EXPECT_THAT(props, UnorderedElementsAre(Pair("security.protocol", "SASL_SSL"),
                                          Pair("sasl.mechanism", "PLAIN"),
                                          Pair("a", "b=c")));
  EXPECT_THAT(kafka::ParseProperties("novalue", &props),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("item 1")));
}

TEST(KafkaProperties, ACommaInASecretDoesNotLeakIt) {
  std::map<std::string, std::string> props;
  EXPECT_THAT(
      kafka::ParseProperties("sasl.username=gw,sasl.password=abc,defgh", &props),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("item 3 (after sasl.password=...)"),
                     Not(HasSubstr("defgh")), Not(HasSubstr("abc")))));
}

TEST(KafkaProperties, SaslSslSettingsAreAcceptedAndSecretsNotEchoed) {
  EXPECT_THAT(kafka::MakeConf({{"security.protocol", "SASL_SSL"},
                               {"sasl.mechanism", "SCRAM-SHA-512"},
                               {"sasl.username", "gateway"},
                               {"sasl.password", "hunter22"},
                               {"ssl.ca.location", "/etc/ssl/certs"}}),
              IsOk());
  EXPECT_THAT(kafka::MakeConf({{"sasl.passwrd", "hunter22"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("sasl.passwrd"), Not(HasSubstr("hunter22")))));
}

// --kafka_properties reaches librdkafka in both binaries: a value librdkafka
// refuses stops the gateway and the worker before they touch the network.
TEST(KafkaProperties, ReachLibrdkafkaInTheGatewayAndTheWorker) {
  gateway::GatewayConfig g;
  g.listen = "127.0.0.1:0";
  g.kafka_extra = {{"security.protocol", "bogus"}};
  EXPECT_THAT(gateway::GatewayServer::Start(g),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("security.protocol")));
  worker::WorkerConfig w;
  w.kafka_extra = {{"security.protocol", "bogus"}};
  EXPECT_THAT(worker::IssuerWorker::Create(w),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("security.protocol")));
}

// What the guarantees rest on cannot be loosened from a Secret's properties.
TEST(KafkaProperties, DurabilitySettingsCannotBeOverridden) {
  for (const auto& [key, value] :
       {std::pair<std::string, std::string>{"acks", "1"},
        {"enable.idempotence", "false"},
        {"partitioner", "consistent"}}) {
    kafka::ProducerConfig config;
    config.brokers = "127.0.0.1:1";
    config.extra = {{key, value}};
    EXPECT_THAT(kafka::Producer::Create(config),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(key)))
        << key << "=" << value;
  }
  kafka::ProducerConfig same;
  same.brokers = "127.0.0.1:1";
  same.extra = {{"acks", "all"}, {"enable.idempotence", "true"}};
  EXPECT_TRUE(kafka::Producer::Create(same).ok());
}

// The sessions' safety timeouts cannot be switched off in the worker.
TEST(Config, WorkerRefusesSessionsWithoutTheirSafetyTimeouts) {
  worker::WorkerConfig w;
  w.pg_session.idle_in_transaction_timeout = absl::ZeroDuration();
  EXPECT_THAT(w.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--pg_idle_in_transaction_timeout")));
  w = worker::WorkerConfig{};
  w.pg_session.lock_timeout = absl::ZeroDuration();
  EXPECT_THAT(w.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--pg_lock_timeout")));
  w = worker::WorkerConfig{};
  w.pg_session.keepalives_count = -1;
  EXPECT_THAT(w.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--pg_keepalives_count")));
}

TEST(KafkaProperties, UnknownPropertyIsNamed) {
  EXPECT_THAT(kafka::MakeConf({{"no.such.property", "1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no.such.property")));
}

TEST(Config, DefaultsAreValid) {
  EXPECT_THAT(gateway::GatewayConfig{}.Validate(), IsOk());
  EXPECT_THAT(worker::WorkerConfig{}.Validate(), IsOk());
}

TEST(Config, BadValuesNameTheFlag) {
  gateway::GatewayConfig g;
  g.pg_pool_size = 0;
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--pg_pool_size")));
  worker::WorkerConfig w;
  w.max_batch = 0;
  EXPECT_THAT(w.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--max_batch")));
}

TEST(Config, SecuritySettingsNameTheFlag) {
  gateway::GatewayConfig g;
  g.tls.cert_file = "/nonexistent/server.crt";
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--tls_cert_file, --tls_key_file")));
  g.tls.key_file = "/nonexistent/server.key";
  EXPECT_THAT(g.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--tls_cert_file"),
                             HasSubstr("/nonexistent/server.crt"))));
  g = gateway::GatewayConfig{};
  g.tls.client_ca_file = "/nonexistent/ca.crt";
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--tls_client_ca_file")));
  g = gateway::GatewayConfig{};
  g.admin.client_names = {"admin"};
  EXPECT_THAT(g.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--admin_client_names"),
                             HasSubstr("--tls_client_ca_file"))));
  g = gateway::GatewayConfig{};
  g.admin.mode = "off";
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--admin_auth")));
  g = gateway::GatewayConfig{};
  g.user_rate_limit.burst = 0;
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--user_burst")));
}

// The default limit leaves room for what a person does, and for the bench's
// default workload, where each user asks twice at once.
TEST(Config, DefaultUserLimitIsOnAndRoomy) {
  const gateway::GatewayConfig g;
  EXPECT_TRUE(g.user_rate_limit.enabled());
  EXPECT_GE(g.user_rate_limit.burst, 5);
  EXPECT_EQ(g.admin.mode, "required");
  EXPECT_FALSE(g.tls.enabled());
}

TEST(Config, OperationsFlagsAreCheckedAndNamed) {
  gateway::GatewayConfig g;
  g.metrics_port = 70000;
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--metrics_port: must be 0..65535 "
                                               "(0: off), got 70000")));
  g = {};
  g.listen = "0.0.0.0:9464";
  g.metrics_port = 9464;
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--metrics_port: 9464 is the gRPC port")));
  g = {};
  g.max_connection_age = absl::Milliseconds(10);
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--max_connection_age: must be 1s..596h, "
                                               "or inf for never, got 10ms")));
  g = {};
  g.max_connection_age = absl::InfiniteDuration();
  g.max_connection_age_grace = absl::InfiniteDuration();
  EXPECT_THAT(g.Validate(), IsOk());
  g.max_connection_age_grace = absl::Seconds(-1);
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--max_connection_age_grace: must be "
                                               "0..596h, or inf for no limit, got -1s")));
  g = {};
  g.shutdown_grace = absl::Seconds(-2);
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--shutdown_grace: must be 0..1h, got -2s")));
  g = {};
  g.pg_timeout = absl::ZeroDuration();
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--pg_timeout: must be positive, got 0")));
  g = {};
  g.not_found_ttl = absl::Seconds(-1);
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--not_found_ttl")));

  worker::WorkerConfig w;
  w.metrics_port = -1;
  EXPECT_THAT(w.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--metrics_port: must be 0..65535 "
                                               "(0: off), got -1")));
}

}  // namespace
}  // namespace coupon
