// The doc check (tests/testing/doc_table.h) on small made-up schemas and doc
// snippets: what passes, and each way a doc can differ from its binary.

#include "tests/testing/doc_table.h"

#include "absl/strings/str_cat.h"
#include "common/service/settings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace coupon::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using service::InRange;
using service::Schema;
using service::Setting;

struct Worker {
  std::string brokers = "127.0.0.1:9092";
  std::string properties_text;
  int max_batch = 500;
  absl::Duration batch_wait = absl::Milliseconds(5);
  absl::Duration keepalives_idle = absl::Seconds(10);
  absl::Duration keepalives_interval = absl::Seconds(2);
  int keepalives_count = 3;
  int metrics_port = 0;
  bool precheck = true;
};

const Schema<Worker>& WorkerSchema() {
  using W = Worker;
  static const auto* schema = new Schema<W>(
      Schema<W>({
          Setting<W, std::string>("kafka_brokers", "Bootstrap servers.", &W::brokers),
          Setting<W, std::string>("kafka_properties", "Extra properties.",
                                  &W::properties_text),
          Setting<W, int>("max_batch", "Events at most.", &W::max_batch,
                          InRange(1, 100000)),
          Setting<W, absl::Duration>("batch_wait", "Wait for more.", &W::batch_wait),
          Setting<W, absl::Duration>("pg_keepalives_idle", "Idle.", &W::keepalives_idle),
          Setting<W, absl::Duration>("pg_keepalives_interval", "Interval.",
                                     &W::keepalives_interval),
          Setting<W, int>("pg_keepalives_count", "Probes.", &W::keepalives_count),
          Setting<W, int>("metrics_port", "Port of /metrics.", &W::metrics_port),
          Setting<W, bool>("precheck", "Pre-check.", &W::precheck),
      })
          .Defaults([](W& w) { w.metrics_port = 9465; }));
  return *schema;
}

// The doc's shapes as docs/operations.md writes them: backticks, (empty),
// several flags in one row, an environment column, a default cell for
// several binaries, and a code fence whose table is not read.
constexpr absl::string_view kGoodDoc = R"(## Configuration

### coupon-issuer-worker

| flag | default | meaning |
|---|---|---|
| `--kafka_brokers` | `127.0.0.1:9092` | bootstrap servers |
| `--kafka_properties` | (empty) | extra librdkafka properties |
| `--max_batch` | 500 | events at most; a \| in a cell |
| `--batch_wait` | 5ms | after the first event, how long to wait |
| `--pg_keepalives_idle`, `--pg_keepalives_interval`, `--pg_keepalives_count` | 10s, 2s, 3 | TCP keepalives |
| `--precheck` | `true` | pre-check |

```sh
# not a heading
| flag | default | meaning |
|---|---|---|
| `--in_a_fence` | 1 | not read |
```

### Metrics

| flag | environment | binary: default | meaning |
|---|---|---|---|
| `--metrics_port` | `METRICS_PORT` | gateway: 9464, worker: 9465, scheduler: 9466 | port of /metrics |
| `--max_connection_age` | `MAX_CONNECTION_AGE` | gateway: 5m | the gateway's only |

## Metrics list

| metric | type | meaning |
|---|---|---|
| `coupon_worker_batch_events` | histogram | not a flag table |
)";

DocTableOptions ForWorker() {
  DocTableOptions options;
  options.binary = "worker";
  return options;
}

std::string Problems(absl::string_view doc, const DocTableOptions& options = ForWorker()) {
  absl::Status s = CheckDocTable(WorkerSchema(), doc, options);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition));
  return std::string(s.message());
}

std::string Replace(absl::string_view doc, absl::string_view from, absl::string_view to) {
  std::string out(doc);
  const size_t at = out.find(std::string(from));
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) out.replace(at, from.size(), std::string(to));
  return out;
}

TEST(DocTable, AMatchingDocPasses) {
  EXPECT_THAT(CheckDocTable(WorkerSchema(), kGoodDoc, ForWorker()), IsOk());
}

TEST(DocTable, TheGeneratedTableMatchesItsSchema) {
  EXPECT_THAT(CheckDocTable(WorkerSchema(), service::MarkdownTable(WorkerSchema())),
              IsOk());
}

TEST(DocTable, AFlagMissingFromTheDocFailsWithTheRowToAdd) {
  const std::string doc =
      Replace(kGoodDoc, "| `--batch_wait` | 5ms | after the first event, how long to wait |\n",
              "");
  EXPECT_EQ(Problems(doc),
            "the doc's flag tables and the binary's settings differ:\n"
            "- --batch_wait: the binary has it, the doc does not; its row: "
            "| `--batch_wait` | 5ms | Wait for more. |");
}

TEST(DocTable, ADocRowNamingNoFlagOfTheBinaryFails) {
  const std::string doc = Replace(kGoodDoc, "| `--precheck` | `true` | pre-check |",
                                  "| `--precheck` | `true` | pre-check |\n"
                                  "| `--group_id` | `coupon-issuer` | consumer group |\n"
                                  "| consumer group | `x` | no flag in this row |");
  EXPECT_THAT(Problems(doc),
              AllOf(HasSubstr("line 13 (### coupon-issuer-worker): the doc lists "
                              "--group_id, the binary has no such flag"),
                    HasSubstr("line 14 (### coupon-issuer-worker): a row naming no "
                              "flag: \"consumer group\"")));
}

TEST(DocTable, DefaultsThatDifferFail) {
  const std::string doc = Replace(kGoodDoc, "| 500 |", "| 1000 |");
  EXPECT_EQ(Problems(doc),
            "the doc's flag tables and the binary's settings differ:\n"
            "- line 9 (### coupon-issuer-worker): --max_batch: the doc's default is "
            "\"1000\", the binary's \"500\"");
  // In a row of several flags, and in a cell of several binaries.
  EXPECT_THAT(Problems(Replace(kGoodDoc, "10s, 2s, 3", "10s, 3s, 3")),
              HasSubstr("--pg_keepalives_interval: the doc's default is \"3s\", the "
                        "binary's \"2s\""));
  EXPECT_THAT(Problems(Replace(kGoodDoc, "worker: 9465", "worker: 9467")),
              HasSubstr("--metrics_port: the doc's default is \"9467\", the binary's "
                        "\"9465\""));
  // "as above" is no default.
  EXPECT_THAT(Problems(Replace(kGoodDoc, "`127.0.0.1:9092`", "as above")),
              HasSubstr("--kafka_brokers: the doc's default is \"as above\""));
}

TEST(DocTable, RowsOfSeveralFlagsNeedADefaultEach) {
  EXPECT_THAT(Problems(Replace(kGoodDoc, "10s, 2s, 3", "10s, 2s")),
              HasSubstr("line 11 (### coupon-issuer-worker): 3 flags but 2 defaults"));
}

TEST(DocTable, TheEnvironmentColumnMustNameTheTwin) {
  EXPECT_THAT(Problems(Replace(kGoodDoc, "`METRICS_PORT`", "`METRIC_PORT`")),
              HasSubstr("--metrics_port: the doc's environment variable is "
                        "\"`METRIC_PORT`\", the binary reads METRICS_PORT"));
}

TEST(DocTable, AFlagListedTwiceFails) {
  const std::string doc =
      Replace(kGoodDoc, "| `--precheck` | `true` | pre-check |",
              "| `--precheck` | `true` | pre-check |\n| `--max_batch` | 500 | again |");
  EXPECT_THAT(Problems(doc),
              HasSubstr("line 13 (### coupon-issuer-worker): --max_batch is listed again "
                        "(first at line 9 (### coupon-issuer-worker))"));
}

// docs/operations.md's --shutdown_grace row once stood after a paragraph,
// where markdown renders it as text.
TEST(DocTable, AFlagRowOutsideAnyTableFails) {
  const std::string doc =
      Replace(kGoodDoc, "| `--precheck` | `true` | pre-check |\n",
              "\nA paragraph between.\n| `--precheck` | `true` | pre-check |\n");
  EXPECT_THAT(Problems(doc),
              AllOf(HasSubstr("line 14 (### coupon-issuer-worker): a flag row outside any "
                              "table (--precheck): it renders as text"),
                    HasSubstr("--precheck: the binary has it, the doc does not")));
}

TEST(DocTable, ARowOfAnotherBinaryIsSkippedButOnlyWithALabel) {
  // Without naming the binary, a cell of several binaries' defaults is one
  // default, and --max_connection_age is no flag of this binary.
  EXPECT_THAT(Problems(kGoodDoc, DocTableOptions{}),
              AllOf(HasSubstr("--metrics_port: the doc's default is \"gateway: 9464, "
                              "worker: 9465, scheduler: 9466\""),
                    HasSubstr("the doc lists --max_connection_age, the binary has no "
                              "such flag")));
}

TEST(DocTable, NoFlagTableAtAll) {
  EXPECT_THAT(Problems("## Nothing here\n\nJust text.\n"),
              AllOf(HasSubstr("no flag table"),
                    HasSubstr("--kafka_brokers: the binary has it, the doc does not"),
                    HasSubstr("--precheck: the binary has it, the doc does not")));
}

TEST(MarkdownSection, EndsAtTheNextHeadingOfItsLevel) {
  absl::StatusOr<std::string> worker = MarkdownSection(kGoodDoc, "### coupon-issuer-worker");
  ASSERT_THAT(worker, IsOk());
  // The fence's "# not a heading" does not end it; "### Metrics" does.
  EXPECT_THAT(*worker, AllOf(HasSubstr("--pg_keepalives_count"), HasSubstr("--in_a_fence"),
                             Not(HasSubstr("--metrics_port"))));
  absl::StatusOr<std::string> configuration = MarkdownSection(kGoodDoc, "## Configuration");
  ASSERT_THAT(configuration, IsOk());
  EXPECT_THAT(*configuration,
              AllOf(HasSubstr("--metrics_port"), Not(HasSubstr("coupon_worker_batch_events"))));
  EXPECT_THAT(CheckDocTable(WorkerSchema(), *configuration, ForWorker()), IsOk());
  EXPECT_THAT(MarkdownSection(kGoodDoc, "### coupon-gateway"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("### coupon-gateway")));
}

TEST(MarkdownSection, SectionsJoinedCheckABinarySpreadOverSeveral) {
  absl::StatusOr<std::string> worker = MarkdownSection(kGoodDoc, "### coupon-issuer-worker");
  absl::StatusOr<std::string> metrics = MarkdownSection(kGoodDoc, "### Metrics");
  ASSERT_THAT(worker, IsOk());
  ASSERT_THAT(metrics, IsOk());
  EXPECT_THAT(CheckDocTable(WorkerSchema(), *worker, ForWorker()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("--metrics_port: the binary has it, the doc does not")));
  EXPECT_THAT(CheckDocTable(WorkerSchema(), absl::StrCat(*worker, "\n", *metrics), ForWorker()),
              IsOk());
}

}  // namespace
}  // namespace coupon::testing
