#pragma once

// Where the integration tests find the real servers: the environment that
// scripts/stack exports (KAFKA_BROKERS, PG_DSN), else its defaults.

#include <cstdlib>
#include <string>

namespace coupon::testing {

inline std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

inline std::string KafkaBrokers() {
  return EnvOr("KAFKA_BROKERS", "127.0.0.1:9092");
}

inline std::string PgDsn() {
  return EnvOr("PG_DSN", "postgresql://coupon:coupon@127.0.0.1:5432/coupon");
}

inline std::string RedisAddr() { return EnvOr("REDIS_ADDR", "127.0.0.1:6379"); }

inline constexpr const char* kStackHint =
    "start the servers first: scripts/stack start (scripts/test does it)";

}  // namespace coupon::testing
