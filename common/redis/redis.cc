#include "common/redis/redis.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/redis/connection.h"
#include "common/redis/sha1.h"
#include "glog/logging.h"

namespace coupon::redis {
namespace {

absl::Status CheckTimeout(absl::string_view flag, absl::Duration d) {
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": must be positive and finite, got ",
                     absl::FormatDuration(d)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RedisConfig::Validate() const {
  std::string host;
  int port = 0;
  if (absl::Status s = ParseAddr(addr, &host, &port); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--redis_addr: ", s.message()));
  }
  if (pool_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--redis_pool_size: must be positive, got ", pool_size));
  }
  if (absl::Status s = CheckTimeout("redis_connect_timeout", connect_timeout);
      !s.ok()) {
    return s;
  }
  return CheckTimeout("redis_command_timeout", command_timeout);
}

Script::Script(std::string source)
    : source_(std::move(source)), sha1_(Sha1Hex(source_)) {}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(
    const RedisConfig& config) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  return std::unique_ptr<Client>(new Client(config));
}

Client::Client(const RedisConfig& config)
    : command_timeout_(config.command_timeout),
      pool_(std::make_unique<Pool>(config)) {}

Client::~Client() = default;

absl::StatusOr<Reply> Client::Command(const std::vector<std::string>& argv) {
  if (argv.empty()) {
    return absl::InvalidArgumentError("redis: empty command");
  }
  auto lease = pool_->Acquire(absl::Now() + command_timeout_);
  if (!lease.ok()) return lease.status();
  return (*lease)->Command(argv);
}

absl::StatusOr<Reply> Client::Eval(const Script& script,
                                   const std::vector<std::string>& keys,
                                   const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(script.sha1());
  argv.push_back(absl::StrCat(keys.size()));
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());

  auto lease = pool_->Acquire(absl::Now() + command_timeout_);
  if (!lease.ok()) return lease.status();
  auto reply = (*lease)->Command(argv);
  if (!reply.ok() || reply->type != Reply::Type::kError ||
      !absl::StartsWith(reply->str, "NOSCRIPT")) {
    return reply;
  }
  // Redis restarted or its script cache was flushed since we last ran it.
  auto loaded = (*lease)->Command({"SCRIPT", "LOAD", script.source()});
  if (!loaded.ok() || loaded->type == Reply::Type::kError) return loaded;
  if (loaded->type != Reply::Type::kString || loaded->str != script.sha1()) {
    return absl::InternalError(absl::StrCat(
        "redis: SCRIPT LOAD answered \"", loaded->str, "\", expected sha1 ",
        script.sha1()));
  }
  return (*lease)->Command(argv);
}

Subscriber::Subscriber(RedisConfig config, std::string channel,
                       OnMessage on_message)
    : config_(std::move(config)),
      channel_(std::move(channel)),
      on_message_(std::move(on_message)) {}

Subscriber::~Subscriber() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Subscriber::Start() { thread_ = std::thread([this] { Run(); }); }

void Subscriber::Run() {
  while (!stop_.load()) {
    absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Connect(config_);
    absl::Status status = conn.status();
    if (conn.ok()) {
      absl::StatusOr<Reply> subscribed = (*conn)->Command({"SUBSCRIBE", channel_});
      status = subscribed.status();
      if (subscribed.ok() && subscribed->type == Reply::Type::kError) {
        status = absl::FailedPreconditionError(
            absl::StrCat("redis: SUBSCRIBE ", channel_, ": ", subscribed->str));
      }
    }
    if (status.ok()) {
      subscribed_.store(true);
      while (!stop_.load()) {
        absl::StatusOr<std::optional<Reply>> pushed =
            (*conn)->Receive(absl::Milliseconds(100));
        if (!pushed.ok()) {
          status = pushed.status();
          break;
        }
        // ["message", channel, payload]
        if (*pushed && (*pushed)->type == Reply::Type::kArray &&
            (*pushed)->elements.size() == 3 && (*pushed)->elements[0].str == "message") {
          on_message_((*pushed)->elements[2].str);
        }
      }
      subscribed_.store(false);
    }
    if (stop_.load()) break;
    LOG(WARNING) << "redis subscriber of " << channel_ << ": " << status
                 << "; reconnecting";
    for (int i = 0; i < 10 && !stop_.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
  }
}

}  // namespace coupon::redis
