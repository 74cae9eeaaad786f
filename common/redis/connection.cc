#include "common/redis/connection.h"

#include <poll.h>

#include <errno.h>
#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "glog/logging.h"

namespace coupon::redis {
namespace {

// Error replies of a Redis that is up but cannot run commands yet: loading its
// data after a restart (for seconds with a large append-only file), busy with a
// long script, or a replica without its primary. Anything else is the
// command's own error.
bool IsTransientError(absl::string_view error) {
  for (absl::string_view prefix :
       {"LOADING ", "BUSY ", "MASTERDOWN ", "TRYAGAIN "}) {
    if (absl::StartsWith(error, prefix)) return true;
  }
  return false;
}

// What we were doing when something failed; it decides the code and wording.
enum class Stage { kConnect, kAuth, kCommand, kAcquire };

// Failures of this library -> canonical codes, with a message that names the
// address so a person can act on it. The one place this mapping lives.
//   ctx:     the hiredis context after a failed call (nullptr: out of memory
//            while connecting); unused for kAuth and kAcquire
//   errnum:  errno saved right after the failed call
//   timeout: the timeout that applied (connect, command or pool wait)
//   detail:  kAuth: Redis' error reply; kAcquire: the pool size
absl::Status ToStatus(Stage stage, const std::string& addr,
                      const redisContext* ctx, int errnum,
                      absl::Duration timeout, absl::string_view detail) {
  const std::string within = absl::FormatDuration(timeout);
  switch (stage) {
    case Stage::kAcquire:
      return absl::UnavailableError(absl::StrCat(
          "redis: all ", detail, " pooled connections to ", addr,
          " stayed busy for ", within, " (see --redis_pool_size)"));
    case Stage::kAuth:
      return absl::UnauthenticatedError(absl::StrCat(
          "redis: ", addr, " rejected AUTH: ", detail,
          " (check --redis_password)"));
    case Stage::kConnect:
      if (ctx == nullptr) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "redis: out of memory connecting to ", addr));
      }
      if (errnum == ETIMEDOUT) {
        return absl::UnavailableError(absl::StrCat(
            "redis: cannot connect to ", addr, " within ", within, ": ",
            ctx->errstr));
      }
      return absl::UnavailableError(
          absl::StrCat("redis: cannot connect to ", addr, ": ", ctx->errstr));
    case Stage::kCommand:
      break;
  }
  // A blocking socket whose SO_RCVTIMEO/SO_SNDTIMEO expired fails with
  // EAGAIN; hiredis >= 1.1 says so itself with REDIS_ERR_TIMEOUT.
  bool timed_out =
      ctx->err == REDIS_ERR_IO && (errnum == EAGAIN || errnum == EWOULDBLOCK);
#ifdef REDIS_ERR_TIMEOUT
  timed_out = timed_out || ctx->err == REDIS_ERR_TIMEOUT;
#endif
  if (timed_out) {
    return absl::UnavailableError(
        absl::StrCat("redis: no reply from ", addr, " within ", within));
  }
  switch (ctx->err) {
    case REDIS_ERR_EOF:
      return absl::UnavailableError(absl::StrCat(
          "redis: ", addr, " closed the connection: ", ctx->errstr));
    case REDIS_ERR_IO:
      return absl::UnavailableError(absl::StrCat(
          "redis: I/O error talking to ", addr, ": ", ctx->errstr));
    case REDIS_ERR_OOM:
      return absl::ResourceExhaustedError(
          absl::StrCat("redis: out of memory talking to ", addr));
    case REDIS_ERR_PROTOCOL:
      return absl::InternalError(absl::StrCat(
          "redis: protocol error from ", addr, ": ", ctx->errstr));
    default:
      return absl::InternalError(absl::StrCat(
          "redis: error talking to ", addr, ": ", ctx->errstr));
  }
}

// Copies hiredis' reply tree. False on a type RESP2 does not have.
bool Convert(const redisReply& in, Reply* out) {
  switch (in.type) {
    case REDIS_REPLY_NIL:
      out->type = Reply::Type::kNil;
      return true;
    case REDIS_REPLY_INTEGER:
      out->type = Reply::Type::kInteger;
      out->integer = in.integer;
      return true;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out->type = in.type == REDIS_REPLY_STRING   ? Reply::Type::kString
                  : in.type == REDIS_REPLY_STATUS ? Reply::Type::kStatus
                                                  : Reply::Type::kError;
      out->str.assign(in.str, in.len);
      return true;
    case REDIS_REPLY_ARRAY:
      out->type = Reply::Type::kArray;
      out->elements.resize(in.elements);
      for (size_t i = 0; i < in.elements; ++i) {
        if (!Convert(*in.element[i], &out->elements[i])) return false;
      }
      return true;
    default:
      return false;
  }
}

// argv as hiredis takes it: pointers and lengths, valid while argv lives.
struct ArgvView {
  explicit ArgvView(const std::vector<std::string>& argv) {
    args.reserve(argv.size());
    lens.reserve(argv.size());
    for (const std::string& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  std::vector<const char*> args;
  std::vector<size_t> lens;
};

}  // namespace

absl::Status ParseAddr(const std::string& addr, std::string* host, int* port) {
  const size_t colon = addr.rfind(':');
  if (addr.empty() || colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", addr, "\" is not host:port"));
  }
  absl::string_view h = absl::string_view(addr).substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  int p = 0;
  if (h.empty() || !absl::SimpleAtoi(addr.substr(colon + 1), &p) || p < 1 ||
      p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", addr, "\" is not host:port with a port from 1 to 65535"));
  }
  *host = std::string(h);
  *port = p;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Connect(
    const RedisConfig& config) {
  std::string host;
  int port = 0;
  absl::Status parsed = ParseAddr(config.addr, &host, &port);
  if (!parsed.ok()) return parsed;

  errno = 0;
  redisContext* ctx = redisConnectWithTimeout(
      host.c_str(), port, absl::ToTimeval(config.connect_timeout));
  const int connect_errno = errno;
  if (ctx == nullptr || ctx->err != 0) {
    absl::Status status = ToStatus(Stage::kConnect, config.addr, ctx,
                                   connect_errno, config.connect_timeout, "");
    if (ctx != nullptr) redisFree(ctx);
    VLOG(1) << status;
    return status;
  }
  auto conn = std::unique_ptr<Connection>(
      new Connection(ctx, config.addr, config.command_timeout));
  if (redisSetTimeout(ctx, absl::ToTimeval(config.command_timeout)) !=
      REDIS_OK) {
    return ToStatus(Stage::kCommand, config.addr, ctx, errno,
                    config.command_timeout, "");
  }
  if (!config.password.empty()) {
    auto reply = conn->Command({"AUTH", config.password});
    if (!reply.ok()) return reply.status();
    if (reply->type == Reply::Type::kError) {
      return ToStatus(Stage::kAuth, config.addr, ctx, 0,
                      config.command_timeout, reply->str);
    }
  }
  VLOG(1) << "redis: connected to " << config.addr;
  return conn;
}

Connection::~Connection() { redisFree(ctx_); }

bool Connection::healthy() const { return ctx_->err == 0; }

bool Connection::PeerClosed() const {
  char byte;
  const ssize_t n = recv(ctx_->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // Nothing to read is the only good answer: 0 is EOF, and unsolicited
  // bytes would put the reply stream out of step.
  return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

absl::StatusOr<std::optional<Reply>> Connection::Receive(absl::Duration wait) {
  void* raw = nullptr;
  // A reply may already sit in hiredis' buffer; else wait for the socket.
  if (redisGetReplyFromReader(ctx_, &raw) == REDIS_OK && raw == nullptr) {
    pollfd readable{ctx_->fd, POLLIN, 0};
    const int ready = poll(&readable, 1,
                           static_cast<int>(absl::ToInt64Milliseconds(wait)));
    if (ready == 0) return std::optional<Reply>();
    errno = 0;
    if (ready < 0 || redisBufferRead(ctx_) != REDIS_OK) {
      return ToStatus(Stage::kCommand, addr_, ctx_, errno, command_timeout_, "");
    }
    if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) raw = nullptr;
  }
  if (ctx_->err != 0) {
    return ToStatus(Stage::kCommand, addr_, ctx_, errno, command_timeout_, "");
  }
  if (raw == nullptr) return std::optional<Reply>();
  Reply reply;
  const bool converted = Convert(*static_cast<redisReply*>(raw), &reply);
  freeReplyObject(raw);
  if (!converted) {
    return absl::InternalError(absl::StrCat("redis: unexpected reply from ", addr_));
  }
  return std::optional<Reply>(std::move(reply));
}

absl::StatusOr<Reply> Connection::FromRaw(void* raw_reply, int errnum) {
  auto* raw = static_cast<redisReply*>(raw_reply);
  if (raw == nullptr) {
    return ToStatus(Stage::kCommand, addr_, ctx_, errnum, command_timeout_, "");
  }
  Reply reply;
  const bool converted = Convert(*raw, &reply);
  const int type = raw->type;
  freeReplyObject(raw);
  if (!converted) {
    return absl::InternalError(absl::StrCat(
        "redis: unexpected reply type ", type, " from ", addr_));
  }
  if (reply.type == Reply::Type::kError && IsTransientError(reply.str)) {
    // The command did not run: Redis is up but cannot serve yet. Callers
    // treat it like Redis being down, which a retry gets past.
    return absl::UnavailableError(
        absl::StrCat("redis: ", addr_, " cannot serve yet: ", reply.str));
  }
  return reply;
}

absl::StatusOr<Reply> Connection::Command(
    const std::vector<std::string>& argv) {
  ArgvView view(argv);
  errno = 0;
  void* raw = redisCommandArgv(ctx_, static_cast<int>(argv.size()),
                               view.args.data(), view.lens.data());
  return FromRaw(raw, errno);
}

absl::StatusOr<std::vector<absl::StatusOr<Reply>>> Connection::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  for (const std::vector<std::string>& argv : commands) {
    ArgvView view(argv);
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), view.args.data(),
                               view.lens.data()) != REDIS_OK) {
      return ToStatus(Stage::kCommand, addr_, ctx_, errno, command_timeout_, "");
    }
  }
  std::vector<absl::StatusOr<Reply>> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    // The first call writes the whole buffer; each reads until its reply.
    if (redisGetReply(ctx_, &raw) != REDIS_OK) {
      return ToStatus(Stage::kCommand, addr_, ctx_, errno, command_timeout_, "");
    }
    replies.push_back(FromRaw(raw, errno));
  }
  return replies;
}

Pool::Pool(RedisConfig config)
    : BoundedPool<Connection>(
          config.pool_size,
          [config](absl::Time) { return Connection::Connect(config); },
          [config] {
            return ToStatus(Stage::kAcquire, config.addr, nullptr, 0,
                            config.command_timeout,
                            absl::StrCat(config.pool_size));
          }) {}

}  // namespace coupon::redis
