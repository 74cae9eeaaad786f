#pragma once

// A bounded, lazily filled pool of connections, shared by the PostgreSQL and
// Redis clients. `Conn` needs `bool Reusable() const`: false for a connection
// that broke (I/O error, server closed it), which is then dropped instead of
// handed out again.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace coupon {

/// Thread-safe. Connections are made on demand, outside the lock, up to
/// `max_size`; a caller waits for a free one until its deadline. Outlives
/// every Lease it hands out.
template <typename Conn>
class BoundedPool {
 public:
  // Makes one connection, failing within its own timeout (at the latest by
  // `deadline` where it can).
  using Connector =
      std::function<absl::StatusOr<std::unique_ptr<Conn>>(absl::Time deadline)>;
  // The error for a caller that waited until its deadline for a connection.
  using BusyError = std::function<absl::Status()>;

  BoundedPool(int max_size, Connector connect, BusyError busy)
      : max_size_(max_size), connect_(std::move(connect)), busy_(std::move(busy)) {}

  /// Returns its connection to the pool when destroyed. One thread at a time.
  class Lease {
   public:
    Lease(BoundedPool* pool, std::unique_ptr<Conn> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (conn_) pool_->Release(std::move(conn_));
    }
    Conn* operator->() { return conn_.get(); }
    Conn& operator*() { return *conn_; }

   private:
    BoundedPool* pool_;
    std::unique_ptr<Conn> conn_;
  };

  absl::StatusOr<Lease> Acquire(absl::Time deadline) {
    std::vector<std::unique_ptr<Conn>> dropped;  // closed after unlocking
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        while (!idle_.empty()) {
          std::unique_ptr<Conn> conn = std::move(idle_.back());
          idle_.pop_back();
          if (conn->Reusable()) return Lease(this, std::move(conn));
          --open_;
          dropped.push_back(std::move(conn));
        }
        if (open_ < max_size_) break;
        if (cv_.wait_until(lock, absl::ToChronoTime(deadline)) ==
                std::cv_status::timeout &&
            idle_.empty() && open_ >= max_size_) {
          return busy_();
        }
      }
      ++open_;  // reserve a slot; connect outside the lock
    }
    absl::StatusOr<std::unique_ptr<Conn>> conn = connect_(deadline);
    if (!conn.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      --open_;
      cv_.notify_one();
      return conn.status();
    }
    return Lease(this, std::move(*conn));
  }

 private:
  void Release(std::unique_ptr<Conn> conn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (conn->Reusable()) {
        idle_.push_back(std::move(conn));
      } else {
        --open_;
      }
      cv_.notify_one();
    }
    // A dropped connection (still owned here) closes outside the lock.
  }

  const int max_size_;
  const Connector connect_;
  const BusyError busy_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  int open_ = 0;
};

}  // namespace coupon
