#pragma once

// A strict reader of the Prometheus text exposition format 0.0.4, for tests:
// every line's syntax is checked (a gtest failure names the line), and so are
// the rules a scraper relies on: HELP and TYPE once per family and before its
// samples, a family's samples together, no sample twice, and for histograms
// cumulative buckets in increasing `le` order ending in +Inf, with _count
// equal to the +Inf bucket and a _sum.

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace coupon::testing {

using LabelSet = std::map<std::string, std::string>;

struct ParsedSample {
  std::string name;
  LabelSet labels;
  double value = 0;
};

struct ParsedFamily {
  std::string name;
  std::string help;  // unescaped
  std::string type;
  std::vector<ParsedSample> samples;
};

namespace exposition_internal {

inline bool IsMetricName(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!(std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
          (i > 0 && std::isdigit(static_cast<unsigned char>(c))))) {
      return false;
    }
  }
  return true;
}

inline bool IsLabelName(const std::string& s) {
  return IsMetricName(s) && s.find(':') == std::string::npos;
}

inline std::optional<double> ParseValue(const std::string& s) {
  if (s == "+Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  if (s == "NaN") return std::nan("");
  double v = 0;
  if (s.empty() || !absl::SimpleAtod(s, &v) || std::isinf(v) || std::isnan(v)) {
    return std::nullopt;
  }
  return v;
}

// Unescapes `s` allowing only the escapes in `allowed` (a subset of \ " n).
inline std::optional<std::string> Unescape(const std::string& s,
                                           const std::string& allowed) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (i + 1 == s.size() || allowed.find(s[i + 1]) == std::string::npos) {
      return std::nullopt;
    }
    out += s[i + 1] == 'n' ? '\n' : s[i + 1];
    ++i;
  }
  return out;
}

// name{a="x",b="y"} value [timestamp]
inline std::optional<ParsedSample> ParseSampleLine(const std::string& line,
                                                   std::string* why) {
  ParsedSample s;
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  s.name = line.substr(0, i);
  if (!IsMetricName(s.name)) {
    *why = "bad metric name";
    return std::nullopt;
  }
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      const size_t eq = line.find('=', i);
      if (eq == std::string::npos) {
        *why = "label without =";
        return std::nullopt;
      }
      const std::string label = line.substr(i, eq - i);
      if (!IsLabelName(label) || absl::StartsWith(label, "__")) {
        *why = absl::StrCat("bad label name \"", label, "\"");
        return std::nullopt;
      }
      if (eq + 1 >= line.size() || line[eq + 1] != '"') {
        *why = "label value not quoted";
        return std::nullopt;
      }
      size_t j = eq + 2;
      std::string raw;
      while (j < line.size() && line[j] != '"') {
        if (line[j] == '\\' && j + 1 < line.size()) raw += line[j++];
        raw += line[j++];
      }
      if (j >= line.size()) {
        *why = "unterminated label value";
        return std::nullopt;
      }
      std::optional<std::string> value = Unescape(raw, "\\\"n");
      if (!value) {
        *why = "bad escape in label value";
        return std::nullopt;
      }
      if (!s.labels.emplace(label, *value).second) {
        *why = absl::StrCat("label ", label, " twice");
        return std::nullopt;
      }
      i = j + 1;
      if (i < line.size() && line[i] == ',') {
        ++i;
      } else if (i >= line.size() || line[i] != '}') {
        *why = "expected , or } after a label";
        return std::nullopt;
      }
    }
  }
  if (i >= line.size() || line[i] != ' ') {
    *why = "no space before the value";
    return std::nullopt;
  }
  std::vector<std::string> rest = absl::StrSplit(line.substr(i + 1), ' ');
  if (rest.empty() || rest.size() > 2) {
    *why = "expected a value and an optional timestamp";
    return std::nullopt;
  }
  std::optional<double> v = ParseValue(rest[0]);
  int64_t ts = 0;
  if (!v || (rest.size() == 2 && !absl::SimpleAtoi(rest[1], &ts))) {
    *why = "bad value or timestamp";
    return std::nullopt;
  }
  s.value = *v;
  return s;
}

inline std::string Key(const ParsedSample& s) {
  std::string k = s.name;
  for (const auto& [n, v] : s.labels) absl::StrAppend(&k, "|", n, "=", v);
  return k;
}

inline void CheckHistogram(const ParsedFamily& f) {
  struct Series {
    std::vector<std::pair<double, double>> buckets;  // (le, count) in order
    std::optional<double> sum, count;
  };
  std::map<LabelSet, Series> series;
  for (const ParsedSample& s : f.samples) {
    LabelSet labels = s.labels;
    if (s.name == f.name + "_bucket") {
      auto le = labels.find("le");
      if (le == labels.end()) {
        ADD_FAILURE() << f.name << ": a bucket without le";
        continue;
      }
      std::optional<double> bound = ParseValue(le->second);
      if (!bound || std::isnan(*bound)) {
        ADD_FAILURE() << f.name << ": bad le \"" << le->second << "\"";
        continue;
      }
      labels.erase(le);
      series[labels].buckets.emplace_back(*bound, s.value);
    } else if (s.name == f.name + "_sum") {
      series[labels].sum = s.value;
    } else if (s.name == f.name + "_count") {
      series[labels].count = s.value;
    }
  }
  for (const auto& [labels, h] : series) {
    const std::string where = absl::StrCat(f.name, " series ", labels.size(), " labels");
    ASSERT_FALSE(h.buckets.empty()) << where << ": no buckets";
    EXPECT_TRUE(std::isinf(h.buckets.back().first) && h.buckets.back().first > 0)
        << where << ": the last bucket is not +Inf";
    for (size_t i = 1; i < h.buckets.size(); ++i) {
      EXPECT_LT(h.buckets[i - 1].first, h.buckets[i].first)
          << where << ": le not increasing";
      EXPECT_LE(h.buckets[i - 1].second, h.buckets[i].second)
          << where << ": buckets not cumulative at le=" << h.buckets[i].first;
    }
    ASSERT_TRUE(h.count.has_value()) << where << ": no _count";
    EXPECT_TRUE(h.sum.has_value()) << where << ": no _sum";
    EXPECT_EQ(*h.count, h.buckets.back().second) << where << ": _count != +Inf bucket";
  }
}

}  // namespace exposition_internal

// Parses `text`, adding a gtest failure for every rule it breaks.
inline std::vector<ParsedFamily> ParseExposition(const std::string& text) {
  using namespace exposition_internal;
  std::vector<ParsedFamily> families;
  std::map<std::string, size_t> index;  // family name -> position
  std::set<std::string> seen_samples;
  if (!text.empty() && text.back() != '\n') ADD_FAILURE() << "no final newline";
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  const std::set<std::string> types = {"counter", "gauge", "histogram", "summary",
                                       "untyped"};
  for (size_t n = 0; n < lines.size(); ++n) {
    const std::string& line = lines[n];
    const std::string at = absl::StrCat("line ", n + 1, " \"", line, "\": ");
    if (line.empty()) {
      ADD_FAILURE() << at << "empty line";
      continue;
    }
    if (line[0] == '#') {
      std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 3));
      if (parts.size() < 3 || parts[0] != "#" ||
          (parts[1] != "HELP" && parts[1] != "TYPE")) {
        ADD_FAILURE() << at << "not a HELP or TYPE line";
        continue;
      }
      const std::string& name = parts[2];
      if (!IsMetricName(name)) ADD_FAILURE() << at << "bad metric name";
      auto [it, fresh] = index.emplace(name, families.size());
      if (fresh) families.push_back({name, "", "", {}});
      ParsedFamily& f = families[it->second];
      if (it->second + 1 != families.size()) {
        ADD_FAILURE() << at << "metadata of " << name << " after another family";
      }
      if (!f.samples.empty()) ADD_FAILURE() << at << "metadata after samples";
      const std::string rest = parts.size() == 4 ? parts[3] : "";
      if (parts[1] == "HELP") {
        if (!f.help.empty()) ADD_FAILURE() << at << "HELP twice";
        std::optional<std::string> help = Unescape(rest, "\\n");
        if (!help) ADD_FAILURE() << at << "bad escape in HELP";
        f.help = help.value_or("");
        if (f.help.empty()) ADD_FAILURE() << at << "empty HELP";
      } else {
        if (!f.type.empty()) ADD_FAILURE() << at << "TYPE twice";
        if (!types.count(rest)) ADD_FAILURE() << at << "unknown type";
        f.type = rest;
      }
      continue;
    }
    std::string why;
    std::optional<ParsedSample> s = ParseSampleLine(line, &why);
    if (!s) {
      ADD_FAILURE() << at << why;
      continue;
    }
    if (families.empty()) {
      ADD_FAILURE() << at << "a sample before any TYPE";
      continue;
    }
    ParsedFamily& f = families.back();
    const bool histogram_part =
        f.type == "histogram" &&
        (s->name == f.name + "_bucket" || s->name == f.name + "_sum" ||
         s->name == f.name + "_count");
    if (s->name != f.name && !histogram_part) {
      ADD_FAILURE() << at << "not a sample of " << f.name << " (a family's "
                    << "samples must follow its TYPE)";
    }
    if (f.type == "histogram" && !histogram_part) {
      ADD_FAILURE() << at << "a histogram's samples are _bucket, _sum, _count";
    }
    if (s->name != f.name + "_bucket" && s->labels.count("le") > 0) {
      ADD_FAILURE() << at << "le outside a bucket";
    }
    if ((f.type == "counter" || f.type == "histogram") &&
        (s->value < 0 || std::isnan(s->value))) {
      ADD_FAILURE() << at << "a negative " << f.type << " value";
    }
    if (!seen_samples.insert(Key(*s)).second) ADD_FAILURE() << at << "sample twice";
    f.samples.push_back(std::move(*s));
  }
  for (const ParsedFamily& f : families) {
    if (f.type.empty()) ADD_FAILURE() << f.name << ": no TYPE";
    if (f.help.empty()) ADD_FAILURE() << f.name << ": no HELP";
    if (f.type == "counter" && !absl::EndsWith(f.name, "_total")) {
      ADD_FAILURE() << f.name << ": a counter's name should end in _total";
    }
    if (f.type == "histogram") CheckHistogram(f);
  }
  return families;
}

// The value of the sample `name` with exactly `labels`, if present.
inline std::optional<double> FindSample(const std::vector<ParsedFamily>& families,
                                        const std::string& name,
                                        const LabelSet& labels = {}) {
  for (const ParsedFamily& f : families) {
    for (const ParsedSample& s : f.samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
  }
  return std::nullopt;
}

// The sum of every sample `name` whose labels include `labels`.
inline double SumSamples(const std::vector<ParsedFamily>& families,
                         const std::string& name, const LabelSet& labels = {}) {
  double total = 0;
  for (const ParsedFamily& f : families) {
    for (const ParsedSample& s : f.samples) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        match = match && it != s.labels.end() && it->second == v;
      }
      if (match) total += s.value;
    }
  }
  return total;
}

}  // namespace coupon::testing
