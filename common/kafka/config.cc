#include "common/kafka/config.h"

#include <librdkafka/rdkafkacpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/service/redact.h"
#include "glog/logging.h"

namespace coupon::kafka {
namespace {

/// Stateless; librdkafka calls it from its own threads and from poll().
class GlogEvents final : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override { LogEvent(event); }
};

GlogEvents* Events() {
  static auto* events = new GlogEvents();  // never destroyed: outlives clients
  return events;
}

}  // namespace

void LogEvent(RdKafka::Event& event) {
  if (event.type() == RdKafka::Event::EVENT_ERROR) {
    LOG(WARNING) << "kafka: " << RdKafka::err2str(event.err()) << ": "
                 << event.str();
  } else if (event.type() == RdKafka::Event::EVENT_LOG &&
             event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
    LOG(WARNING) << "kafka: " << event.fac() << ": " << event.str();
  }
}

absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(
    const std::map<std::string, std::string>& properties) {
  std::unique_ptr<RdKafka::Conf> conf(
      RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  conf->set("event_cb", static_cast<RdKafka::EventCb*>(Events()), error);
  for (const auto& [key, value] : properties) {
    if (conf->set(key, value, error) != RdKafka::Conf::CONF_OK) {
      // librdkafka's message may quote the value ("Invalid value \"...\""):
      // not a secret's.
      if (IsSecretKey(key)) {
        error = ScrubSecrets(
            absl::StrReplaceAll(error, {{absl::StrCat("\"", value, "\""),
                                         absl::StrCat("\"", kRedacted, "\"")}}),
            {value});
      }
      return absl::InvalidArgumentError(
          absl::StrCat("kafka property ", key, ": ", error));
    }
  }
  return conf;
}

absl::Status ParseProperties(const std::string& text,
                             std::map<std::string, std::string>* out) {
  int n = 0;
  std::string previous_key;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    ++n;
    std::pair<std::string, std::string> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    std::string key(absl::StripAsciiWhitespace(kv.first));
    if (key.empty() || item.find('=') == absl::string_view::npos) {
      // The item is not quoted: it may be the tail of a secret value that
      // held a ',' (sasl.password=a,b).
      return absl::InvalidArgumentError(absl::StrCat(
          "kafka properties: expected key=value, item ", n,
          previous_key.empty() ? ""
                               : absl::StrCat(" (after ", previous_key, "=...)"),
          " is not; a value cannot contain ','"));
    }
    (*out)[key] = std::string(absl::StripAsciiWhitespace(kv.second));
    previous_key = key;
  }
  return absl::OkStatus();
}

}  // namespace coupon::kafka
