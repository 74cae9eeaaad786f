#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace RdKafka {
class Conf;
class Event;
}

namespace coupon::kafka {

// librdkafka's socket.timeout.ms for every client of ours: how long a
// request to a broker that went silent (cut off without a reset) is waited
// for before the client gives it up and asks another broker. librdkafka's
// 60 s stalled every partition about a minute when a broker was isolated;
// the cluster fences such a broker in about 10 s.
inline constexpr char kSocketTimeoutMs[] = "10000";

// librdkafka's fetch.wait.max.ms for every consumer of ours: how long the
// broker holds a fetch that found nothing new. A fetch returns as soon as
// one record arrives, so this costs no latency while records flow; it is
// what an idle consumer costs. At 10 ms, the broker served about a hundred
// empty fetches a second per consumer: 0.16 of a core for one gateway and
// one worker doing nothing, and most of the broker's CPU in a sold-out
// storm. At 100 ms, 0.03. It also bounds how long a newly assigned or
// sought partition waits for the fetch in flight to return. Override it
// with --kafka_properties=fetch.wait.max.ms=N.
inline constexpr char kFetchWaitMaxMs[] = "100";

// Builds a librdkafka global configuration; INVALID_ARGUMENT names the
// property librdkafka rejected. librdkafka's own log lines and errors go to
// glog (a process-wide callback) unless the caller sets its own event_cb.
absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(
    const std::map<std::string, std::string>& properties);

// What the default event callback does with an event: errors, and log lines
// of warning level or worse, go to glog. For clients that set their own
// event_cb (to read statistics) and pass the rest on.
void LogEvent(RdKafka::Event& event);

// Parses "key=value,key=value" (extra librdkafka properties from a flag, for
// SASL/SSL and tuning) into `out`, overriding what is there.
absl::Status ParseProperties(const std::string& text,
                             std::map<std::string, std::string>* out);

}  // namespace coupon::kafka
