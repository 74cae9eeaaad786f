#pragma once

// A tiny HTTP/1.1 server for the operational endpoints (/metrics, /healthz,
// /readyz): GET and HEAD only, one request per connection (Connection:
// close), no request bodies. Not a general web server.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/metrics/metrics.h"

namespace coupon::metrics {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};
using HttpHandler = std::function<HttpResponse()>;

/// Serves `routes` (exact paths; a query string is ignored) on a thread of
/// its own, which also runs the handlers: they must be quick and safe to call
/// from that thread. Connections are served concurrently (non-blocking, one
/// poll loop), at most 32 at a time, each cut off after a few seconds. Start
/// from any thread; the destructor stops the thread and closes every
/// connection, so the handlers' captures must outlive the server.
class HttpServer {
 public:
  // `host`: a numeric IPv4 or IPv6 address ("0.0.0.0" for every interface).
  // `port` 0 picks a free port (see port()). UNAVAILABLE when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& host, int port, std::map<std::string, HttpHandler> routes);
  ~HttpServer();

  int port() const { return port_; }

 private:
  struct Conn;
  HttpServer() = default;
  void Loop();
  // Parses one request head and builds the whole response (head and body).
  std::string Respond(const std::string& head) const;

  std::map<std::string, HttpHandler> routes_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: the destructor's stop signal
  int port_ = 0;
  std::thread thread_;
};

// A binary's operational endpoint: GET /metrics renders `registry`. With
// `ready` set (binaries without a gRPC health service) it also answers
// /healthz (200 while the process runs) and /readyz (200 while ready()
// returns true, else 503).
absl::StatusOr<std::unique_ptr<HttpServer>> ServeMetrics(
    const std::string& host, int port, std::function<bool()> ready = nullptr,
    const Registry* registry = &Registry::Default());

}  // namespace coupon::metrics
