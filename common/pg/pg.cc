#include "common/pg/pg.h"

#include <libpq-fe.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/redact.h"
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

absl::StatusOr<std::unique_ptr<Connection>> Connection::Connect(
    const std::string& dsn, absl::Duration connect_timeout) {
  const int seconds =
      std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(
                               connect_timeout, absl::Seconds(1))));
  const std::string timeout = absl::StrCat(seconds);
  const char* keys[] = {"dbname", "connect_timeout", nullptr};
  const char* values[] = {dsn.c_str(), timeout.c_str(), nullptr};
  // expand_dbname=1: `dsn` may be a URI or key=value string; our timeout is
  // applied unless the DSN sets its own.
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
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
  return std::unique_ptr<Connection>(new Connection(conn));
}

Connection::~Connection() { PQfinish(conn_); }

bool Connection::healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

absl::StatusOr<Result> Connection::Exec(absl::string_view sql,
                                        const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  const std::string query(sql);
  PGresult* res = PQexecParams(conn_, query.c_str(),
                               static_cast<int>(params.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Result(res);
  absl::Status status = ToStatus(conn_, res);
  if (res) PQclear(res);
  return status;
}

Pool::Pool(std::string dsn, int max_size, absl::Duration connect_timeout)
    : BoundedPool<Connection>(
          max_size,
          [dsn = std::move(dsn), connect_timeout](absl::Time deadline) {
            return Connection::Connect(
                dsn, std::min(connect_timeout,
                              std::max(deadline - absl::Now(), absl::Seconds(1))));
          },
          [max_size] {
            return absl::UnavailableError(absl::StrCat(
                "postgres: all ", max_size, " pooled connections are busy"));
          }) {}

std::string Int64Array(const std::vector<int64_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    absl::StrAppend(&out, values[i]);
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
