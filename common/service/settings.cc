#include "common/service/settings.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"

extern char** environ;

namespace coupon::service {
namespace {

absl::Status Invalid(absl::string_view why) {
  return absl::InvalidArgumentError(why);
}

// Digits with an optional sign: a number, if too large for its type.
bool IsIntegerText(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    text.remove_prefix(1);
  }
  return !text.empty() &&
         std::all_of(text.begin(), text.end(),
                     [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); });
}

template <typename T>
absl::Status ParseInteger(absl::string_view text, T* out, absl::string_view type) {
  if (absl::SimpleAtoi(text, out)) return absl::OkStatus();
  if (IsIntegerText(text)) {
    return Invalid(absl::StrCat("out of range for ", type, " (",
                                std::numeric_limits<T>::min(), "..",
                                std::numeric_limits<T>::max(), ")"));
  }
  return Invalid("not an integer");
}

// "=\"text\"" as an error may quote a value: not a secret's, not a map's.
std::string Quoted(const internal::Target& t, absl::string_view text) {
  if (t.info->secret) return absl::StrCat("=\"", kRedacted, "\"");
  if (!t.echo) return "";
  return absl::StrCat("=\"", text, "\"");
}

// --helpfull as absl spelled it: tests/chaos/lib.sh asks a binary which flags
// it has with it.
bool IsHelp(absl::string_view arg) {
  absl::ConsumePrefix(&arg, "-");
  return arg == "-help" || arg == "help" || arg == "-helpfull" || arg == "helpfull";
}

// Breaks `text` into lines of at most `width` characters after `indent`.
std::string Wrap(absl::string_view text, size_t width, absl::string_view indent) {
  std::string out;
  size_t line = 0;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (line > 0 && line + 1 + word.size() > width) {
      absl::StrAppend(&out, "\n");
      line = 0;
    }
    absl::StrAppend(&out, line == 0 ? indent : " ", word);
    line += (line == 0 ? indent.size() : 1) + word.size();
  }
  return out;
}

bool IsText(const SettingInfo& info) {
  return info.type == TypeName<std::string>() ||
         info.type == TypeName<std::vector<std::string>>() ||
         info.type == TypeName<std::map<std::string, std::string>>();
}

std::string EscapeCell(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"|", "\\|"}});
}

}  // namespace

// ---------------------------------------------------------------- values

absl::Status ParseValue(absl::string_view text, std::string* out) {
  *out = std::string(text);
  return absl::OkStatus();
}

absl::Status ParseValue(absl::string_view text, bool* out) {
  if (absl::SimpleAtob(text, out)) return absl::OkStatus();
  return Invalid("not a bool (true or false)");
}

absl::Status ParseValue(absl::string_view text, int* out) {
  return ParseInteger(text, out, "int");
}

absl::Status ParseValue(absl::string_view text, int64_t* out) {
  return ParseInteger(text, out, "int64");
}

absl::Status ParseValue(absl::string_view text, double* out) {
  if (absl::SimpleAtod(text, out)) return absl::OkStatus();
  return Invalid("not a number");
}

absl::Status ParseValue(absl::string_view text, absl::Duration* out) {
  if (absl::ParseDuration(absl::StripAsciiWhitespace(text), out)) {
    return absl::OkStatus();
  }
  return Invalid("not a duration (e.g. 10s, 500ms, 1h30m, inf)");
}

absl::Status ParseValue(absl::string_view text, std::vector<std::string>* out) {
  out->clear();
  if (text.empty()) return absl::OkStatus();
  *out = absl::StrSplit(text, ',');
  return absl::OkStatus();
}

absl::Status ParseValue(absl::string_view text,
                        std::map<std::string, std::string>* out) {
  out->clear();
  int n = 0;
  std::string previous_key;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    ++n;
    const size_t eq = item.find('=');
    const absl::string_view key =
        absl::StripAsciiWhitespace(item.substr(0, eq));
    if (eq == absl::string_view::npos || key.empty()) {
      // Named by position, never by its text: it may be the tail of a
      // secret value that held a ',' (sasl.password=a,b).
      return Invalid(absl::StrCat(
          "expected key=value, item ", n,
          previous_key.empty() ? "" : absl::StrCat(" (after ", previous_key, "=...)"),
          " is not; a value cannot contain ','"));
    }
    (*out)[std::string(key)] =
        std::string(absl::StripAsciiWhitespace(item.substr(eq + 1)));
    previous_key = std::string(key);
  }
  return absl::OkStatus();
}

std::string FormatValue(const std::string& v) { return v; }
std::string FormatValue(bool v) { return v ? "true" : "false"; }
std::string FormatValue(int v) { return absl::StrCat(v); }
std::string FormatValue(int64_t v) { return absl::StrCat(v); }
std::string FormatValue(double v) { return absl::StrCat(v); }
std::string FormatValue(absl::Duration v) { return absl::FormatDuration(v); }
std::string FormatValue(const std::vector<std::string>& v) {
  return absl::StrJoin(v, ",");
}
std::string FormatValue(const std::map<std::string, std::string>& v) {
  return RedactProperties(v);
}

// ------------------------------------------------------------ validators

Validator<std::string> OneOf(std::vector<std::string> choices) {
  CHECK(!choices.empty());
  std::string listed = choices.back();
  if (choices.size() > 1) {
    listed = absl::StrCat(
        absl::StrJoin(choices.begin(), choices.end() - 1, ", "), " or ", listed);
  }
  return [choices = std::move(choices),
          listed = std::move(listed)](const std::string& v) -> absl::Status {
    for (const std::string& c : choices) {
      if (v == c) return absl::OkStatus();
    }
    return Invalid(absl::StrCat("must be ", listed, ", got ", ShowValue(v)));
  };
}

absl::Status Bad(absl::string_view flag, absl::string_view why) {
  return Invalid(absl::StrCat("--", flag, ": ", why));
}

// ------------------------------------------------------------- settings

Env ProcessEnvironment() {
  Env env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const absl::string_view entry(*e);
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

std::string MarkdownRow(const SettingInfo& info) {
  std::string value;
  if (info.default_value.empty()) {
    value = "(empty)";
  } else if (IsText(info) || info.secret) {
    value = absl::StrCat("`", info.default_value, "`");
  } else {
    value = info.default_value;
  }
  return absl::StrCat("| `--", info.name, "` | ", EscapeCell(value), " | ",
                      EscapeCell(info.description), " |");
}

std::string MarkdownTable(const std::vector<SettingInfo>& settings) {
  std::string out = "| flag | default | meaning |\n|---|---|---|\n";
  for (const SettingInfo& info : settings) {
    absl::StrAppend(&out, MarkdownRow(info), "\n");
  }
  return out;
}

namespace internal {

void CheckNames(const std::vector<std::string>& names) {
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    CHECK(!name.empty() && absl::ascii_islower(static_cast<unsigned char>(name[0])))
        << "setting \"" << name << "\": a name is [a-z][a-z0-9_]*";
    for (char c : name) {
      CHECK(absl::ascii_islower(static_cast<unsigned char>(c)) ||
            absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_')
          << "setting \"" << name << "\": a name is [a-z][a-z0-9_]*";
    }
    CHECK(name != "help") << "--help is the schema's own";
    for (size_t j = 0; j < i; ++j) {
      CHECK(names[j] != name) << "setting \"" << name << "\" is defined twice";
    }
  }
}

bool IsSecretName(absl::string_view name) { return IsSecretKey(name); }

std::string EnvName(absl::string_view name) {
  return absl::AsciiStrToUpper(name);
}

absl::Status Apply(const std::vector<Target>& targets,
                   const std::vector<std::string>& args, const Env& env,
                   bool* help) {
  *help = false;
  for (const std::string& arg : args) {
    if (IsHelp(arg)) {
      *help = true;
      return absl::OkStatus();
    }
  }
  for (const Target& t : targets) {
    auto it = env.find(t.info->env);
    if (it == env.end()) continue;
    if (absl::Status s = t.parse(it->second); !s.ok()) {
      return Invalid(absl::StrCat("environment variable ", t.info->env,
                                  Quoted(t, it->second), ": ", s.message()));
    }
  }
  auto find = [&targets](absl::string_view name) -> const Target* {
    for (const Target& t : targets) {
      if (t.info->name == name) return &t;
    }
    return nullptr;
  };
  // A positional argument right after a secret's flag may be its value,
  // split off by a stray space (--redis_password= hunter2): not echoed.
  bool after_secret = false;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    const bool is_flag = arg.size() > 1 && arg[0] == '-' && arg != "--";
    if (!is_flag) {
      if (arg == "--") {
        if (i + 1 == args.size()) break;
        arg = args[++i];
      }
      return Invalid(absl::StrCat(
          "unexpected argument ",
          after_secret ? absl::StrCat(i + 1, " (after a secret's flag)")
                       : absl::StrCat("\"", arg, "\""),
          ": flags are written --name=value (--help lists them)"));
    }
    absl::ConsumePrefix(&arg, "-");
    absl::ConsumePrefix(&arg, "-");
    const size_t eq = arg.find('=');
    const bool has_value = eq != absl::string_view::npos;
    const absl::string_view name = arg.substr(0, eq);
    absl::string_view value = has_value ? arg.substr(eq + 1) : "";

    const Target* t = find(name);
    if (t == nullptr && absl::StartsWith(name, "no")) {
      const Target* negated = find(name.substr(2));
      if (negated != nullptr && negated->is_bool && !has_value) {
        t = negated;
        value = "false";
      } else if (negated != nullptr) {
        return Invalid(absl::StrCat(
            "--", name, ": no such flag",
            negated->is_bool ? absl::StrCat(" (write --", negated->info->name, "=false)")
                             : absl::StrCat(" (--", negated->info->name, " is not a bool)")));
      }
    } else if (t != nullptr && !has_value) {
      if (t->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Invalid(absl::StrCat("--", name, ": needs a value (--", name, "=...)"));
      }
    }
    if (t == nullptr) {
      return Invalid(absl::StrCat("--", name, ": no such flag (--help lists them)"));
    }
    after_secret = t->info->secret;
    if (absl::Status s = t->parse(value); !s.ok()) {
      return Invalid(absl::StrCat("--", t->info->name, Quoted(*t, value), ": ",
                                  s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status Named(const SettingInfo& info, const absl::Status& why,
                   const std::string& value_text) {
  std::string message(why.message());
  if (info.secret && !value_text.empty()) {
    message = absl::StrReplaceAll(message, {{value_text, kRedacted}});
  }
  return absl::Status(why.code(), absl::StrCat("--", info.name, ": ", message));
}

std::string HelpText(absl::string_view usage,
                     const std::vector<SettingInfo>& settings) {
  constexpr size_t kWidth = 80;
  std::string out = Wrap(usage, kWidth, "");
  absl::StrAppend(
      &out, "\n\n",
      Wrap("Flags. Each can also be set by the environment variable in "
           "brackets; the command line wins over the environment, which wins "
           "over the default.",
           kWidth, ""),
      "\n");
  for (const SettingInfo& info : settings) {
    const bool is_bool = info.type == TypeName<bool>();
    std::string shown;
    if (info.secret && !info.default_value.empty()) {
      shown = absl::StrCat(kRedacted, " (secret)");
    } else if (IsText(info)) {
      shown = absl::StrCat("\"", info.default_value, "\"");
    } else {
      shown = info.default_value;
    }
    // "--name " with its space: tests/chaos/lib.sh's has_flag greps for it.
    absl::StrAppend(
        &out, "\n  --", info.name,
        is_bool ? absl::StrCat(" | --no", info.name) : absl::StrCat(" <", info.type, ">"),
        "  [", info.env, "]\n", Wrap(info.description, kWidth, "      "),
        "\n      default: ", shown, "\n");
  }
  absl::StrAppend(&out, "\n  --help\n      Prints this and exits.\n");
  return out;
}

void ExitWithError(const absl::Status& status) {
  std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
  std::exit(2);
}

void ExitWithHelp(const std::string& text) {
  std::fputs(text.c_str(), stdout);
  std::exit(0);
}

}  // namespace internal
}  // namespace coupon::service
