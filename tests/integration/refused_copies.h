// PostgreSQL refusing a coupon's copies, for the Redis-mode tests: a copy
// Redis reserved that no gateway could write, which the outbox scheduler
// then settles. Real PostgreSQL; the refusal is a trigger on user_coupons.

#ifndef COUPON_TESTS_INTEGRATION_REFUSED_COPIES_H_
#define COUPON_TESTS_INTEGRATION_REFUSED_COPIES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/pg/pg.h"
#include "redis-issuer/outbox/outbox_scheduler.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {

/// Makes PostgreSQL refuse every `user_coupons` insert of `coupon_id` until
/// AllowCopiesOf drops the trigger.
inline absl::Status RefuseCopiesOf(pg::Connection& db, int64_t coupon_id) {
  auto made = db.Exec(
      "CREATE OR REPLACE FUNCTION coupon_test_refuse() RETURNS trigger "
      "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$");
  if (!made.ok()) return made.status();
  return db.Exec(absl::StrCat("CREATE TRIGGER coupon_test_refuse_", coupon_id,
                              " BEFORE INSERT ON user_coupons FOR EACH ROW WHEN "
                              "(NEW.coupon_id = ", coupon_id,
                              ") EXECUTE FUNCTION coupon_test_refuse()"))
      .status();
}

inline absl::Status AllowCopiesOf(pg::Connection& db, int64_t coupon_id) {
  return db.Exec(absl::StrCat("DROP TRIGGER coupon_test_refuse_", coupon_id, " ON user_coupons"))
      .status();
}

/// An outbox scheduler for `coupon_ids` only, which settles a reservation
/// as soon as it is a second old (the tests wait two).
inline absl::StatusOr<std::unique_ptr<outbox::OutboxScheduler>> ReconcilingScheduler(
    std::vector<int64_t> coupon_ids) {
  outbox::OutboxConfig config;
  config.pg_dsn = PgDsn();
  config.redis_addr = RedisAddr();
  config.reconcile_after = absl::Seconds(1);
  config.only_coupon_ids = std::move(coupon_ids);
  return outbox::OutboxScheduler::Create(config);
}

}  // namespace coupon::testing

#endif  // COUPON_TESTS_INTEGRATION_REFUSED_COPIES_H_
