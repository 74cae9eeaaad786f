#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace RdKafka {
class Conf;
}

namespace coupon::kafka {

// Builds a librdkafka global configuration; INVALID_ARGUMENT names the
// property librdkafka rejected. librdkafka's own log lines and errors go to
// glog (a process-wide callback) unless the caller sets its own event_cb.
absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(
    const std::map<std::string, std::string>& properties);

// Parses "key=value,key=value" (extra librdkafka properties from a flag, for
// SASL/SSL and tuning) into `out`, overriding what is there.
absl::Status ParseProperties(const std::string& text,
                             std::map<std::string, std::string>* out);

}  // namespace coupon::kafka
