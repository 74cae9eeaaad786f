#pragma once

// Runs a built binary as a child process, for tests that need the real
// process: its signals, its exit code, its ports.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace coupon::testing {

/// One child process, its stdout and stderr appended to a log file. The
/// destructor kills it (SIGKILL) if it still runs and reaps it. Use from one
/// thread.
class ChildProcess {
 public:
  // Starts `binary` with `args` (argv[1..]) and this process's environment.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::string& binary, const std::vector<std::string>& args,
      const std::string& log_path);
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  void Signal(int signal) const;
  // True until it has exited (and been reaped).
  bool Running();
  // Waits for the exit: the exit code, or 128 + the signal that ended it.
  // DEADLINE_EXCEEDED when it still runs after `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // The last `lines` lines of its log, for failure messages.
  std::string LogTail(int lines = 30) const;

 private:
  ChildProcess(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  int exit_status_ = -1;  // set once reaped
};

}  // namespace coupon::testing
