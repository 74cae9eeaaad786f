#include "common/redis/redis.h"

#include <algorithm>
#include <iterator>
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

std::vector<std::string> EvalArgv(const Script& script, const std::vector<std::string>& keys,
                                  const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(script.sha1());
  argv.push_back(absl::StrCat(keys.size()));
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

bool IsNoScript(const absl::StatusOr<Reply>& reply) {
  return reply.ok() && reply->type == Reply::Type::kError &&
         absl::StartsWith(reply->str, "NOSCRIPT");
}

// The largest pipeline written at once; more waits for the next round.
constexpr size_t kMaxPipeline = 1024;

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
  const std::vector<std::string> argv = EvalArgv(script, keys, args);
  auto lease = pool_->Acquire(absl::Now() + command_timeout_);
  if (!lease.ok()) return lease.status();
  auto reply = (*lease)->Command(argv);
  if (!IsNoScript(reply)) return reply;
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

absl::StatusOr<std::unique_ptr<AsyncClient>> AsyncClient::Create(
    const RedisConfig& config, size_t max_queued) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (max_queued < 1) return absl::InvalidArgumentError("redis: max_queued must be positive");
  return std::unique_ptr<AsyncClient>(new AsyncClient(config, max_queued));
}

AsyncClient::AsyncClient(RedisConfig config, size_t max_queued)
    : config_(std::move(config)), max_queued_(max_queued) {
  thread_ = std::thread([this] { Run(); });
}

AsyncClient::~AsyncClient() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void AsyncClient::Command(std::vector<std::string> argv, Done done) {
  if (argv.empty()) return done(absl::InvalidArgumentError("redis: empty command"));
  Enqueue({std::move(argv), nullptr, std::move(done)});
}

void AsyncClient::Eval(const Script& script, const std::vector<std::string>& keys,
                       const std::vector<std::string>& args, Done done) {
  Enqueue({EvalArgv(script, keys, args), &script, std::move(done)});
}

void AsyncClient::Enqueue(Call call) {
  absl::Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) {
      refused = absl::UnavailableError("redis: the client is shutting down");
    } else if (queue_.size() >= max_queued_) {
      refused = absl::UnavailableError(absl::StrCat(
          "redis: ", max_queued_, " calls to ", config_.addr, " wait already"));
    } else {
      queue_.push_back(std::move(call));
      if (queue_.size() == 1) wake_.notify_one();
      return;
    }
  }
  call.done(refused);
}

void AsyncClient::Run() {
  std::unique_ptr<Connection> conn;
  std::vector<Call> calls;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) break;
      const size_t n = std::min(queue_.size(), kMaxPipeline);
      calls.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + n));
      queue_.erase(queue_.begin(), queue_.begin() + n);
    }
    Send(conn, calls);
    calls.clear();
  }
  std::vector<Call> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (Call& c : left) c.done(absl::UnavailableError("redis: the client is shutting down"));
}

void AsyncClient::Send(std::unique_ptr<Connection>& conn, std::vector<Call>& calls) {
  if (conn != nullptr && !conn->Reusable()) conn.reset();
  if (conn == nullptr) {
    absl::StatusOr<std::unique_ptr<Connection>> made = Connection::Connect(config_);
    if (!made.ok()) {
      for (Call& c : calls) c.done(made.status());
      return;
    }
    conn = *std::move(made);
  }
  std::vector<std::vector<std::string>> commands;
  commands.reserve(calls.size());
  for (const Call& c : calls) commands.push_back(c.argv);
  absl::StatusOr<std::vector<absl::StatusOr<Reply>>> replies = conn->Pipeline(commands);
  if (!replies.ok()) {
    conn.reset();  // a late reply must not answer the next round
    for (Call& c : calls) c.done(replies.status());
    return;
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    absl::StatusOr<Reply>& reply = (*replies)[i];
    if (calls[i].script != nullptr && IsNoScript(reply) && conn->healthy()) {
      // Redis restarted or flushed its scripts since we last ran this one.
      absl::StatusOr<Reply> loaded = conn->Command({"SCRIPT", "LOAD", calls[i].script->source()});
      reply = loaded.ok() && loaded->type != Reply::Type::kError
                  ? conn->Command(calls[i].argv)
                  : std::move(loaded);
    }
    calls[i].done(std::move(reply));
  }
  if (!conn->healthy()) conn.reset();
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
