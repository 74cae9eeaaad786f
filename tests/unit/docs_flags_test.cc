// docs/operations.md's flag tables say exactly what each binary's settings
// are, defaults included (issue 14): a flag added, renamed or given another
// default without its row, or a row left behind, fails here.

#include <fstream>
#include <sstream>

#include "gateway/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "issuer-worker/config.h"
#include "redis-issuer/outbox/outbox_scheduler.h"
#include "tests/testing/doc_table.h"
#include "tests/testing/status_matchers.h"

namespace coupon::testing {
namespace {

std::string Operations() {
  std::ifstream in(COUPON_SOURCE_DIR "/docs/operations.md");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The sections of docs/operations.md that hold one binary's flag tables.
std::string Sections(const std::vector<std::string>& headings) {
  const std::string doc = Operations();
  std::string joined;
  for (const std::string& heading : headings) {
    absl::StatusOr<std::string> section = MarkdownSection(doc, heading);
    EXPECT_TRUE(section.ok()) << heading << ": " << section.status();
    if (section.ok()) joined += *section + "\n";
  }
  return joined;
}

TEST(DocsFlags, TheGatewaysFlagsAreTheDocsTables) {
  EXPECT_THAT(
      CheckDocTable(
          gateway::GatewaySchema(),
          Sections({"### coupon-gateway",
                    "### Metrics, probes and connection age",
                    "### coupon-gateway with `--issuer=redis`",
                    "### TLS on the gRPC port", "### Who may create coupons",
                    "### The per-user limit on IssueCoupon"}),
          {"gateway"}),
      IsOk());
}

TEST(DocsFlags, TheWorkersFlagsAreTheDocsTables) {
  EXPECT_THAT(
      CheckDocTable(worker::WorkerSchema(),
                    Sections({"### coupon-issuer-worker",
                              "### Metrics, probes and connection age"}),
                    {"worker"}),
      IsOk());
}

TEST(DocsFlags, TheSchedulersFlagsAreTheDocsTables) {
  EXPECT_THAT(
      CheckDocTable(outbox::OutboxSchema(),
                    Sections({"### coupon-outbox-scheduler",
                              "### Metrics, probes and connection age"}),
                    {"scheduler"}),
      IsOk());
}

}  // namespace
}  // namespace coupon::testing
