#include "bench/flashsale/procstat.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace coupon::bench {
namespace {

struct StatLine {
  int ppid = 0;
  int64_t ticks = 0;  // utime + stime + cutime + cstime
};

std::optional<StatLine> ReadStat(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  // The command name is in parentheses and may hold spaces: fields after the
  // last ')' start at field 3 (state).
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(line).substr(close + 2), ' ');
  if (f.size() < 15) return std::nullopt;
  StatLine s;
  int64_t utime = 0, stime = 0, cutime = 0, cstime = 0;
  if (!absl::SimpleAtoi(f[1], &s.ppid) || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime) || !absl::SimpleAtoi(f[13], &cutime) ||
      !absl::SimpleAtoi(f[14], &cstime)) {
    return std::nullopt;
  }
  s.ticks = utime + stime + cutime + cstime;
  return s;
}

absl::StatusOr<int> ParsePid(absl::string_view text, absl::string_view what) {
  int pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) || pid <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": \"", text, "\" is not a pid"));
  }
  return pid;
}

}  // namespace

absl::StatusOr<std::vector<NamedPid>> ParsePidList(absl::string_view pids,
                                                   absl::string_view pid_files) {
  std::vector<NamedPid> out;
  for (int pass = 0; pass < 2; ++pass) {
    const absl::string_view list = pass == 0 ? pids : pid_files;
    const absl::string_view flag = pass == 0 ? "--pids" : "--pid_files";
    for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(item, absl::MaxSplits('=', 1));
      if (kv.first.empty() || kv.second.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": \"", item, "\" is not name=value"));
      }
      std::string value(kv.second);
      if (pass == 1) {
        std::ifstream in(value);
        std::string content;
        if (!in || !std::getline(in, content)) {
          return absl::NotFoundError(
              absl::StrCat(flag, ": cannot read pid file ", value));
        }
        value = content;
      }
      absl::StatusOr<int> pid = ParsePid(value, absl::StrCat(flag, " ", kv.first));
      if (!pid.ok()) return pid.status();
      out.push_back({std::string(kv.first), *pid});
    }
  }
  return out;
}

absl::StatusOr<double> ProcessTreeCpuSeconds(int root) {
  std::map<int, StatLine> all;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return absl::UnavailableError("cannot list /proc");
  while (dirent* e = readdir(dir)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    if (std::optional<StatLine> s = ReadStat(pid)) all[pid] = *s;
  }
  closedir(dir);
  if (all.count(root) == 0) {
    return absl::NotFoundError(absl::StrCat("process ", root, " is gone"));
  }
  std::multimap<int, int> children;
  for (const auto& [pid, s] : all) children.emplace(s.ppid, pid);
  int64_t ticks = 0;
  std::vector<int> todo = {root};
  while (!todo.empty()) {
    const int pid = todo.back();
    todo.pop_back();
    ticks += all[pid].ticks;
    auto [lo, hi] = children.equal_range(pid);
    for (auto it = lo; it != hi; ++it) todo.push_back(it->second);
  }
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

absl::StatusOr<double> MachineBusyCpuSeconds() {
  std::ifstream in("/proc/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return absl::UnavailableError("no /proc/stat");
  // cpu user nice system idle iowait irq softirq steal ...
  std::vector<absl::string_view> f =
      absl::StrSplit(line, ' ', absl::SkipWhitespace());
  if (f.size() < 9 || f[0] != "cpu") {
    return absl::UnavailableError("unexpected /proc/stat");
  }
  int64_t busy = 0;
  for (size_t i : {1, 2, 3, 6, 7, 8}) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(f[i], &v)) return absl::UnavailableError("bad /proc/stat");
    busy += v;
  }
  return static_cast<double>(busy) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace coupon::bench
