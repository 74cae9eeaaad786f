#pragma once

// A thin libpq wrapper: parameterised statements only, results as StatusOr,
// SQLSTATEs mapped to canonical codes in one place (ToStatus in pg.cc).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/bounded_pool.h"

struct pg_conn;
struct pg_result;

namespace coupon::pg {

// A text-format parameter; nullopt is SQL NULL.
using Param = std::optional<std::string>;

/// Owns one PGresult. Movable, not copyable; any thread.
class Result {
 public:
  Result() = default;
  explicit Result(pg_result* res) : res_(res) {}
  Result(Result&& other) noexcept : res_(other.res_) { other.res_ = nullptr; }
  Result& operator=(Result&& other) noexcept;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result();

  int rows() const;
  bool IsNull(int row, int col) const;
  absl::string_view Get(int row, int col) const;
  int64_t GetInt64(int row, int col) const;
  std::optional<int64_t> GetOptionalInt64(int row, int col) const;

 private:
  pg_result* res_ = nullptr;
};

/// One connection. Not thread-safe: one user at a time (the Pool hands it
/// out); destroyed by its owner, which closes the socket.
class Connection {
 public:
  // UNAVAILABLE when the server cannot be reached within `connect_timeout`.
  static absl::StatusOr<std::unique_ptr<Connection>> Connect(
      const std::string& dsn, absl::Duration connect_timeout);
  ~Connection();

  absl::StatusOr<Result> Exec(absl::string_view sql,
                              const std::vector<Param>& params = {});
  // Whether the socket is still good; a broken connection is not reused.
  bool healthy() const;
  bool Reusable() const { return healthy(); }

 private:
  explicit Connection(pg_conn* conn) : conn_(conn) {}
  pg_conn* conn_;
};

/// A bounded pool of Connections (common/bounded_pool.h). Thread-safe;
/// connections are made lazily and a broken one is dropped. Outlives every
/// Lease it hands out. Acquire fails UNAVAILABLE when no connection can be
/// had before its deadline.
class Pool : public BoundedPool<Connection> {
 public:
  Pool(std::string dsn, int max_size, absl::Duration connect_timeout);
};

// Runs `body` inside BEGIN/COMMIT; rolls back when it fails.
template <typename Fn>
absl::Status InTransaction(Connection& conn, Fn&& body);

// Array literals for `$n::bigint[]` / `$n::text[]` parameters.
std::string Int64Array(const std::vector<int64_t>& values);
std::string TextArray(const std::vector<std::string>& values);

// SQL turning a bigint expression of microseconds since the epoch into a
// timestamptz, exactly (to_timestamp goes through a double). `expr` is
// spliced into the SQL: a `$n` placeholder or a column name, never a value.
std::string MicrosToTimestamp(absl::string_view expr);

template <typename Fn>
absl::Status InTransaction(Connection& conn, Fn&& body) {
  auto begin = conn.Exec("BEGIN");
  if (!begin.ok()) return begin.status();
  absl::Status status = body();
  if (status.ok()) {
    auto commit = conn.Exec("COMMIT");
    if (commit.ok()) return absl::OkStatus();
    status = commit.status();
  }
  (void)conn.Exec("ROLLBACK");
  return status;
}

}  // namespace coupon::pg
