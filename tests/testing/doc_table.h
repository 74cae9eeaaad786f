#pragma once

// Whether a doc's flag tables say what a binary's settings are: the test
// issue 14 asks for, failing when docs/operations.md and a binary's flags
// differ. A binary's flags may be spread over several sections (the
// gateway's are); check the sections joined.
//
//   std::string doc = ...;  // docs/operations.md
//   auto section = MarkdownSection(doc, "### coupon-issuer-worker");
//   ASSERT_THAT(section, IsOk());
//   EXPECT_THAT(CheckDocTable(WorkerSchema(), *section), IsOk());
//
// A flag table is a markdown table whose first header cell is "flag". Its
// first column names flags (`--max_batch`; several in one row, comma-
// separated, take as many comma-separated defaults). The column headed
// "default" (or "... default", e.g. "binary: default") is compared with the
// binary's defaults: backticks and surrounding spaces do not count, and
// "(empty)" or "(empty: ...)" means the empty string. A column headed
// "environment" must name each flag's environment twin. Tables inside
// code fences are not read.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/service/settings.h"

namespace coupon::testing {

struct DocTableOptions {
  // This binary's label in a default cell that gives several binaries'
  // ("gateway: 9464, worker: 9465"). A row whose cell is labelled but not
  // for this binary is another binary's, and is skipped.
  std::string binary;
};

// The lines of `doc` from the heading line `heading` (as written, e.g.
// "### coupon-gateway") to the next heading of the same level or higher,
// headings in code fences aside. NOT_FOUND without that heading.
absl::StatusOr<std::string> MarkdownSection(absl::string_view doc,
                                            absl::string_view heading);

// OK when the flag tables in `markdown` list exactly `settings`, with their
// defaults. Otherwise FAILED_PRECONDITION listing every difference, one per
// line: flags the doc does not list (with the row MarkdownRow would write),
// doc rows naming no flag of the binary, defaults and environment names
// that differ, flags listed twice, and flag rows outside any table (a row
// not under a header renders as text).
absl::Status CheckDocTable(const std::vector<service::SettingInfo>& settings,
                           absl::string_view markdown,
                           const DocTableOptions& options = {});

template <typename C>
absl::Status CheckDocTable(const service::Schema<C>& schema,
                           absl::string_view markdown,
                           const DocTableOptions& options = {}) {
  return CheckDocTable(schema.Describe(), markdown, options);
}

}  // namespace coupon::testing
