#pragma once

// Which of a shared Redis's clients are this test process's own, so a test
// can drop its own connections (CLIENT KILL ID) and leave every other
// process's alone: a gateway that scripts/services runs on the same Redis,
// another test, a benchmark.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/redis/redis.h"

namespace coupon::testing {

// The ids (CLIENT LIST's id=) of the clients of `type` ("pubsub",
// "normal", ...) whose address is the local end of one of this process's
// own TCP sockets (/proc/self/fd matched with /proc/self/net/tcp). IPv4
// only, as the stack listens on 127.0.0.1.
absl::StatusOr<std::vector<int64_t>> OwnRedisClients(redis::Client& redis,
                                                     const std::string& type);

// CLIENT KILL ID for each of OwnRedisClients(type); how many were killed.
absl::StatusOr<int> KillOwnRedisClients(redis::Client& redis, const std::string& type);

}  // namespace coupon::testing
