#pragma once

// The hiredis side of the Client: one connection, and the bounded pool that
// hands connections out. Internal to redis_lib; use Client (redis.h).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/service/bounded_pool.h"
#include "common/redis/redis.h"

struct redisContext;

namespace coupon::redis {

// Splits "host:port" or "[v6]:port"; INVALID_ARGUMENT says what is wrong.
absl::Status ParseAddr(const std::string& addr, std::string* host, int* port);

/// One connection. Not thread-safe: one user at a time (the Pool hands it
/// out); destroyed by its owner, which closes the socket.
class Connection {
 public:
  // Connects within `config.connect_timeout`, sets the socket timeouts to
  // `config.command_timeout` and sends AUTH when a password is set.
  // UNAVAILABLE when Redis cannot be reached; `config` must be valid.
  static absl::StatusOr<std::unique_ptr<Connection>> Connect(
      const RedisConfig& config);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A Redis error reply is a Reply of type kError, except the replies of a
  // Redis that cannot serve yet (LOADING after a restart, BUSY, MASTERDOWN,
  // TRYAGAIN): UNAVAILABLE, the command did not run. Any other failed status
  // means the connection is broken (see healthy()).
  absl::StatusOr<Reply> Command(const std::vector<std::string>& argv);

  // Redis pipelining: writes every command at once, then reads their
  // replies in order. Each reply is what Command would have answered. A
  // failed status for the whole call means the connection broke: how many
  // of the commands ran is unknown.
  absl::StatusOr<std::vector<absl::StatusOr<Reply>>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);

  // Waits up to `wait` for the next reply the server pushes (pub/sub
  // messages after SUBSCRIBE). nullopt when none came; a failed status means
  // the connection is broken.
  absl::StatusOr<std::optional<Reply>> Receive(absl::Duration wait);

  // False after an I/O or protocol error: the reply stream may be out of
  // step (a late reply to a timed-out command), so the socket is not reused.
  bool healthy() const;
  // Whether the server closed the socket while it sat idle (a restart, a
  // CLIENT KILL, its idle timeout). Non-blocking.
  bool PeerClosed() const;
  bool Reusable() const { return healthy() && !PeerClosed(); }

 private:
  // A reply of hiredis' (owned, freed here) as Command answers it.
  absl::StatusOr<Reply> FromRaw(void* raw, int errnum);

  Connection(redisContext* ctx, std::string addr,
             absl::Duration command_timeout)
      : ctx_(ctx), addr_(std::move(addr)), command_timeout_(command_timeout) {}

  redisContext* ctx_;
  const std::string addr_;
  const absl::Duration command_timeout_;
};

/// A bounded pool of Connections (common/service/bounded_pool.h). Thread-safe; a
/// broken connection, or an idle one the server closed, is dropped instead of
/// reused. Outlives every Lease it hands out. Acquire fails UNAVAILABLE when
/// every slot stays busy until the deadline or connecting fails.
class Pool : public BoundedPool<Connection> {
 public:
  explicit Pool(RedisConfig config);
};

}  // namespace coupon::redis
