#pragma once

// A thin hiredis wrapper: binary-safe commands and Lua scripts, results as
// StatusOr, hiredis failures mapped to canonical codes in one place (ToStatus
// in connection.cc). This header includes no hiredis.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace coupon::redis {

class Connection;
class Pool;

// Filled from the --redis_* flags in main.cc; validated before use.
struct RedisConfig {
  std::string addr = "127.0.0.1:6379";  // host:port, or [ipv6]:port
  std::string password;                 // AUTH when set; never logged
  int pool_size = 16;
  absl::Duration connect_timeout = absl::Seconds(1);
  // Bounds the wait for a pooled connection and each socket read or write.
  absl::Duration command_timeout = absl::Milliseconds(500);

  // INVALID_ARGUMENT naming the flag: "--redis_addr: ...".
  absl::Status Validate() const;
};

// A parsed reply (a copy of hiredis' redisReply tree).
struct Reply {
  enum class Type { kNil, kInteger, kString, kStatus, kArray, kError };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;              // string, status or error text
  std::vector<Reply> elements;  // array
};

/// A Lua script known by its SHA1, computed locally. Immutable: any thread.
class Script {
 public:
  explicit Script(std::string source);

  const std::string& source() const { return source_; }
  // Lower-case hex, as SCRIPT LOAD and EVALSHA spell it.
  const std::string& sha1() const { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

/// Thread-safe: any thread may call Command/Eval concurrently; calls block
/// the caller. A bounded pool of connections, made lazily; one with an I/O
/// error is dropped, not reused. Destroyed by its owner after every call has
/// returned, which closes the sockets.
class Client {
 public:
  // Validates `config`; does not require Redis to be up.
  static absl::StatusOr<std::unique_ptr<Client>> Create(
      const RedisConfig& config);
  ~Client();

  // Binary-safe (redisCommandArgv). A Redis error reply is a Reply of type
  // kError, not a failed status. UNAVAILABLE when Redis cannot be reached or
  // does not answer within the timeouts; the command may or may not have run
  // then, so it is not retried here. UNAVAILABLE too while Redis is up but
  // cannot serve yet (LOADING its data after a restart, BUSY, ...): then the
  // command did not run.
  absl::StatusOr<Reply> Command(const std::vector<std::string>& argv);

  // EVALSHA; on NOSCRIPT (Redis restarted or flushed its scripts) loads the
  // script with SCRIPT LOAD and retries once. Script errors are kError.
  absl::StatusOr<Reply> Eval(const Script& script,
                             const std::vector<std::string>& keys,
                             const std::vector<std::string>& args);

 private:
  explicit Client(const RedisConfig& config);

  const absl::Duration command_timeout_;
  std::unique_ptr<Pool> pool_;
};

/// Runs commands without blocking its callers. What they queue meanwhile is
/// written to Redis at once on one connection of its own (pipelining), from
/// its own thread, and each caller's `done` runs on that thread with its
/// reply, in the order the calls were queued. So `done` must not block: it
/// holds up every call behind it. Failures are as Client's: UNAVAILABLE when
/// Redis cannot be reached or did not answer (the command may have run), and
/// at once when `max_queued` calls wait already or the client is being
/// destroyed (the command did not run). Eval reloads a script on NOSCRIPT;
/// the Script must outlive the call. Thread-safe; the destructor fails what
/// is still queued, then joins the thread.
class AsyncClient {
 public:
  using Done = std::function<void(absl::StatusOr<Reply>)>;

  // Validates `config`; does not require Redis to be up.
  static absl::StatusOr<std::unique_ptr<AsyncClient>> Create(
      const RedisConfig& config, size_t max_queued = 65536);
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  void Command(std::vector<std::string> argv, Done done);
  void Eval(const Script& script, const std::vector<std::string>& keys,
            const std::vector<std::string>& args, Done done);

 private:
  struct Call {
    std::vector<std::string> argv;
    const Script* script = nullptr;  // Eval's, for NOSCRIPT
    Done done;
  };
  AsyncClient(RedisConfig config, size_t max_queued);
  void Enqueue(Call call);
  void Run();
  // Sends `calls` on `conn` (connecting it first when needed) and answers them.
  void Send(std::unique_ptr<Connection>& conn, std::vector<Call>& calls);

  const RedisConfig config_;
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Call> queue_;  // guarded by mu_
  bool stop_ = false;        // guarded by mu_
  std::thread thread_;
};

/// Receives the messages of one pub/sub channel on a connection of its own,
/// from its own thread, and hands each payload to `on_message` there. It
/// reconnects after errors; messages published while it is disconnected are
/// not received (pub/sub keeps nothing). Start once; the destructor stops and
/// joins the thread.
class Subscriber {
 public:
  using OnMessage = std::function<void(const std::string& payload)>;

  Subscriber(RedisConfig config, std::string channel, OnMessage on_message);
  ~Subscriber();
  void Start();
  // True while subscribed.
  bool subscribed() const { return subscribed_.load(); }

 private:
  void Run();

  const RedisConfig config_;
  const std::string channel_;
  const OnMessage on_message_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> subscribed_{false};
  std::thread thread_;
};

}  // namespace coupon::redis
