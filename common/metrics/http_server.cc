#include "common/metrics/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace coupon::metrics {
namespace {

constexpr size_t kMaxConnections = 32;
constexpr size_t kMaxRequestHead = 8192;
constexpr absl::Duration kReadTimeout = absl::Seconds(5);
constexpr absl::Duration kWriteTimeout = absl::Seconds(10);
// After the response, what the client still sends is read and dropped for a
// while, so closing does not reset the connection under the response.
constexpr absl::Duration kDrainTimeout = absl::Seconds(1);

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Internal Server Error";
  }
}

std::string Serialize(const HttpResponse& r, bool head_only) {
  std::string out = absl::StrCat("HTTP/1.1 ", r.status, " ", Reason(r.status),
                                 "\r\nContent-Type: ", r.content_type,
                                 "\r\nContent-Length: ", r.body.size(),
                                 "\r\nConnection: close\r\n");
  if (r.status == 405) out += "Allow: GET, HEAD\r\n";
  out += "\r\n";
  if (!head_only) out += r.body;
  return out;
}

HttpResponse Error(int status, absl::string_view why) {
  return HttpResponse{status, "text/plain; charset=utf-8", absl::StrCat(why, "\n")};
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("!#$%&'*+-.^_`|~", c)) {
      return false;
    }
  }
  return true;
}

// Where the request head ends (after its empty line), or npos.
size_t HeadEnd(const std::string& in) {
  const size_t crlf = in.find("\r\n\r\n");
  const size_t lf = in.find("\n\n");  // bare newlines, or "\r\n\n"
  return std::min(crlf == std::string::npos ? crlf : crlf + 4,
                  lf == std::string::npos ? lf : lf + 2);
}

}  // namespace

struct HttpServer::Conn {
  enum class State { kReading, kWriting, kDraining };
  int fd = -1;
  State state = State::kReading;
  std::string in;
  std::string out;
  size_t written = 0;
  absl::Time deadline;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& host, int port, std::map<std::string, HttpHandler> routes) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port must be 0..65535, got ", port));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  addrinfo* addrs = nullptr;
  if (int rc = getaddrinfo(host.c_str(), absl::StrCat(port).c_str(), &hints, &addrs);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", host, "\" is not a numeric address: ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> free_addrs(addrs, freeaddrinfo);

  std::unique_ptr<HttpServer> self(new HttpServer());
  self->routes_ = std::move(routes);
  const int fd = socket(addrs->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  self->listen_fd_ = fd;  // closed by the destructor from here on
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, addrs->ai_addr, addrs->ai_addrlen) != 0 || listen(fd, 64) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port,
                                               ": ", strerror(errno)));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  self->port_ = ntohs(bound.ss_family == AF_INET6
                          ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  self->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (self->wake_fd_ < 0) {
    return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  }
  self->thread_ = std::thread([s = self.get()] { s->Loop(); });
  return self;
}

HttpServer::~HttpServer() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof(one)) < 0) PLOG(ERROR) << "http: wake";
    thread_.join();
  }
  if (wake_fd_ >= 0) close(wake_fd_);
  if (listen_fd_ >= 0) close(listen_fd_);
}

std::string HttpServer::Respond(const std::string& head) const {
  std::vector<absl::string_view> lines = absl::StrSplit(head, '\n');
  for (absl::string_view& line : lines) line = absl::StripSuffix(line, "\r");
  // A client may send empty lines before the request (RFC 9112, 2.2).
  size_t first = 0;
  while (first < lines.size() && lines[first].empty()) ++first;
  if (first == lines.size()) return Serialize(Error(400, "empty request"), false);

  std::vector<absl::string_view> parts = absl::StrSplit(lines[first], ' ');
  if (parts.size() != 3 || !IsToken(parts[0]) || parts[1].empty()) {
    return Serialize(Error(400, "malformed request line"), false);
  }
  const absl::string_view method = parts[0], target = parts[1], version = parts[2];
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return absl::StartsWith(version, "HTTP/")
               ? Serialize(Error(505, "only HTTP/1.0 and HTTP/1.1"), false)
               : Serialize(Error(400, "malformed request line"), false);
  }
  for (size_t i = first + 1; i < lines.size(); ++i) {
    if (lines[i].empty()) break;  // end of the head
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos || !IsToken(lines[i].substr(0, colon))) {
      return Serialize(Error(400, "malformed header line"), false);
    }
  }
  if (target.front() != '/') {
    return Serialize(Error(400, "the target must be a path"), false);
  }
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    return Serialize(Error(405, "only GET and HEAD"), false);
  }
  const absl::string_view path = target.substr(0, target.find('?'));
  auto route = routes_.find(std::string(path));
  if (route == routes_.end()) {
    return Serialize(Error(404, absl::StrCat("no such path: ", path)), head_only);
  }
  return Serialize(route->second(), head_only);
}

void HttpServer::Loop() {
  std::vector<std::unique_ptr<Conn>> conns;
  auto close_conn = [&](size_t i) {
    close(conns[i]->fd);
    conns.erase(conns.begin() + i);
  };
  std::vector<pollfd> fds;
  while (true) {
    const absl::Time now = absl::Now();
    absl::Duration wait = absl::Seconds(1);
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    // At capacity the listening socket is left alone: new clients wait in
    // the backlog.
    fds.push_back({listen_fd_, static_cast<short>(conns.size() < kMaxConnections ? POLLIN : 0), 0});
    for (const auto& c : conns) {
      fds.push_back({c->fd, static_cast<short>(c->state == Conn::State::kWriting ? POLLOUT : POLLIN), 0});
      wait = std::min(wait, std::max(absl::ZeroDuration(), c->deadline - now));
    }
    const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(wait)) + 1;
    if (poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      PLOG(ERROR) << "http: poll";
      break;
    }
    if (fds[0].revents != 0) break;  // stopping

    // Connections first (fds[2 + i] is conns[i]); new ones are added after.
    for (size_t i = conns.size(); i-- > 0;) {
      Conn& c = *conns[i];
      const short ev = fds[2 + i].revents;
      if (c.state == Conn::State::kWriting && (ev & (POLLOUT | POLLERR | POLLHUP))) {
        const ssize_t n = send(c.fd, c.out.data() + c.written,
                               c.out.size() - c.written, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
          close_conn(i);
          continue;
        }
        if (n > 0) c.written += static_cast<size_t>(n);
        if (c.written == c.out.size()) {
          shutdown(c.fd, SHUT_WR);
          c.state = Conn::State::kDraining;
          c.deadline = absl::Now() + kDrainTimeout;
        }
      } else if (c.state != Conn::State::kWriting &&
                 (ev & (POLLIN | POLLERR | POLLHUP))) {
        char buf[4096];
        const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          close_conn(i);  // the client is gone (or done, when draining)
          continue;
        }
        if (n < 0 || c.state == Conn::State::kDraining) continue;
        c.in.append(buf, static_cast<size_t>(n));
        const size_t end = HeadEnd(c.in);
        if (end == std::string::npos && c.in.size() <= kMaxRequestHead) continue;
        c.out = end == std::string::npos || end > kMaxRequestHead
                    ? Serialize(Error(431, "request head too large"), false)
                    : Respond(c.in.substr(0, end));
        c.in.clear();
        c.state = Conn::State::kWriting;
        c.deadline = absl::Now() + kWriteTimeout;
      }
    }
    const absl::Time after = absl::Now();
    for (size_t i = conns.size(); i-- > 0;) {
      if (conns[i]->deadline <= after) close_conn(i);  // slow or silent client
    }

    if (fds[1].revents & POLLIN) {
      while (conns.size() < kMaxConnections) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;  // EAGAIN: none left; other errors: next round
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        c->deadline = after + kReadTimeout;
        conns.push_back(std::move(c));
      }
    }
  }
  for (const auto& c : conns) close(c->fd);
}

absl::StatusOr<std::unique_ptr<HttpServer>> ServeMetrics(
    const std::string& host, int port, std::function<bool()> ready,
    const Registry* registry) {
  std::map<std::string, HttpHandler> routes;
  routes["/metrics"] = [registry] {
    return HttpResponse{200, kExpositionContentType, registry->Render()};
  };
  if (ready) {
    routes["/healthz"] = [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
    routes["/readyz"] = [ready = std::move(ready)] {
      return ready() ? HttpResponse{200, "text/plain; charset=utf-8", "ready\n"}
                     : HttpResponse{503, "text/plain; charset=utf-8", "not ready\n"};
    };
  }
  return HttpServer::Start(host, port, std::move(routes));
}

}  // namespace coupon::metrics
