#pragma once

// One typed settings table per binary, in the style of Redpanda's
// config/configuration.h: every setting has a name, a description, a type, a
// default and validators, and the command-line flags, their environment
// twins, --help and the docs' flag table all come from that one table.
//
// The settings live in a plain config struct `C`; use sites keep reading
// `config.max_batch`. A setting reaches its field through an accessor (a
// lambda or a member pointer), so nested fields work. Its default is what
// `C{}` holds, or what Schema::Defaults sets for the binary.
//
//   const service::Schema<WorkerConfig>& WorkerSchema() {
//     using W = WorkerConfig;
//     static const auto* schema = new service::Schema<W>(
//         service::Schema<W>({
//             service::Setting<W, int>(
//                 "max_batch", "Events decided in one transaction, at most.",
//                 &W::max_batch, service::InRange(1, 100000)),
//             service::Setting<W, absl::Duration>(
//                 "pg_lock_timeout", "The session's lock_timeout.",
//                 [](W& c) -> absl::Duration& { return c.pg_session.lock_timeout; },
//                 service::AtLeast(absl::Milliseconds(100))),
//             service::Setting<W, std::string>(
//                 "redis_password", "Redis AUTH password.", &W::redis_password)
//                 .Secret(),
//         })
//             .Defaults([](W& c) { c.metrics_port = 9465; })
//             .Check([](const W& c) -> absl::Status {
//               if (c.metrics_port == c.grpc_port) {
//                 return service::Bad("metrics_port", "is the gRPC port");
//               }
//               return absl::OkStatus();
//             }));
//     return *schema;
//   }
//
//   int main(int argc, char** argv) {
//     const WorkerConfig config =
//         service::ParseOrExit(WorkerSchema(), argc, argv, "coupon-issuer-worker: ...");
//
// Parsing: `--name=value`, `--name value`, and for bools also `--name` and
// `--noname` (a bool never takes the next argument: `--precheck false` is
// an error). One dash works as well as two. Each setting's environment
// twin is its name in upper case (max_batch <-> MAX_BATCH). The command line
// wins over the environment, which wins over the default; a value repeated
// on the command line, the last one wins. A value in the environment that
// does not parse is an error even when the command line sets the flag too.
// Unknown flags and positional arguments are errors. `--help` (or absl's
// `--helpfull`, which tests/chaos/lib.sh uses) asks for Help(): ParseOrExit
// prints it and exits 0.
//
// Errors name the flag or variable in the style of today's messages:
//   --max_batch: must be 1..100000, got 0
//   --max_batch="abc": not an integer
//   environment variable MAX_BATCH="abc": not an integer
//
// Secrets: a setting marked Secret(), or whose name IsSecretKey()
// (common/service/redact.h: *password*, *token*, ...), never has its value printed:
// not in a parse error, not in a validator's message, not as a default in
// --help or the docs table (an empty default is shown as empty: it tells
// nothing). A map's values are printed through RedactProperties, and a map's
// text is never echoed in a parse error (its bad item is named by position,
// as it may be the tail of a secret that held a ',').
//
// Threads: a Schema is immutable once built; build it once and parse once,
// at start, from main's thread. Validate() may be called from any thread.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/service/redact.h"

namespace coupon::service {

// ---------------------------------------------------------------- values

// Reads a value's text. The error is the reason alone ("not an integer");
// the caller names the flag or variable.
absl::Status ParseValue(absl::string_view text, std::string* out);
absl::Status ParseValue(absl::string_view text, bool* out);
absl::Status ParseValue(absl::string_view text, int* out);
absl::Status ParseValue(absl::string_view text, int64_t* out);
absl::Status ParseValue(absl::string_view text, double* out);
// absl's syntax: 10s, 500ms, 1h30m, 0, inf.
absl::Status ParseValue(absl::string_view text, absl::Duration* out);
// Comma-separated; "" is the empty list; "a,,b" keeps its empty item (a
// validator refuses it), as absl flags did.
absl::Status ParseValue(absl::string_view text, std::vector<std::string>* out);
// "k=v,k=v", spaces around keys and values trimmed, the later of a repeated
// key kept.
absl::Status ParseValue(absl::string_view text,
                        std::map<std::string, std::string>* out);

// A value's text, as ParseValue reads it (a map's secret values redacted).
std::string FormatValue(const std::string& v);
std::string FormatValue(bool v);
std::string FormatValue(int v);
std::string FormatValue(int64_t v);
std::string FormatValue(double v);
std::string FormatValue(absl::Duration v);
std::string FormatValue(const std::vector<std::string>& v);
std::string FormatValue(const std::map<std::string, std::string>& v);

// A value as a message quotes it: strings in double quotes, the rest as
// FormatValue writes them.
template <typename T>
std::string ShowValue(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return absl::StrCat("\"", v, "\"");
  } else {
    return FormatValue(v);
  }
}

// The types a setting may have, and their names in --help.
template <typename T>
constexpr const char* TypeName() {
  if constexpr (std::is_same_v<T, std::string>) return "string";
  else if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_same_v<T, int>) return "int";
  else if constexpr (std::is_same_v<T, int64_t>) return "int64";
  else if constexpr (std::is_same_v<T, double>) return "double";
  else if constexpr (std::is_same_v<T, absl::Duration>) return "duration";
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) return "list";
  else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) return "map";
  else static_assert(sizeof(T) == 0, "a setting is of a type ParseValue reads");
}

// ------------------------------------------------------------ validators

// A validator returns OK, or an error with the reason alone ("must be
// 1..100000, got 0"); the schema puts "--name: " in front. The ones below
// are generic lambdas, so one InRange serves int, int64_t and durations.
template <typename T>
using Validator = std::function<absl::Status(const T&)>;

// lo..hi, both included: "must be 1..1000, got 0". `note` follows the range
// as written: InRange(0, 65535, " (0: off)") says "must be 0..65535 (0: off),
// got 70000".
template <typename B>
auto InRange(B lo, B hi, std::string note = "") {
  return [lo, hi, note = std::move(note)](const auto& v) -> absl::Status {
    if (lo <= v && v <= hi) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "must be ", FormatValue(lo), "..", FormatValue(hi), note, ", got ",
        ShowValue(v)));
  };
}

// "must be at least 1s, got 0"; `note` follows the bound.
template <typename B>
auto AtLeast(B lo, std::string note = "") {
  return [lo, note = std::move(note)](const auto& v) -> absl::Status {
    if (lo <= v) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "must be at least ", FormatValue(lo), note, ", got ", ShowValue(v)));
  };
}

// Above zero: "must be positive, got 0".
inline auto Positive() {
  return [](const auto& v) -> absl::Status {
    using T = std::decay_t<decltype(v)>;
    if (v > T{}) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("must be positive, got ", ShowValue(v)));
  };
}

// Zero or above: "must not be negative, got -1s".
inline auto NotNegative() {
  return [](const auto& v) -> absl::Status {
    using T = std::decay_t<decltype(v)>;
    if (!(v < T{})) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("must not be negative, got ", ShowValue(v)));
  };
}

// A string, list or map that must not be empty: "is empty".
inline auto NonEmpty() {
  return [](const auto& v) -> absl::Status {
    if (!v.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError("is empty");
  };
}

// A list without empty items: NoEmptyItems("name") says "has an empty name".
inline auto NoEmptyItems(std::string what = "item") {
  return [what = std::move(what)](const std::vector<std::string>& v) -> absl::Status {
    for (const std::string& item : v) {
      if (item.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("has an empty ", what));
      }
    }
    return absl::OkStatus();
  };
}

// One of a few strings: "must be kafka or redis, got \"x\"".
Validator<std::string> OneOf(std::vector<std::string> choices);

// Any rule in one line: "`why`, got <value>" when `ok(value)` is false.
// Require(IsFinite, "must be positive and finite").
template <typename Pred>
auto Require(Pred ok, std::string why) {
  return [ok = std::move(ok), why = std::move(why)](const auto& v) -> absl::Status {
    if (ok(v)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(why, ", got ", ShowValue(v)));
  };
}

// A duration that may be inf, and otherwise must pass `inner`:
// InfOr(InRange(absl::Seconds(1), absl::Hours(596), ", or inf for never")).
template <typename V>
auto InfOr(V inner) {
  return [inner = std::move(inner)](const absl::Duration& d) -> absl::Status {
    if (d == absl::InfiniteDuration()) return absl::OkStatus();
    return inner(d);
  };
}

// The error of a rule across settings, in the same style: Bad("metrics_port",
// "is the gRPC port of --listen") is "--metrics_port: is the gRPC port of
// --listen". Schema::Check's functions return it (or name several flags in
// a message of their own).
absl::Status Bad(absl::string_view flag, absl::string_view why);

// ------------------------------------------------------------- settings

// What a setting looks like without its type: for --help, the docs' table
// and the doc check.
struct SettingInfo {
  std::string name;         // max_batch
  std::string env;          // MAX_BATCH
  std::string type;         // TypeName<T>()
  std::string description;
  // The default as FormatValue writes it; kRedacted for a secret whose
  // default is not empty.
  std::string default_value;
  bool secret = false;
};

template <typename C>
class Schema;

// One setting of a config struct C, of type T (one of TypeName's).
template <typename C, typename T>
class Setting {
 public:
  // `field` is a member pointer (&C::max_batch) or a lambda
  // `[](C& c) -> T& { return c.tls.cert_file; }`; it only names the field.
  // Each validator is callable as absl::Status(const T&).
  template <typename Field, typename... V>
  Setting(std::string name, std::string description, Field field,
          V... validators)
      : name_(std::move(name)),
        description_(std::move(description)),
        field_(std::move(field)),
        validators_{Validator<T>(std::move(validators))...} {}

  // Its value is never printed.
  Setting Secret() && {
    secret_ = true;
    return std::move(*this);
  }

 private:
  friend class Schema<C>;
  std::string name_;
  std::string description_;
  std::function<T&(C&)> field_;
  std::vector<Validator<T>> validators_;
  bool secret_ = false;
};

// The environment a schema reads: name -> value.
using Env = std::map<std::string, std::string>;
// This process's environment.
Env ProcessEnvironment();

template <typename C>
struct Parsed {
  C config;
  // --help was given: nothing else was parsed or checked.
  bool help = false;
};

namespace internal {

// A setting with its type erased, bound to nothing.
template <typename C>
struct AnySetting {
  SettingInfo info;  // default_value left empty: it is the schema's to say
  bool is_bool = false;
  // Whether a parse error may quote the text (not for maps).
  bool echo = true;
  std::function<absl::Status(C&, absl::string_view)> parse;
  std::function<std::string(C&)> format;
  std::function<absl::Status(C&)> validate;
};

// A setting bound to the config being parsed.
struct Target {
  const SettingInfo* info;
  bool is_bool;
  bool echo;
  std::function<absl::Status(absl::string_view)> parse;
};

// CHECK-fails on a name that is not [a-z][a-z0-9_]*, "help", or repeated.
void CheckNames(const std::vector<std::string>& names);
bool IsSecretName(absl::string_view name);
// MAX_BATCH for max_batch.
std::string EnvName(absl::string_view name);
// The environment, then the arguments, applied to the targets in the order
// of their precedence. `*help` is set when --help is among the arguments,
// which are then not parsed.
absl::Status Apply(const std::vector<Target>& targets,
                   const std::vector<std::string>& args, const Env& env,
                   bool* help);
// The validator's message prefixed with "--name: ", and scrubbed of the
// value's text when the setting is secret.
absl::Status Named(const SettingInfo& info, const absl::Status& why,
                   const std::string& value_text);
std::string HelpText(absl::string_view usage,
                     const std::vector<SettingInfo>& settings);
[[noreturn]] void ExitWithError(const absl::Status& status);
[[noreturn]] void ExitWithHelp(const std::string& text);

}  // namespace internal

// The settings of one binary over its config struct C, and the rules
// across them. Immutable once built (see the header comment for threads).
template <typename C>
class Schema {
 public:
  // Entries are Setting<C, T> of any T.
  class Entry {
   public:
    template <typename T>
    Entry(Setting<C, T> s) : any_(Erase(std::move(s))) {}  // NOLINT: implicit

   private:
    friend class Schema;
    internal::AnySetting<C> any_;
  };

  Schema(std::initializer_list<Entry> entries) {
    std::vector<std::string> names;
    for (const Entry& e : entries) {
      settings_.push_back(e.any_);
      names.push_back(e.any_.info.name);
    }
    internal::CheckNames(names);
  }

  // The binary's defaults where they differ from C{}'s: the binaries open
  // /metrics on a port by default, a library user opens none unasked.
  Schema& Defaults(std::function<void(C&)> set) & {
    set(defaults_);
    return *this;
  }
  Schema&& Defaults(std::function<void(C&)> set) && {
    return std::move(Defaults(std::move(set)));
  }

  // A rule across settings, checked after every setting's validators, in
  // the order added. Its error is returned as it is: name the flags in it
  // (Bad()).
  Schema& Check(std::function<absl::Status(const C&)> check) & {
    checks_.push_back(std::move(check));
    return *this;
  }
  Schema&& Check(std::function<absl::Status(const C&)> check) && {
    return std::move(Check(std::move(check)));
  }

  // The defaults, overridden by `env`, then by `args` (argv without the
  // program name), then validated.
  absl::StatusOr<Parsed<C>> Parse(const std::vector<std::string>& args,
                                  const Env& env) const {
    Parsed<C> parsed{defaults_};
    std::vector<internal::Target> targets;
    targets.reserve(settings_.size());
    for (const internal::AnySetting<C>& s : settings_) {
      targets.push_back({&s.info, s.is_bool, s.echo,
                         [&s, &parsed](absl::string_view text) {
                           return s.parse(parsed.config, text);
                         }});
    }
    if (absl::Status applied = internal::Apply(targets, args, env, &parsed.help);
        !applied.ok()) {
      return applied;
    }
    if (!parsed.help) {
      if (absl::Status valid = Validate(parsed.config); !valid.ok()) return valid;
    }
    return parsed;
  }

  // Every setting's validators, then the checks; the first error. For
  // configs filled in code (tests) as much as parsed ones.
  absl::Status Validate(const C& config) const {
    // The accessors only name a field; nothing is written through them.
    C& c = const_cast<C&>(config);
    for (const internal::AnySetting<C>& s : settings_) {
      if (absl::Status why = s.validate(c); !why.ok()) {
        return internal::Named(s.info, why, s.format(c));
      }
    }
    for (const auto& check : checks_) {
      if (absl::Status s = check(config); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // The settings in order, with their defaults.
  std::vector<SettingInfo> Describe() const {
    C defaults = defaults_;
    std::vector<SettingInfo> out;
    for (const internal::AnySetting<C>& s : settings_) {
      SettingInfo info = s.info;
      info.default_value = s.format(defaults);
      if (info.secret && !info.default_value.empty()) {
        info.default_value = std::string(kRedacted);
      }
      out.push_back(std::move(info));
    }
    return out;
  }

  // `usage`, then every flag with its type, environment twin, default and
  // description.
  std::string Help(absl::string_view usage) const {
    return internal::HelpText(usage, Describe());
  }

 private:
  template <typename T>
  static internal::AnySetting<C> Erase(Setting<C, T> s) {
    internal::AnySetting<C> a;
    a.info.name = s.name_;
    a.info.env = internal::EnvName(s.name_);
    a.info.type = TypeName<T>();
    a.info.description = s.description_;
    a.info.secret = s.secret_ || internal::IsSecretName(s.name_);
    a.is_bool = std::is_same_v<T, bool>;
    a.echo = !std::is_same_v<T, std::map<std::string, std::string>>;
    auto field = s.field_;
    a.parse = [field](C& c, absl::string_view text) -> absl::Status {
      T value{};
      if (absl::Status s = ParseValue(text, &value); !s.ok()) return s;
      field(c) = std::move(value);
      return absl::OkStatus();
    };
    a.format = [field](C& c) { return FormatValue(field(c)); };
    a.validate = [field, validators = std::move(s.validators_)](C& c) {
      for (const Validator<T>& v : validators) {
        if (absl::Status s = v(field(c)); !s.ok()) return s;
      }
      return absl::OkStatus();
    };
    return a;
  }

  std::vector<internal::AnySetting<C>> settings_;
  std::vector<std::function<absl::Status(const C&)>> checks_;
  C defaults_{};
};

// One row of docs/operations.md's `| flag | default | meaning |` tables:
// | `--max_batch` | 500 | Events ... at most. |
// Text defaults in backticks, an empty default as "(empty)", '|' escaped.
std::string MarkdownRow(const SettingInfo& info);
// The table, its header included, one row per setting in order.
std::string MarkdownTable(const std::vector<SettingInfo>& settings);
template <typename C>
std::string MarkdownTable(const Schema<C>& schema) {
  return MarkdownTable(schema.Describe());
}

// The binaries' entry: the parsed, validated config. On an error prints its
// message to stderr and exits 2; after --help prints Help(usage) to stdout
// and exits 0.
template <typename C>
C ParseOrExit(const Schema<C>& schema, int argc, char** argv,
              absl::string_view usage) {
  const std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  absl::StatusOr<Parsed<C>> parsed = schema.Parse(args, ProcessEnvironment());
  if (!parsed.ok()) internal::ExitWithError(parsed.status());
  if (parsed->help) internal::ExitWithHelp(schema.Help(usage));
  return std::move(parsed->config);
}

}  // namespace coupon::service
