#pragma once

#include <string>

namespace coupon::service {

// "<hostname>-<pid>": this process among its replicas, for Kafka client ids,
// PostgreSQL's application_name and the events' gateway_id. "localhost"
// stands in for a host name that cannot be read. Read afresh on each call,
// so a forked child gets its own.
std::string InstanceId();

}  // namespace coupon::service
