#include "common/service/settings.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/service/instance_id.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace coupon::service {
namespace {

using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

struct Tls {
  std::string cert_file;
};

// One field of every type, a nested one, and two secrets.
struct Config {
  std::string listen = "127.0.0.1:50051";
  std::string mode = "kafka";
  bool precheck = true;
  int max_batch = 500;
  int64_t max_bytes = 1;
  double rate = 1;
  absl::Duration wait = absl::Milliseconds(5);
  absl::Duration age = absl::Minutes(5);
  std::vector<std::string> names;
  std::map<std::string, std::string> props;
  std::string redis_password;  // secret by its name
  int pin = 1234;              // secret by its mark
  int metrics_port = 0;
  Tls tls;
};

using C = Config;

// The gRPC port of "host:port", or 0.
int ListenPort(const std::string& listen) {
  int port = 0;
  if (!absl::SimpleAtoi(listen.substr(listen.rfind(':') + 1), &port)) return 0;
  return port;
}

const Schema<C>& TestSchema() {
  static const auto* schema = new Schema<C>(
      Schema<C>({
          Setting<C, std::string>("listen", "gRPC address to listen on.", &C::listen,
                                  NonEmpty()),
          Setting<C, std::string>("mode", "Where issuance is decided.", &C::mode,
                                  OneOf({"kafka", "redis"})),
          Setting<C, bool>("precheck", "Answer from what is known.", &C::precheck),
          Setting<C, int>("max_batch", "Events in one transaction, at most.",
                          &C::max_batch, InRange(1, 100000)),
          Setting<C, int64_t>("max_bytes", "Bytes at most.", &C::max_bytes,
                              Positive()),
          Setting<C, double>(
              "rate", "Calls per second.", &C::rate,
              Require([](double r) { return std::isfinite(r) && r >= 0 && r <= 1e6; },
                      "must be 0 (off) to 1000000 calls per second")),
          Setting<C, absl::Duration>("wait", "How long to wait for more.", &C::wait,
                                     InRange(absl::ZeroDuration(), absl::Seconds(1))),
          Setting<C, absl::Duration>(
              "age", "Connection age.", &C::age,
              InfOr(InRange(absl::Seconds(1), absl::Hours(596), ", or inf for never"))),
          Setting<C, std::vector<std::string>>("names", "Allowed names.", &C::names,
                                               NoEmptyItems("name")),
          Setting<C, std::map<std::string, std::string>>(
              "props", "Extra librdkafka properties, k=v,k=v.", &C::props),
          Setting<C, std::string>("redis_password", "Redis AUTH password.",
                                  &C::redis_password),
          Setting<C, int>("pin", "A secret number.", &C::pin, InRange(1000, 9999))
              .Secret(),
          Setting<C, int>("metrics_port", "Port of /metrics.", &C::metrics_port,
                          InRange(0, 65535, " (0: off)")),
          Setting<C, std::string>(
              "tls_cert_file", "PEM certificate chain.",
              [](C& c) -> std::string& { return c.tls.cert_file; }),
      })
          .Defaults([](C& c) { c.metrics_port = 9464; })
          .Check([](const C& c) -> absl::Status {
            if (c.metrics_port != 0 && ListenPort(c.listen) == c.metrics_port) {
              return Bad("metrics_port", absl::StrCat(c.metrics_port,
                                                      " is the gRPC port of --listen=",
                                                      c.listen));
            }
            return absl::OkStatus();
          }));
  return *schema;
}

absl::StatusOr<C> Parse(std::vector<std::string> args, Env env = {}) {
  absl::StatusOr<Parsed<C>> parsed = TestSchema().Parse(args, env);
  if (!parsed.ok()) return parsed.status();
  EXPECT_FALSE(parsed->help);
  return parsed->config;
}

// The message of a parse that must fail.
std::string Error(std::vector<std::string> args, Env env = {}) {
  absl::StatusOr<C> parsed = Parse(std::move(args), std::move(env));
  EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument));
  return parsed.ok() ? "(parsed)" : std::string(parsed.status().message());
}

TEST(Settings, DefaultsAreTheStructsAndTheSchemasOwn) {
  absl::StatusOr<C> c = Parse({});
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->listen, "127.0.0.1:50051");
  EXPECT_EQ(c->max_batch, 500);
  EXPECT_TRUE(c->precheck);
  EXPECT_EQ(c->wait, absl::Milliseconds(5));
  EXPECT_TRUE(c->names.empty());
  EXPECT_EQ(c->metrics_port, 9464);  // Defaults(), not C{}'s 0
}

TEST(Settings, ParsesEveryType) {
  absl::StatusOr<C> c = Parse({"--listen=0.0.0.0:1", "--mode", "redis", "--max_batch=7",
                               "--max_bytes=9000000000", "--rate=0.5", "--wait=500ms",
                               "--age=inf", "--names=a,b", "--props=a=b, c = d=e",
                               "--redis_password=hunter22", "--pin=4321",
                               "--tls_cert_file=/etc/tls/tls.crt"});
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->listen, "0.0.0.0:1");
  EXPECT_EQ(c->mode, "redis");
  EXPECT_EQ(c->max_batch, 7);
  EXPECT_EQ(c->max_bytes, int64_t{9000000000});
  EXPECT_EQ(c->rate, 0.5);
  EXPECT_EQ(c->wait, absl::Milliseconds(500));
  EXPECT_EQ(c->age, absl::InfiniteDuration());
  EXPECT_THAT(c->names, ElementsAre("a", "b"));
  EXPECT_THAT(c->props, UnorderedElementsAre(Pair("a", "b"), Pair("c", "d=e")));
  EXPECT_EQ(c->redis_password, "hunter22");
  EXPECT_EQ(c->pin, 4321);
  EXPECT_EQ(c->tls.cert_file, "/etc/tls/tls.crt");
}

TEST(Settings, BoolsTakeNoValueNoPrefixOrAnExplicitOne) {
  EXPECT_FALSE(Parse({"--noprecheck"})->precheck);
  EXPECT_TRUE(Parse({"--noprecheck", "--precheck"})->precheck);
  EXPECT_FALSE(Parse({"--precheck=false"})->precheck);
  EXPECT_FALSE(Parse({"--precheck=no"})->precheck);
  EXPECT_TRUE(Parse({"--precheck=1"})->precheck);
  EXPECT_FALSE(Parse({}, {{"PRECHECK", "false"}})->precheck);
}

TEST(Settings, OneDashWorksAsTwo) {
  EXPECT_EQ(Parse({"-max_batch=3"})->max_batch, 3);
  EXPECT_EQ(Parse({"-max_batch", "4"})->max_batch, 4);
}

TEST(Settings, AnEmptyListAndAnEmptyMap) {
  absl::StatusOr<C> c = Parse({"--names=", "--props="});
  ASSERT_THAT(c, IsOk());
  EXPECT_TRUE(c->names.empty());
  EXPECT_TRUE(c->props.empty());
}

TEST(Settings, CommandLineWinsOverEnvironmentWhichWinsOverDefault) {
  EXPECT_EQ(Parse({}, {{"MAX_BATCH", "7"}})->max_batch, 7);
  EXPECT_EQ(Parse({"--max_batch=8"}, {{"MAX_BATCH", "7"}})->max_batch, 8);
  EXPECT_EQ(Parse({"--max_batch=8", "--max_batch=9"})->max_batch, 9);
  EXPECT_EQ(Parse({}, {{"TLS_CERT_FILE", "/x"}})->tls.cert_file, "/x");
  // Only the upper-case name is the twin.
  EXPECT_EQ(Parse({}, {{"max_batch", "7"}})->max_batch, 500);
}

// Parses that must fail, each with its message exactly.
struct Refused {
  std::vector<std::string> args;
  Env env;
  std::string message;
};

void ExpectRefused(const std::vector<Refused>& cases) {
  for (const Refused& c : cases) {
    std::string env;
    for (const auto& [k, v] : c.env) absl::StrAppend(&env, k, "=", v, " ");
    SCOPED_TRACE(absl::StrCat(env, absl::StrJoin(c.args, " ")));
    EXPECT_EQ(Error(c.args, c.env), c.message);
  }
}

TEST(Settings, ValuesThatDoNotParseNameTheirFlagOrVariable) {
  ExpectRefused({
      {{"--max_batch=abc"}, {}, "--max_batch=\"abc\": not an integer"},
      {{}, {{"MAX_BATCH", "abc"}}, "environment variable MAX_BATCH=\"abc\": not an integer"},
      // Even when the command line sets it too: the deployment is wrong.
      {{"--max_batch=8"},
       {{"MAX_BATCH", "abc"}},
       "environment variable MAX_BATCH=\"abc\": not an integer"},
      {{"--max_batch=99999999999"},
       {},
       "--max_batch=\"99999999999\": out of range for int (-2147483648..2147483647)"},
      {{"--precheck=maybe"}, {}, "--precheck=\"maybe\": not a bool (true or false)"},
      {{"--wait=5"}, {}, "--wait=\"5\": not a duration (e.g. 10s, 500ms, 1h30m, inf)"},
      {{"--rate=fast"}, {}, "--rate=\"fast\": not a number"},
      // A map's text is not echoed; its bad item is named by position.
      {{"--props=a=b,c"},
       {},
       "--props: expected key=value, item 2 (after a=...) is not; a value cannot "
       "contain ','"},
      {{"--props==b"}, {}, "--props: expected key=value, item 1 is not; a value cannot contain ','"},
  });
}

TEST(Settings, ValidatorsSayWhyInTodaysStyle) {
  ExpectRefused({
      {{"--max_batch=0"}, {}, "--max_batch: must be 1..100000, got 0"},
      // From the environment, the same message: it is the value that is wrong.
      {{}, {{"MAX_BATCH", "0"}}, "--max_batch: must be 1..100000, got 0"},
      {{"--mode=rabbit"}, {}, "--mode: must be kafka or redis, got \"rabbit\""},
      {{"--wait=2s"}, {}, "--wait: must be 0..1s, got 2s"},
      {{"--age=0"}, {}, "--age: must be 1s..596h, or inf for never, got 0"},
      {{"--metrics_port=70000"}, {}, "--metrics_port: must be 0..65535 (0: off), got 70000"},
      {{"--listen="}, {}, "--listen: is empty"},
      {{"--names=a,,b"}, {}, "--names: has an empty name"},
      {{"--max_bytes=0"}, {}, "--max_bytes: must be positive, got 0"},
      {{"--rate=-1"}, {}, "--rate: must be 0 (off) to 1000000 calls per second, got -1"},
      {{"--rate=nan"}, {}, "--rate: must be 0 (off) to 1000000 calls per second, got nan"},
      // A rule across settings runs after each setting's own.
      {{"--listen=127.0.0.1:9464"},
       {},
       "--metrics_port: 9464 is the gRPC port of --listen=127.0.0.1:9464"},
      {{"--listen=127.0.0.1:9464", "--max_batch=0"}, {}, "--max_batch: must be 1..100000, got 0"},
  });
  EXPECT_THAT(Parse({"--listen=127.0.0.1:9464", "--metrics_port=0"}), IsOk());
}

TEST(Settings, UnknownFlagsAndStrayArgumentsAreErrors) {
  const std::string stray = ": flags are written --name=value (--help lists them)";
  ExpectRefused({
      {{"--max_batches=5"}, {}, "--max_batches: no such flag (--help lists them)"},
      {{"--nomax_batch"}, {}, "--nomax_batch: no such flag (--max_batch is not a bool)"},
      {{"--noprecheck=true"}, {}, "--noprecheck: no such flag (write --precheck=false)"},
      {{"--max_batch"}, {}, "--max_batch: needs a value (--max_batch=...)"},
      {{"stray"}, {}, "unexpected argument \"stray\"" + stray},
      // A bool never takes the next argument.
      {{"--precheck", "false"}, {}, "unexpected argument \"false\"" + stray},
      {{"--", "x"}, {}, "unexpected argument \"x\"" + stray},
  });
  EXPECT_THAT(Parse({"--max_batch=5", "--"}), IsOk());
}

TEST(Settings, ValidateChecksAConfigFilledInCode) {
  C c;
  EXPECT_THAT(TestSchema().Validate(c), IsOk());
  c.wait = absl::Seconds(-1);
  EXPECT_THAT(TestSchema().Validate(c),
              StatusIs(absl::StatusCode::kInvalidArgument, "--wait: must be 0..1s, got -1s"));
}

TEST(Settings, SecretsAreNeverEchoed) {
  // Marked, or secret by name (IsSecretKey): a value that does not parse, or
  // that a validator refuses.
  ExpectRefused({
      {{"--pin=12ab"}, {}, "--pin=\"***\": not an integer"},
      {{}, {{"PIN", "12ab"}}, "environment variable PIN=\"***\": not an integer"},
      {{"--pin=12"}, {}, "--pin: must be 1000..9999, got ***"},
  });
  // a value split off its flag by a stray space,
  const std::string stray = Error({"--redis_password=", "hunter22"});
  EXPECT_THAT(stray, AllOf(HasSubstr("unexpected argument 2 (after a secret's flag)"),
                           Not(HasSubstr("hunter22"))));
  // a map's bad item, which may be the tail of a secret holding a ','.
  const std::string props = Error({"--props=sasl.username=gw,sasl.password=abc,defgh"});
  EXPECT_THAT(props, AllOf(HasSubstr("item 3 (after sasl.password=...)"),
                           Not(HasSubstr("defgh")), Not(HasSubstr("abc"))));
  const std::string env_props =
      Error({}, {{"PROPS", "sasl.username=gw,sasl.password=abc,defgh"}});
  EXPECT_THAT(env_props, AllOf(HasSubstr("environment variable PROPS: expected"),
                               Not(HasSubstr("defgh")), Not(HasSubstr("abc"))));
  // A map prints its secret values redacted.
  EXPECT_EQ(FormatValue(std::map<std::string, std::string>{{"sasl.password", "pw"},
                                                           {"sasl.username", "gw"}}),
            "sasl.password=***,sasl.username=gw");
}

struct Secrets {
  std::string api_token = "s3cret-default";
  std::string passphrase = "another-one";
  std::string empty_password;
};

TEST(Settings, SecretDefaultsAreRedactedInHelpAndDescribe) {
  using S = Secrets;
  Schema<S> schema({
      Setting<S, std::string>("api_token", "A token.", &S::api_token),
      Setting<S, std::string>("phrase", "A phrase.", &S::passphrase).Secret(),
      Setting<S, std::string>("empty_password", "Empty by default.", &S::empty_password),
  });
  const std::string help = schema.Help("secrets");
  EXPECT_THAT(help, AllOf(Not(HasSubstr("s3cret")), Not(HasSubstr("another-one")),
                          HasSubstr("default: *** (secret)")));
  const std::vector<SettingInfo> info = schema.Describe();
  ASSERT_EQ(info.size(), 3u);
  EXPECT_TRUE(info[0].secret);
  EXPECT_EQ(info[0].default_value, "***");
  EXPECT_TRUE(info[1].secret);
  EXPECT_EQ(info[1].default_value, "***");
  // An empty default tells nothing, and is shown as empty.
  EXPECT_TRUE(info[2].secret);
  EXPECT_EQ(info[2].default_value, "");
  EXPECT_THAT(MarkdownTable(schema), Not(HasSubstr("s3cret")));
}

struct Small {
  std::string brokers = "127.0.0.1:9092";
  bool precheck = true;
  int pool = 8;
  absl::Duration timeout = absl::Seconds(3);
  std::string password;
  std::vector<std::string> names;
};

Schema<Small> SmallSchema() {
  using S = Small;
  return Schema<S>({
      Setting<S, std::string>("kafka_brokers", "Kafka bootstrap servers, host:port[,host:port].",
                              &S::brokers, NonEmpty()),
      Setting<S, bool>("precheck", "Answer from what the gateway knows.", &S::precheck),
      Setting<S, int>("pg_pool_size", "PostgreSQL connections at most.", &S::pool,
                      InRange(1, 1000)),
      Setting<S, absl::Duration>(
          "pg_timeout",
          "Connect and pool wait timeout for PostgreSQL; a long description is "
          "wrapped at 80 columns in --help, with | kept in the table.",
          &S::timeout, Positive()),
      Setting<S, std::string>("redis_password", "Redis AUTH password.", &S::password),
      Setting<S, std::vector<std::string>>("admin_client_names", "Allowed names.",
                                           &S::names),
  });
}

TEST(Settings, HelpListsEveryFlagWithItsTwinDefaultAndMeaning) {
  EXPECT_EQ(SmallSchema().Help("coupon-test: a small binary for the tests."),
            R"(coupon-test: a small binary for the tests.

Flags. Each can also be set by the environment variable in brackets; the command
line wins over the environment, which wins over the default.

  --kafka_brokers <string>  [KAFKA_BROKERS]
      Kafka bootstrap servers, host:port[,host:port].
      default: "127.0.0.1:9092"

  --precheck | --noprecheck  [PRECHECK]
      Answer from what the gateway knows.
      default: true

  --pg_pool_size <int>  [PG_POOL_SIZE]
      PostgreSQL connections at most.
      default: 8

  --pg_timeout <duration>  [PG_TIMEOUT]
      Connect and pool wait timeout for PostgreSQL; a long description is
      wrapped at 80 columns in --help, with | kept in the table.
      default: 3s

  --redis_password <string>  [REDIS_PASSWORD]
      Redis AUTH password.
      default: ""

  --admin_client_names <list>  [ADMIN_CLIENT_NAMES]
      Allowed names.
      default: ""

  --help
      Prints this and exits.
)");
}

TEST(Settings, HelpIsAskedForWhateverElseIsOnTheLine) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--help"}, {"-help"}, {"--helpfull"}, {"--pg_pool_size=0", "--help"},
        {"--no_such_flag", "--help"}}) {
    absl::StatusOr<Parsed<Small>> parsed =
        SmallSchema().Parse(args, {{"PG_POOL_SIZE", "abc"}});
    ASSERT_THAT(parsed, IsOk());
    EXPECT_TRUE(parsed->help);
  }
}

// tests/chaos/lib.sh's has_flag: `"$bin" --helpfull | grep -q -- "--$flag "`.
TEST(Settings, HelpfullListsEachFlagAsTheChaosSuiteLooksForIt) {
  absl::StatusOr<Parsed<Small>> parsed = SmallSchema().Parse({"--helpfull"}, {});
  ASSERT_THAT(parsed, IsOk());
  EXPECT_TRUE(parsed->help);
  const std::string help = SmallSchema().Help("usage");
  for (const SettingInfo& s : SmallSchema().Describe()) {
    EXPECT_THAT(help, HasSubstr(absl::StrCat("--", s.name, " ")));
  }
  EXPECT_THAT(help, Not(HasSubstr("--pg_pool ")));
}

TEST(Settings, MarkdownTableIsTheDocsTable) {
  EXPECT_EQ(MarkdownTable(SmallSchema()),
            "| flag | default | meaning |\n"
            "|---|---|---|\n"
            "| `--kafka_brokers` | `127.0.0.1:9092` | Kafka bootstrap servers, "
            "host:port[,host:port]. |\n"
            "| `--precheck` | true | Answer from what the gateway knows. |\n"
            "| `--pg_pool_size` | 8 | PostgreSQL connections at most. |\n"
            "| `--pg_timeout` | 3s | Connect and pool wait timeout for PostgreSQL; a "
            "long description is wrapped at 80 columns in --help, with \\| kept in the "
            "table. |\n"
            "| `--redis_password` | (empty) | Redis AUTH password. |\n"
            "| `--admin_client_names` | (empty) | Allowed names. |\n");
}

TEST(Settings, FormatValueIsWhatParseValueReads) {
  absl::Duration d;
  ASSERT_THAT(ParseValue(FormatValue(absl::Minutes(90)), &d), IsOk());
  EXPECT_EQ(d, absl::Minutes(90));
  EXPECT_EQ(FormatValue(absl::InfiniteDuration()), "inf");
  EXPECT_EQ(FormatValue(absl::ZeroDuration()), "0");
  EXPECT_EQ(FormatValue(1.0), "1");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(std::vector<std::string>{"a", "b"}), "a,b");
  std::vector<std::string> names;
  ASSERT_THAT(ParseValue("a,,b", &names), IsOk());
  EXPECT_THAT(names, ElementsAre("a", "", "b"));
}

using SettingsDeathTest = ::testing::Test;

TEST(SettingsDeathTest, ParseOrExitExitsTwoWithTheMessage) {
  const char* argv[] = {"coupon-test", "--pg_pool_size=0"};
  EXPECT_EXIT(ParseOrExit(SmallSchema(), 2, const_cast<char**>(argv), "usage"),
              ::testing::ExitedWithCode(2), "^--pg_pool_size: must be 1..1000, got 0\n$");
}

TEST(SettingsDeathTest, ParseOrExitReadsTheProcessEnvironment) {
  const char* argv[] = {"coupon-test"};
  EXPECT_EXIT(
      {
        setenv("PG_POOL_SIZE", "abc", 1);
        ParseOrExit(SmallSchema(), 1, const_cast<char**>(argv), "usage");
      },
      ::testing::ExitedWithCode(2),
      "environment variable PG_POOL_SIZE=\"abc\": not an integer");
}

TEST(SettingsDeathTest, ParseOrExitExitsZeroAfterHelp) {
  const char* argv[] = {"coupon-test", "--help"};
  EXPECT_EXIT(ParseOrExit(SmallSchema(), 2, const_cast<char**>(argv), "usage"),
              ::testing::ExitedWithCode(0), "");
}

TEST(Settings, ParseOrExitReturnsTheConfig) {
  const char* argv[] = {"coupon-test", "--pg_pool_size=3", "--noprecheck"};
  const Small s = ParseOrExit(SmallSchema(), 3, const_cast<char**>(argv), "usage");
  EXPECT_EQ(s.pool, 3);
  EXPECT_FALSE(s.precheck);
}

TEST(SettingsDeathTest, ASchemaRefusesBadAndRepeatedNames) {
  using S = Small;
  EXPECT_DEATH(Schema<S>({Setting<S, int>("Pool-Size", "", &S::pool)}),
               "a name is \\[a-z\\]");
  EXPECT_DEATH(Schema<S>({Setting<S, int>("pool", "", &S::pool),
                          Setting<S, int>("pool", "", &S::pool)}),
               "defined twice");
  EXPECT_DEATH(Schema<S>({Setting<S, bool>("help", "", &S::precheck)}), "--help");
}

TEST(InstanceId, IsHostAndPid) {
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(InstanceId(), absl::StrCat(host, "-", getpid()));
}

}  // namespace
}  // namespace coupon::service
