#include "tests/testing/own_redis_clients.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace coupon::testing {
namespace {

// The inodes of this process's open sockets.
std::set<std::string> OwnSocketInodes() {
  std::set<std::string> inodes;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return inodes;
  while (dirent* e = readdir(dir)) {
    char target[128];
    const std::string path = absl::StrCat("/proc/self/fd/", e->d_name);
    const ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    absl::string_view link(target, static_cast<size_t>(n));
    if (absl::ConsumePrefix(&link, "socket:[") && absl::ConsumeSuffix(&link, "]")) {
      inodes.emplace(link);
    }
  }
  closedir(dir);
  return inodes;
}

// "0100007F:D431" (as /proc/net/tcp spells it) as "127.0.0.1:54321".
std::string Ipv4Address(absl::string_view hex) {
  const std::vector<absl::string_view> parts = absl::StrSplit(hex, ':');
  uint32_t ip = 0, port = 0;
  if (parts.size() != 2 || !absl::SimpleHexAtoi(parts[0], &ip) ||
      !absl::SimpleHexAtoi(parts[1], &port)) {
    return "";
  }
  // Stored in host (little-endian) order: the first octet is the low byte.
  return absl::StrCat(ip & 0xff, ".", (ip >> 8) & 0xff, ".", (ip >> 16) & 0xff, ".",
                      ip >> 24, ":", port);
}

// The local addresses of this process's TCP sockets.
std::set<std::string> OwnLocalAddresses() {
  const std::set<std::string> inodes = OwnSocketInodes();
  std::set<std::string> addresses;
  std::ifstream table("/proc/self/net/tcp");
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    std::istringstream fields(line);
    std::string sl, local, remote, st, queues, timer, retransmits, uid, timeout, inode;
    if (fields >> sl >> local >> remote >> st >> queues >> timer >> retransmits >> uid >>
        timeout >> inode) {
      if (inodes.count(inode)) addresses.insert(Ipv4Address(local));
    }
  }
  return addresses;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> OwnRedisClients(redis::Client& redis,
                                                     const std::string& type) {
  absl::StatusOr<redis::Reply> list = redis.Command({"CLIENT", "LIST", "TYPE", type});
  if (!list.ok()) return list.status();
  if (list->type != redis::Reply::Type::kString) {
    return absl::FailedPreconditionError(absl::StrCat("CLIENT LIST: ", list->str));
  }
  const std::set<std::string> own = OwnLocalAddresses();
  std::vector<int64_t> ids;
  // One line per client: "id=7 addr=127.0.0.1:54321 laddr=... name= ...".
  for (absl::string_view client : absl::StrSplit(list->str, '\n', absl::SkipWhitespace())) {
    int64_t id = -1;
    std::string addr;
    for (absl::string_view field : absl::StrSplit(client, ' ')) {
      if (absl::ConsumePrefix(&field, "id=")) {
        if (!absl::SimpleAtoi(field, &id)) id = -1;
      } else if (absl::ConsumePrefix(&field, "addr=")) {
        addr = std::string(field);
      }
    }
    if (id >= 0 && own.count(addr)) ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<int> KillOwnRedisClients(redis::Client& redis, const std::string& type) {
  absl::StatusOr<std::vector<int64_t>> ids = OwnRedisClients(redis, type);
  if (!ids.ok()) return ids.status();
  int killed = 0;
  for (int64_t id : *ids) {
    absl::StatusOr<redis::Reply> r = redis.Command({"CLIENT", "KILL", "ID", absl::StrCat(id)});
    if (!r.ok()) return r.status();
    if (r->type == redis::Reply::Type::kInteger) killed += static_cast<int>(r->integer);
  }
  return killed;
}

}  // namespace coupon::testing
