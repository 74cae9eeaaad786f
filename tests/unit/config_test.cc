#include <librdkafka/rdkafkacpp.h>

#include "common/kafka/config.h"
#include "gateway/gateway_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "issuer-worker/worker.h"
#include "tests/testing/status_matchers.h"

namespace coupon {
namespace {

using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::HasSubstr;
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
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("novalue")));
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

}  // namespace
}  // namespace coupon
