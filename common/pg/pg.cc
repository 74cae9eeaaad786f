#include "common/pg/pg.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/service/redact.h"
#include "glog/logging.h"

namespace coupon::pg {
namespace {

// SQLSTATE classes -> canonical codes. The one place this mapping lives.
absl::Status ToStatus(PGconn* conn, PGresult* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string message =
      res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  std::string sqlstate = state ? state : "";
  std::string text = absl::StrCat("postgres: ", message,
                                  sqlstate.empty() ? "" : " [SQLSTATE ",
                                  sqlstate, sqlstate.empty() ? "" : "]");
  if (PQstatus(conn) != CONNECTION_OK || sqlstate.rfind("08", 0) == 0 ||
      sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return absl::UnavailableError(text);
  }
  if (sqlstate == "23505") return absl::AlreadyExistsError(text);
  if (sqlstate.rfind("23", 0) == 0) return absl::FailedPreconditionError(text);
  if (sqlstate == "40001" || sqlstate == "40P01") return absl::AbortedError(text);
  if (sqlstate == "57014") return absl::DeadlineExceededError(text);
  if (sqlstate.rfind("22", 0) == 0) return absl::InvalidArgumentError(text);
  return absl::InternalError(text);
}

}  // namespace

Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    if (res_) PQclear(res_);
    res_ = other.res_;
    other.res_ = nullptr;
  }
  return *this;
}

Result::~Result() {
  if (res_) PQclear(res_);
}

int Result::rows() const { return res_ ? PQntuples(res_) : 0; }

bool Result::IsNull(int row, int col) const {
  return PQgetisnull(res_, row, col) == 1;
}

absl::string_view Result::Get(int row, int col) const {
  return absl::string_view(PQgetvalue(res_, row, col),
                          PQgetlength(res_, row, col));
}

int64_t Result::GetInt64(int row, int col) const {
  int64_t value = 0;
  CHECK(absl::SimpleAtoi(Get(row, col), &value))
      << "column " << col << " is not an integer: " << Get(row, col);
  return value;
}

std::optional<int64_t> Result::GetOptionalInt64(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return GetInt64(row, col);
}

namespace {

// Whole milliseconds, at least 1 for a positive duration.
std::string Millis(absl::Duration d) {
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}
std::string Seconds(absl::Duration d) {
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(d)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Connect(
    const std::string& dsn, absl::Duration connect_timeout,
    const SessionSettings& settings) {
  const int seconds =
      std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(
                               connect_timeout, absl::Seconds(1))));
  // Ours first, the DSN after: with expand_dbname, a key the DSN sets
  // replaces ours.
  std::vector<std::pair<std::string, std::string>> params = {
      {"connect_timeout", absl::StrCat(seconds)}};
  if (!settings.application_name.empty()) {
    params.push_back({"fallback_application_name", settings.application_name});
  }
  if (settings.keepalives_idle > absl::ZeroDuration()) {
    params.push_back({"keepalives", "1"});
    params.push_back({"keepalives_idle", Seconds(settings.keepalives_idle)});
  }
  if (settings.keepalives_interval > absl::ZeroDuration()) {
    params.push_back({"keepalives_interval", Seconds(settings.keepalives_interval)});
  }
  if (settings.keepalives_count > 0) {
    params.push_back({"keepalives_count", absl::StrCat(settings.keepalives_count)});
  }
  if (settings.tcp_user_timeout > absl::ZeroDuration()) {
    params.push_back({"tcp_user_timeout", Millis(settings.tcp_user_timeout)});
  }
  params.push_back({"dbname", dsn});
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  // expand_dbname=1: `dsn` may be a URI or key=value string.
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) return absl::ResourceExhaustedError("postgres: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    // libpq may quote a piece of a malformed DSN (`invalid percent-encoded
    // token: "..."`), and this status reaches logs and gRPC callers.
    return absl::UnavailableError(absl::StrCat("postgres: cannot connect: ",
                                               ScrubSecrets(message, DsnSecrets(dsn))));
  }
  std::unique_ptr<Connection> c(new Connection(conn));
  // The server's side of the settings, in one round trip. A setting the DSN
  // gave in `options` is overridden here only when ours is set.
  std::vector<std::pair<const char*, std::string>> gucs;
  if (settings.lock_timeout > absl::ZeroDuration()) {
    gucs.push_back({"lock_timeout", Millis(settings.lock_timeout)});
  }
  if (settings.statement_timeout > absl::ZeroDuration()) {
    gucs.push_back({"statement_timeout", Millis(settings.statement_timeout)});
  }
  if (settings.idle_in_transaction_timeout > absl::ZeroDuration()) {
    gucs.push_back({"idle_in_transaction_session_timeout",
                    Millis(settings.idle_in_transaction_timeout)});
  }
  if (settings.keepalives_idle > absl::ZeroDuration()) {
    gucs.push_back({"tcp_keepalives_idle", Seconds(settings.keepalives_idle)});
  }
  if (settings.keepalives_interval > absl::ZeroDuration()) {
    gucs.push_back({"tcp_keepalives_interval", Seconds(settings.keepalives_interval)});
  }
  if (settings.keepalives_count > 0) {
    gucs.push_back({"tcp_keepalives_count", absl::StrCat(settings.keepalives_count)});
  }
  if (settings.tcp_user_timeout > absl::ZeroDuration()) {
    gucs.push_back({"tcp_user_timeout", Millis(settings.tcp_user_timeout)});
  }
  if (settings.key_lookups_only) gucs.push_back({"enable_seqscan", "off"});
  if (!gucs.empty()) {
    std::string sql = "SELECT ";
    std::vector<Param> args;
    for (size_t i = 0; i < gucs.size(); ++i) {
      absl::StrAppend(&sql, i ? ", " : "", "set_config('", gucs[i].first, "', $",
                      i + 1, ", false)");
      args.push_back(gucs[i].second);
    }
    if (auto set = c->Exec(sql, args); !set.ok()) return set.status();
  }
  return c;
}

Connection::~Connection() { PQfinish(conn_); }

bool Connection::healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

bool Connection::Reusable() {
  if (!healthy()) return false;
  // Between statements nothing may be waiting on the socket; anything that is
  // there is the server ending the session (an error message, then EOF).
  pollfd fd{PQsocket(conn_), POLLIN, 0};
  if (fd.fd < 0) return false;
  if (poll(&fd, 1, 0) == 0) return true;
  if (PQconsumeInput(conn_) == 0) return false;
  return healthy() && !PQisBusy(conn_) && PQnotifies(conn_) == nullptr &&
         poll(&fd, 1, 0) == 0;
}

namespace {

// What an executed statement's PGresult says: the result, or the status.
absl::StatusOr<Result> Finished(PGconn* conn, PGresult* res) {
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Result(res);
  absl::Status status = ToStatus(conn, res);
  if (res) PQclear(res);
  return status;
}

std::vector<const char*> Values(const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  return values;
}

}  // namespace

absl::Status Connection::Prepare(const std::string& name, absl::string_view sql) {
  const std::string query(sql);
  absl::StatusOr<Result> r =
      Finished(conn_, PQprepare(conn_, name.c_str(), query.c_str(), 0, nullptr));
  return r.status();
}

absl::StatusOr<Result> Connection::ExecPrepared(const std::string& name,
                                                const std::vector<Param>& params) {
  std::vector<const char*> values = Values(params);
  return Finished(conn_, PQexecPrepared(conn_, name.c_str(),
                                        static_cast<int>(params.size()), values.data(),
                                        nullptr, nullptr, 0));
}

absl::StatusOr<Result> Connection::Exec(absl::string_view sql,
                                        const std::vector<Param>& params) {
  std::vector<const char*> values = Values(params);
  const std::string query(sql);
  return Finished(conn_, PQexecParams(conn_, query.c_str(),
                                      static_cast<int>(params.size()), nullptr,
                                      values.data(), nullptr, nullptr, 0));
}

absl::StatusOr<std::string> Connection::PipelinedName(const std::string& sql) {
  if (auto it = pipelined_.find(sql); it != pipelined_.end()) return it->second;
  if (pipelined_.size() >= kMaxPipelined) return std::string();
  std::string name = absl::StrCat("coupon_pipelined_", ++pipelined_names_);
  if (absl::Status prepared = Prepare(name, sql); !prepared.ok()) return prepared;
  pipelined_.emplace(sql, name);
  return name;
}

absl::StatusOr<std::vector<Result>> Connection::Pipeline(
    const std::vector<Statement>& statements, const std::function<void()>& meanwhile) {
  // Prepared before the pipeline starts: one round trip per new text, once
  // per connection. A failure here (a typo; an aborted transaction) sends
  // nothing.
  std::vector<std::string> names;
  names.reserve(statements.size());
  for (const Statement& st : statements) {
    absl::StatusOr<std::string> name = PipelinedName(st.sql);
    if (!name.ok()) return name.status();
    names.push_back(*std::move(name));
  }
  if (PQenterPipelineMode(conn_) != 1) {
    return absl::UnavailableError(
        absl::StrCat("postgres: pipeline mode: ", PQerrorMessage(conn_)));
  }
  absl::Status failed;
  size_t sent = 0;
  for (size_t i = 0; i < statements.size(); ++i) {
    const Statement& st = statements[i];
    std::vector<const char*> values = Values(st.params);
    const int n = static_cast<int>(st.params.size());
    const int queued =
        names[i].empty()
            ? PQsendQueryParams(conn_, st.sql.c_str(), n, nullptr, values.data(),
                                nullptr, nullptr, 0)
            : PQsendQueryPrepared(conn_, names[i].c_str(), n, values.data(), nullptr,
                                  nullptr, 0);
    if (queued != 1) {
      failed = absl::UnavailableError(
          absl::StrCat("postgres: sending a statement: ", PQerrorMessage(conn_)));
      break;
    }
    ++sent;
  }
  // The sync ends the pipeline on the server: what was sent runs even when
  // a later send failed, and its results are read below.
  if (PQpipelineSync(conn_) != 1 && failed.ok()) {
    failed = absl::UnavailableError(
        absl::StrCat("postgres: sending the pipeline: ", PQerrorMessage(conn_)));
  }
  // In blocking mode the sync flushed what was sent: the server works on it.
  if (meanwhile && failed.ok()) meanwhile();
  std::vector<Result> results;
  results.reserve(sent);
  for (size_t i = 0; i < sent; ++i) {
    // Each statement's result, then a null that ends it. Once one failed,
    // the rest come back PGRES_PIPELINE_ABORTED.
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) {
      if (failed.ok()) failed = ToStatus(conn_, nullptr);
      break;
    }
    const ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      results.emplace_back(res);
    } else {
      if (failed.ok() && st != PGRES_PIPELINE_ABORTED) failed = ToStatus(conn_, res);
      // "cached plan must not change result type": a migration changed a
      // table under a prepared statement, which then fails on every run.
      // Forget them all; the next pipeline prepares its texts afresh.
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      if (state != nullptr && absl::string_view(state) == "0A000") pipelined_.clear();
      PQclear(res);
    }
    while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
  }
  // The sync's own result, unless the connection is gone.
  if (healthy()) {
    while (PGresult* res = PQgetResult(conn_)) {
      const bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
      PQclear(res);
      if (sync) break;
    }
  }
  if (PQexitPipelineMode(conn_) != 1 && failed.ok()) {
    failed = absl::UnavailableError(
        absl::StrCat("postgres: leaving pipeline mode: ", PQerrorMessage(conn_)));
  }
  if (!failed.ok()) return failed;
  if (results.size() != statements.size()) {
    return absl::UnavailableError("postgres: a pipeline ended early");
  }
  return results;
}

Pool::Pool(std::string dsn, int max_size, absl::Duration connect_timeout,
           SessionSettings settings)
    : BoundedPool<Connection>(
          max_size,
          [dsn = std::move(dsn), connect_timeout,
           settings = std::move(settings)](absl::Time deadline) {
            return Connection::Connect(
                dsn,
                std::min(connect_timeout,
                         std::max(deadline - absl::Now(), absl::Seconds(1))),
                settings);
          },
          [max_size] {
            return absl::UnavailableError(absl::StrCat(
                "postgres: all ", max_size, " pooled connections are busy"));
          }) {}

absl::StatusOr<Result> Pool::Read(absl::Time deadline, absl::string_view sql,
                                  const std::vector<Param>& params) {
  for (int attempt = 0;; ++attempt) {
    auto conn = Acquire(deadline);
    if (!conn.ok()) return conn.status();
    absl::StatusOr<Result> r = (*conn)->Exec(sql, params);
    if (r.ok() || attempt > 0 || !absl::IsUnavailable(r.status()) ||
        (*conn)->healthy()) {
      return r;
    }
    LOG(INFO) << "postgres: a pooled connection broke (" << r.status()
              << "); reading again on a fresh one";
  }
}

std::string Int64Array(const std::vector<int64_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    absl::StrAppend(&out, values[i]);
  }
  out += '}';
  return out;
}

std::string BoolArray(const std::vector<bool>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += values[i] ? 't' : 'f';
  }
  out += '}';
  return out;
}

std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string MicrosToTimestamp(absl::string_view expr) {
  return absl::StrCat("('epoch'::timestamptz + ", expr,
                      " * interval '1 microsecond')");
}

}  // namespace coupon::pg
