#pragma once

// A thin libpq wrapper: parameterised statements only, results as StatusOr,
// SQLSTATEs mapped to canonical codes in one place (ToStatus in pg.cc).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/service/bounded_pool.h"

struct pg_conn;
struct pg_result;

namespace coupon::pg {

// A text-format parameter; nullopt is SQL NULL.
using Param = std::optional<std::string>;

// What a service sets on each of its sessions, so that no session can hold
// rows hostage: a frozen or cut-off client's transaction ends on the server,
// and a dead peer is noticed by both ends. A zero duration leaves the
// server's (or libpq's) default. Settings the DSN spells out itself win.
struct SessionSettings {
  // Server side: how long a statement may wait for a lock, run, or a
  // transaction may sit idle between statements before the server ends it
  // (the last one ends the whole session, releasing every lock it held).
  absl::Duration lock_timeout = absl::ZeroDuration();
  absl::Duration statement_timeout = absl::ZeroDuration();
  absl::Duration idle_in_transaction_timeout = absl::ZeroDuration();
  // TCP keepalives and the TCP user timeout, set on the client's socket
  // (libpq) and on the server's (the session's tcp_* settings).
  absl::Duration keepalives_idle = absl::ZeroDuration();
  absl::Duration keepalives_interval = absl::ZeroDuration();
  int keepalives_count = 0;
  absl::Duration tcp_user_timeout = absl::ZeroDuration();
  // pg_stat_activity's application_name unless the DSN names one.
  std::string application_name;
  // For a session whose every statement looks rows up by key (the gateway's
  // and the worker's): enable_seqscan off, so that no plan scans a whole
  // table where an index serves. A prepared statement's plan is made once
  // and kept (after five runs, one generic plan), with the table sizes of
  // that moment. Made while autovacuum's statistics say a table is nearly
  // empty (a new deployment's first sale, or a table just emptied), it is a
  // sequential scan, and it stays until the table is analyzed again while
  // the sale fills it. A table without a usable index is still scanned.
  bool key_lookups_only = false;
};

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

/// A statement and its parameters, for Connection::Pipeline.
struct Statement {
  std::string sql;
  std::vector<Param> params;
};

/// One connection. Not thread-safe: one user at a time (the Pool hands it
/// out); destroyed by its owner, which closes the socket.
class Connection {
 public:
  // UNAVAILABLE when the server cannot be reached within `connect_timeout`.
  static absl::StatusOr<std::unique_ptr<Connection>> Connect(
      const std::string& dsn, absl::Duration connect_timeout,
      const SessionSettings& settings = {});
  ~Connection();

  absl::StatusOr<Result> Exec(absl::string_view sql,
                              const std::vector<Param>& params = {});
  // A statement parsed and planned once per connection, for one run many
  // times a second: Prepare it once (it lives as long as the connection),
  // then ExecPrepared it by name.
  absl::Status Prepare(const std::string& name, absl::string_view sql);
  absl::StatusOr<Result> ExecPrepared(const std::string& name,
                                      const std::vector<Param>& params);
  // Sends every statement at once and waits once (libpq's pipeline mode):
  // one round trip for all of them, each run in order as if sent alone.
  // Returns their results in order, or the first failure's status; the
  // statements after a failed one are not run. Inside a transaction (a
  // "BEGIN" among them) a failure leaves it aborted: roll it back. Without
  // one, the statements are one implicit transaction: a failure undoes them
  // all. `meanwhile`, when given, runs once everything is sent and before
  // the results are read: the caller's own work overlaps the server's.
  // Each statement text is prepared on the connection the first time it is
  // seen (one more round trip, once), so the server parses and plans it
  // once rather than in every pipeline; a statement that fails to prepare
  // is the status, and nothing of the pipeline runs.
  absl::StatusOr<std::vector<Result>> Pipeline(const std::vector<Statement>& statements,
                                               const std::function<void()>& meanwhile = {});
  // Whether libpq still considers the connection good.
  bool healthy() const;
  // Whether it can be lent out again: healthy, and the server has not closed
  // it meanwhile (a restart, an idle-session timeout, pg_terminate_backend).
  // A server that ends a session says so on the socket, so this reads what
  // is waiting there, without a round trip; a connection it finds closed is
  // dropped instead of failing the next caller's first statement.
  bool Reusable();

 private:
  explicit Connection(pg_conn* conn) : conn_(conn) {}
  // The name `sql` is prepared under for Pipeline, preparing it first if
  // need be; "" (the unnamed statement, parsed every time) once
  // kMaxPipelined texts are prepared, so that a caller building texts on
  // the fly cannot grow the server's session without bound.
  absl::StatusOr<std::string> PipelinedName(const std::string& sql);

  static constexpr size_t kMaxPipelined = 32;
  pg_conn* conn_;
  absl::flat_hash_map<std::string, std::string> pipelined_;  // sql -> name
  int64_t pipelined_names_ = 0;  // names handed out, for the next one
};

/// A bounded pool of Connections (common/service/bounded_pool.h). Thread-safe;
/// connections are made lazily and a broken one is dropped before it is lent
/// again. Outlives every Lease it hands out. Acquire fails UNAVAILABLE when
/// no connection can be had before its deadline.
class Pool : public BoundedPool<Connection> {
 public:
  Pool(std::string dsn, int max_size, absl::Duration connect_timeout,
       SessionSettings settings = {});

  // Runs one read-only statement on a pooled connection. When the
  // connection turns out broken (UNAVAILABLE from a connection that is no
  // longer healthy: the server went away since it was checked), the read is
  // tried once more on a fresh connection, so a restarted server costs the
  // caller nothing. Never use it for a write: a write that broke mid-way may
  // have happened.
  absl::StatusOr<Result> Read(absl::Time deadline, absl::string_view sql,
                              const std::vector<Param>& params = {});
};

// Runs `body` inside BEGIN/COMMIT; rolls back when it fails. The COMMIT runs
// with no statement_timeout: a commit cancelled while it waits for a
// synchronous standby stays on the primary alone, yet reports success (with
// a warning), and a failover would then lose what the caller was told.
template <typename Fn>
absl::Status InTransaction(Connection& conn, Fn&& body);

// Array literals for `$n::bigint[]` / `$n::text[]` parameters.
std::string Int64Array(const std::vector<int64_t>& values);
std::string TextArray(const std::vector<std::string>& values);
// ... and `$n::boolean[]`.
std::string BoolArray(const std::vector<bool>& values);

// SQL turning a bigint expression of microseconds since the epoch into a
// timestamptz, exactly (to_timestamp goes through a double). `expr` is
// spliced into the SQL: a `$n` placeholder or a column name, never a value.
std::string MicrosToTimestamp(absl::string_view expr);

template <typename Fn>
absl::Status InTransaction(Connection& conn, Fn&& body) {
  auto begin = conn.Exec("BEGIN");
  if (!begin.ok()) return begin.status();
  absl::Status status = body();
  if (status.ok()) status = conn.Exec("SET LOCAL statement_timeout = 0").status();
  if (status.ok()) {
    auto commit = conn.Exec("COMMIT");
    if (commit.ok()) return absl::OkStatus();
    status = commit.status();
  }
  (void)conn.Exec("ROLLBACK");
  return status;
}

}  // namespace coupon::pg
