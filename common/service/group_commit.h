#pragma once

// GroupCommit: many callers' items handled together by one thread, so that
// they share one statement and one commit. A commit costs PostgreSQL about
// as much CPU as a few dozen rows (docs/design.md), so at ordinary rates an
// item waits a little for company rather than pay one alone.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace coupon::service {

struct GroupCommitOptions {
  // Items waiting at most; past it Add refuses.
  size_t max_waiting = 50000;
  // Items in one round at most.
  size_t max_batch = 1000;
  // A round starts at most this long after its oldest item arrived (zero:
  // as soon as the thread is free), or once max_batch wait.
  absl::Duration batch_wait = absl::Milliseconds(1);
};

/// Owns one thread from the constructor to the destructor. Each round it
/// takes what waits (see GroupCommitOptions) and hands it to `handle`, on
/// that thread; the next round's items gather meanwhile. The destructor
/// hands over what still waits with `stopping` true, then joins. Add may be
/// called from any thread.
template <typename Item>
class GroupCommit {
 public:
  using Handle = std::function<void(std::vector<Item>& round, bool stopping)>;

  GroupCommit(GroupCommitOptions options, Handle handle)
      : options_(options), handle_(std::move(handle)), thread_([this] { Run(); }) {}

  ~GroupCommit() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // False, and `item` untouched, when max_waiting wait or it is stopping.
  bool Add(Item& item) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || waiting_.size() >= options_.max_waiting) return false;
    waiting_.push_back(std::move(item));
    if (waiting_.size() == 1) {
      oldest_since_ = absl::Now();
      cv_.notify_one();
    } else if (waiting_.size() == options_.max_batch) {
      cv_.notify_one();
    }
    return true;
  }

 private:
  void Run() {
    for (;;) {
      std::vector<Item> round;
      bool stopping;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
        if (options_.batch_wait > absl::ZeroDuration()) {
          cv_.wait_until(lock, absl::ToChronoTime(oldest_since_ + options_.batch_wait),
                         [&] { return stopping_ || waiting_.size() >= options_.max_batch; });
        }
        stopping = stopping_;
        while (!waiting_.empty() && (stopping || round.size() < options_.max_batch)) {
          round.push_back(std::move(waiting_.front()));
          waiting_.pop_front();
        }
        // What is left waited through this round: its time is up.
        if (!waiting_.empty()) oldest_since_ = absl::InfinitePast();
      }
      if (round.empty()) return;  // stopping, nothing left
      handle_(round, stopping);
      if (stopping) return;
    }
  }

  const GroupCommitOptions options_;
  const Handle handle_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> waiting_;                         // guarded by mu_
  absl::Time oldest_since_ = absl::InfinitePast();  // guarded by mu_
  bool stopping_ = false;                            // guarded by mu_
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace coupon::service
