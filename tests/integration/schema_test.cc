// What the schema itself refuses, against the real PostgreSQL (db/migrations).

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/pg/pg.h"
#include "gtest/gtest.h"
#include "tests/testing/stack_env.h"

namespace coupon {
namespace {

using testing::PgDsn;

// An issued copy is kept for good (0005): a DELETE on user_coupons fails,
// whether or not a result names the copy. Everything runs in a transaction
// that is rolled back.
TEST(SchemaTest, AnIssuedCopyIsNeverDeleted) {
  auto conn = pg::Connection::Connect(PgDsn(), absl::Seconds(5));
  ASSERT_TRUE(conn.ok()) << conn.status() << "; " << testing::kStackHint;
  pg::Connection& db = **conn;
  ASSERT_TRUE(db.Exec("BEGIN").ok());
  auto coupon = db.Exec(
      "INSERT INTO coupons (name, total_quantity, remaining_quantity)"
      " VALUES ('schema test', 1, 0) RETURNING coupon_id");
  ASSERT_TRUE(coupon.ok()) << coupon.status();
  const std::string request_id = absl::StrCat("schema-", getpid(), "-", absl::ToUnixMicros(absl::Now()));
  ASSERT_TRUE(db.Exec("INSERT INTO user_coupons (coupon_id, user_id, request_id)"
                      " VALUES ($1, 'alice', $2)",
                      {std::string(coupon->Get(0, 0)), request_id})
                  .ok());
  absl::StatusOr<pg::Result> deleted =
      db.Exec("DELETE FROM user_coupons WHERE request_id = $1", {request_id});
  EXPECT_FALSE(deleted.ok());
  EXPECT_TRUE(absl::StrContains(deleted.status().message(), "never deleted"))
      << deleted.status();
  ASSERT_TRUE(db.Exec("ROLLBACK").ok());
}

}  // namespace
}  // namespace coupon
