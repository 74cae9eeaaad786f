#include "tests/testing/doc_table.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace coupon::testing {
namespace {

using service::SettingInfo;

bool IsFence(absl::string_view line) {
  return absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "```");
}

// The level of a heading line ("### x" is 3), 0 for any other line.
int HeadingLevel(absl::string_view line) {
  int level = 0;
  while (level < static_cast<int>(line.size()) && line[level] == '#') ++level;
  if (level == 0 || level == static_cast<int>(line.size()) || line[level] != ' ') {
    return 0;
  }
  return level;
}

bool IsTableLine(absl::string_view line) {
  return absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "|");
}

// The cells of "| a | b \| c |": {"a", "b | c"}.
std::vector<std::string> Cells(absl::string_view line) {
  line = absl::StripAsciiWhitespace(line);
  absl::ConsumePrefix(&line, "|");
  if (absl::EndsWith(line, "|") && !absl::EndsWith(line, "\\|")) {
    line.remove_suffix(1);
  }
  std::vector<std::string> cells;
  std::string cell;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
      cell += '|';
      ++i;
    } else if (line[i] == '|') {
      cells.emplace_back(absl::StripAsciiWhitespace(cell));
      cell.clear();
    } else {
      cell += line[i];
    }
  }
  cells.emplace_back(absl::StripAsciiWhitespace(cell));
  return cells;
}

// |---|:---:|
bool IsDelimiterRow(absl::string_view line) {
  if (!IsTableLine(line)) return false;
  for (const std::string& cell : Cells(line)) {
    absl::string_view c = cell;
    absl::ConsumePrefix(&c, ":");
    absl::ConsumeSuffix(&c, ":");
    if (c.empty() || c.find_first_not_of('-') != absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Every --name in a cell.
std::vector<std::string> FlagNames(absl::string_view cell) {
  std::vector<std::string> names;
  for (size_t pos = cell.find("--"); pos != absl::string_view::npos;
       pos = cell.find("--", pos + 2)) {
    size_t end = pos + 2;
    while (end < cell.size() &&
           (absl::ascii_islower(static_cast<unsigned char>(cell[end])) ||
            absl::ascii_isdigit(static_cast<unsigned char>(cell[end])) ||
            cell[end] == '_')) {
      ++end;
    }
    if (end > pos + 2) names.emplace_back(cell.substr(pos + 2, end - pos - 2));
  }
  return names;
}

// A cell split at the commas outside backticks and parentheses:
// "`a,b`, (empty, none), 5s" is {"`a,b`", "(empty, none)", "5s"}.
std::vector<std::string> SplitTopLevel(absl::string_view cell) {
  std::vector<std::string> parts;
  std::string part;
  bool in_code = false;
  int depth = 0;
  for (char c : cell) {
    if (c == '`') in_code = !in_code;
    if (!in_code && c == '(') ++depth;
    if (!in_code && c == ')' && depth > 0) --depth;
    if (c == ',' && !in_code && depth == 0) {
      parts.emplace_back(absl::StripAsciiWhitespace(part));
      part.clear();
    } else {
      part += c;
    }
  }
  parts.emplace_back(absl::StripAsciiWhitespace(part));
  return parts;
}

// "gateway: 9464" is {"gateway", "9464"}; a part with no such label, none.
std::optional<std::pair<std::string, std::string>> Labelled(absl::string_view part) {
  const size_t colon = part.find(": ");
  if (colon == absl::string_view::npos || colon == 0) return std::nullopt;
  const absl::string_view label = part.substr(0, colon);
  for (char c : label) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return std::nullopt;
    }
  }
  return std::make_pair(std::string(label),
                        std::string(absl::StripAsciiWhitespace(part.substr(colon + 2))));
}

// A default as the doc writes it, as the binary would: `x` is x, and
// (empty) or (empty: plain text) is "".
std::string Normalize(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (absl::StartsWith(text, "(empty")) return "";
  if (text.size() >= 2 && text.front() == '`' && text.back() == '`' &&
      text.substr(1, text.size() - 2).find('`') == absl::string_view::npos) {
    text = text.substr(1, text.size() - 2);
  }
  return std::string(absl::StripAsciiWhitespace(text));
}

// One difference, with where it is.
std::string Where(int line, absl::string_view heading) {
  return heading.empty() ? absl::StrCat("line ", line)
                         : absl::StrCat("line ", line, " (", heading, ")");
}

// Reads the flag tables of a text and collects the differences.
class Checker {
 public:
  Checker(const std::vector<SettingInfo>& settings, const DocTableOptions& options)
      : options_(options), order_(settings) {
    for (const SettingInfo& s : order_) by_name_.emplace(s.name, &s);
  }

  void Read(absl::string_view markdown) {
    const std::vector<absl::string_view> lines = absl::StrSplit(markdown, '\n');
    bool in_fence = false;
    bool any_table = false;
    std::string heading;
    for (size_t i = 0; i < lines.size(); ++i) {
      const absl::string_view line = lines[i];
      const int number = static_cast<int>(i) + 1;
      if (IsFence(line)) {
        in_fence = !in_fence;
        continue;
      }
      if (in_fence) continue;
      if (HeadingLevel(line) > 0) {
        heading = std::string(absl::StripAsciiWhitespace(line));
        continue;
      }
      if (!IsTableLine(line)) continue;
      if (i + 1 < lines.size() && IsDelimiterRow(lines[i + 1])) {
        const std::vector<std::string> header = Cells(line);
        const bool flags = !header.empty() && absl::AsciiStrToLower(header[0]) == "flag";
        size_t j = i + 2;
        for (; j < lines.size() && IsTableLine(lines[j]); ++j) {
          if (flags) Row(header, Cells(lines[j]), static_cast<int>(j) + 1, heading);
        }
        any_table = any_table || flags;
        i = j - 1;
        continue;
      }
      if (!FlagNames(line).empty()) {
        problems_.push_back(absl::StrCat(
            Where(number, heading), ": a flag row outside any table (",
            absl::StrJoin(FlagNames(line), ", ",
                          [](std::string* out, const std::string& n) {
                            absl::StrAppend(out, "--", n);
                          }),
            "): it renders as text; move it into its table"));
      }
    }
    if (!any_table) {
      problems_.push_back("no flag table (a table whose first column is \"flag\")");
    }
  }

  absl::Status Result() {
    for (const SettingInfo& s : order_) {
      if (seen_.count(s.name) == 0) {
        problems_.push_back(absl::StrCat("--", s.name,
                                         ": the binary has it, the doc does not; its row: ",
                                         service::MarkdownRow(s)));
      }
    }
    if (problems_.empty()) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        "the doc's flag tables and the binary's settings differ:\n- ",
        absl::StrJoin(problems_, "\n- ")));
  }

 private:
  static std::optional<size_t> Column(const std::vector<std::string>& header,
                                      bool (*match)(absl::string_view)) {
    for (size_t c = 1; c < header.size(); ++c) {
      if (match(absl::AsciiStrToLower(header[c]))) return c;
    }
    return std::nullopt;
  }

  void Row(const std::vector<std::string>& header,
           const std::vector<std::string>& cells, int line,
           const std::string& heading) {
    const std::string where = Where(line, heading);
    const std::vector<std::string> names = FlagNames(cells[0]);
    if (names.empty()) {
      problems_.push_back(absl::StrCat(where, ": a row naming no flag: \"", cells[0], "\""));
      return;
    }
    const auto default_col = Column(header, [](absl::string_view h) {
      return h == "default" || absl::EndsWith(h, " default");
    });
    const auto env_col =
        Column(header, [](absl::string_view h) { return h == "environment"; });
    auto cell = [&cells](std::optional<size_t> col) -> std::optional<std::string> {
      if (!col || *col >= cells.size()) return std::nullopt;
      return cells[*col];
    };

    std::vector<std::string> defaults;
    if (std::optional<std::string> d = cell(default_col)) {
      std::vector<std::string> parts = SplitTopLevel(*d);
      if (names.size() == 1 && !options_.binary.empty() &&
          std::all_of(parts.begin(), parts.end(),
                      [](const std::string& p) { return Labelled(p).has_value(); })) {
        std::optional<std::string> ours;
        for (const std::string& p : parts) {
          if (Labelled(p)->first == options_.binary) ours = Labelled(p)->second;
        }
        if (!ours) return;  // another binary's row
        defaults = {*ours};
      } else if (names.size() == 1) {
        defaults = {*d};
      } else if (parts.size() == names.size()) {
        defaults = parts;
      } else {
        problems_.push_back(absl::StrCat(where, ": ", names.size(), " flags but ",
                                         parts.size(), " defaults"));
      }
    }
    std::vector<std::string> envs;
    if (std::optional<std::string> e = cell(env_col)) {
      envs = SplitTopLevel(*e);
      if (envs.size() != names.size()) {
        problems_.push_back(absl::StrCat(where, ": ", names.size(), " flags but ",
                                         envs.size(), " environment variables"));
        envs.clear();
      }
    }

    for (size_t k = 0; k < names.size(); ++k) {
      const std::string& name = names[k];
      auto it = by_name_.find(name);
      if (it == by_name_.end()) {
        problems_.push_back(absl::StrCat(where, ": the doc lists --", name,
                                         ", the binary has no such flag"));
        continue;
      }
      const SettingInfo& info = *it->second;
      if (auto [first, inserted] = seen_.emplace(name, where); !inserted) {
        problems_.push_back(absl::StrCat(where, ": --", name, " is listed again (first at ",
                                         first->second, ")"));
        continue;
      }
      if (k < defaults.size() && Normalize(defaults[k]) != info.default_value) {
        problems_.push_back(absl::StrCat(where, ": --", name, ": the doc's default is \"",
                                         defaults[k], "\", the binary's \"",
                                         info.default_value, "\""));
      }
      if (k < envs.size() && Normalize(envs[k]) != info.env) {
        problems_.push_back(absl::StrCat(where, ": --", name,
                                         ": the doc's environment variable is \"", envs[k],
                                         "\", the binary reads ", info.env));
      }
    }
  }

  const DocTableOptions& options_;
  std::vector<SettingInfo> order_;
  std::map<std::string, const SettingInfo*> by_name_;
  std::map<std::string, std::string> seen_;  // name -> where
  std::vector<std::string> problems_;
};

}  // namespace

absl::StatusOr<std::string> MarkdownSection(absl::string_view doc,
                                            absl::string_view heading) {
  const std::vector<absl::string_view> lines = absl::StrSplit(doc, '\n');
  const absl::string_view wanted = absl::StripAsciiWhitespace(heading);
  const int level = HeadingLevel(wanted);
  bool in_fence = false;
  std::optional<size_t> begin;
  size_t end = lines.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (IsFence(lines[i])) in_fence = !in_fence;
    if (in_fence) continue;
    const int this_level = HeadingLevel(lines[i]);
    if (!begin && this_level > 0 && absl::StripAsciiWhitespace(lines[i]) == wanted) {
      begin = i;
    } else if (begin && this_level > 0 && this_level <= level) {
      end = i;
      break;
    }
  }
  if (!begin || level == 0) {
    return absl::NotFoundError(absl::StrCat("no heading \"", heading, "\" in the doc"));
  }
  return absl::StrJoin(lines.begin() + *begin, lines.begin() + end, "\n");
}

absl::Status CheckDocTable(const std::vector<SettingInfo>& settings,
                           absl::string_view markdown,
                           const DocTableOptions& options) {
  Checker checker(settings, options);
  checker.Read(markdown);
  return checker.Result();
}

}  // namespace coupon::testing
