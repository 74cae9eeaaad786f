// The metrics endpoint over a real loopback socket: what a scraper and a
// Kubernetes probe see, and what a broken or slow client gets.

#include "common/metrics/http_server.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/exposition.h"
#include "tests/testing/http_client.h"
#include "tests/testing/status_matchers.h"

namespace coupon::metrics {
namespace {

using ::coupon::testing::ConnectLoopback;
using ::coupon::testing::FindSample;
using ::coupon::testing::IsOk;
using ::coupon::testing::ParseExposition;
using ::coupon::testing::RawHttp;
using ::coupon::testing::ReadToEnd;
using ::coupon::testing::SendAll;
using ::coupon::testing::StatusIs;
using ::testing::HasSubstr;

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// Splits a raw response, checking the framing: status line, CRLF headers,
// and a Content-Length that matches the body (unless `head`).
Reply ParseReply(const std::string& raw, bool head = false) {
  Reply r;
  const size_t end = raw.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos) << "no end of head in: " << raw;
  if (end == std::string::npos) return r;
  std::vector<std::string> lines = absl::StrSplit(raw.substr(0, end), "\r\n");
  std::vector<std::string> status = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  EXPECT_EQ(status[0], "HTTP/1.1");
  EXPECT_TRUE(status.size() == 3 && absl::SimpleAtoi(status[1], &r.status)) << lines[0];
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(": ");
    EXPECT_NE(colon, std::string::npos) << lines[i];
    if (colon == std::string::npos) continue;
    r.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] = lines[i].substr(colon + 2);
  }
  r.body = raw.substr(end + 4);
  EXPECT_EQ(r.headers["connection"], "close");
  if (!head) {
    EXPECT_EQ(r.headers["content-length"], absl::StrCat(r.body.size()));
  }
  return r;
}

Reply Request(int port, const std::string& request, bool head = false) {
  return ParseReply(RawHttp(port, request), head);
}

Reply Get(int port, const std::string& path) {
  return Request(port, absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\n\r\n"));
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddCounter("test_scrapes_total", "Things counted.", {"kind"})
        .WithLabelValues({"a\"b"})
        .Inc(7);
    registry_.AddHistogram("test_latency_seconds", "Latency.", {}, LatencyBuckets())
        .WithLabelValues()
        .Observe(0.2);
    auto server = ServeMetrics("127.0.0.1", 0, [this] { return ready_.load(); },
                               &registry_);
    ASSERT_THAT(server, IsOk());
    server_ = std::move(*server);
    port_ = server_->port();
    ASSERT_GT(port_, 0);
  }

  Registry registry_;
  std::atomic<bool> ready_{false};
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(HttpServerTest, ServesTheExposition) {
  Reply r = Get(port_, "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  auto families = ParseExposition(r.body);
  EXPECT_EQ(FindSample(families, "test_scrapes_total", {{"kind", "a\"b"}}), 7);
  EXPECT_EQ(FindSample(families, "test_latency_seconds_count"), 1);
  // A query string does not change the path.
  EXPECT_EQ(Get(port_, "/metrics?name[]=x").status, 200);
  // HTTP/1.0 and bare newlines are fine too.
  EXPECT_EQ(Request(port_, "GET /metrics HTTP/1.0\n\n").status, 200);
}

TEST_F(HttpServerTest, HeadHasTheHeadersButNoBody) {
  Reply r = Request(port_, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", /*head=*/true);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_NE(r.headers["content-length"], "0");
}

TEST_F(HttpServerTest, HealthAndReadiness) {
  EXPECT_EQ(Get(port_, "/healthz").status, 200);
  EXPECT_EQ(Get(port_, "/readyz").status, 503);
  ready_.store(true);
  EXPECT_EQ(Get(port_, "/readyz").status, 200);
  ready_.store(false);
  EXPECT_EQ(Get(port_, "/readyz").status, 503);
}

TEST(HttpServer, WithoutReadinessThereAreNoProbes) {
  Registry registry;
  auto server = ServeMetrics("127.0.0.1", 0, nullptr, &registry);
  ASSERT_THAT(server, IsOk());
  EXPECT_EQ(Get((*server)->port(), "/readyz").status, 404);
  EXPECT_EQ(Get((*server)->port(), "/metrics").status, 200);
}

TEST_F(HttpServerTest, BadRequestsGetTheirStatus) {
  EXPECT_EQ(Get(port_, "/nope").status, 404);
  Reply post = Request(port_, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD");
  EXPECT_EQ(Request(port_, "hello\r\n\r\n").status, 400);
  EXPECT_EQ(Request(port_, "GET /metrics\r\n\r\n").status, 400);
  EXPECT_EQ(Request(port_, "GET  /metrics HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(Request(port_, "GET http://x/metrics HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(Request(port_, "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n").status, 400);
  EXPECT_EQ(Request(port_, "G(T /metrics HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(Request(port_, "GET /metrics HTTP/2.0\r\n\r\n").status, 505);
  EXPECT_EQ(Request(port_, "\r\n\r\n").status, 400);
  Reply huge = Request(port_, absl::StrCat("GET /metrics HTTP/1.1\r\nX-Big: ",
                                           std::string(20000, 'x'), "\r\n\r\n"));
  EXPECT_EQ(huge.status, 431);
  // The server still serves after all that.
  EXPECT_EQ(Get(port_, "/metrics").status, 200);
}

TEST_F(HttpServerTest, RequestArrivingInPieces) {
  const int fd = ConnectLoopback(port_);
  ASSERT_GE(fd, 0);
  for (char c : std::string("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) {
    SendAll(fd, std::string(1, c));
    absl::SleepFor(absl::Milliseconds(2));
  }
  Reply r = ParseReply(ReadToEnd(fd));
  close(fd);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
}

TEST_F(HttpServerTest, SilentOrVanishingClientsDoNotHoldOthersUp) {
  const int silent = ConnectLoopback(port_);  // connects and says nothing
  ASSERT_GE(silent, 0);
  const int half = ConnectLoopback(port_);  // starts a request and leaves
  SendAll(half, "GET /met");
  close(half);
  EXPECT_EQ(Get(port_, "/metrics").status, 200);
  // The silent one is cut off after the read timeout, without an answer.
  EXPECT_EQ(ReadToEnd(silent), "");
  close(silent);
}

TEST_F(HttpServerTest, ConcurrentScrapesWhileMetricsChange) {
  Counter& moving = registry_.AddCounter("test_moving_total", "m").WithLabelValues();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load()) moving.Inc();
  });
  std::vector<std::thread> scrapers;
  std::atomic<int> ok{0};
  constexpr int kScrapers = 8, kEach = 25;
  for (int t = 0; t < kScrapers; ++t) {
    scrapers.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        Reply r = Get(port_, "/metrics");
        if (r.status != 200) continue;
        auto families = ParseExposition(r.body);
        if (FindSample(families, "test_moving_total")) ok++;
      }
    });
  }
  for (auto& s : scrapers) s.join();
  stop.store(true);
  writer.join();
  EXPECT_EQ(ok.load(), kScrapers * kEach);
}

TEST(HttpServer, ABusyPortIsAnError) {
  Registry registry;
  auto first = ServeMetrics("127.0.0.1", 0, nullptr, &registry);
  ASSERT_THAT(first, IsOk());
  auto second = ServeMetrics("127.0.0.1", (*first)->port(), nullptr, &registry);
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot listen")));
  EXPECT_THAT(ServeMetrics("localhost", 0, nullptr, &registry),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HttpServer, StopsWithConnectionsOpen) {
  Registry registry;
  auto server = ServeMetrics("127.0.0.1", 0, nullptr, &registry);
  ASSERT_THAT(server, IsOk());
  const int port = (*server)->port();
  const int idle = ConnectLoopback(port);
  ASSERT_GE(idle, 0);
  server->reset();  // returns although a client is connected
  EXPECT_EQ(ReadToEnd(idle), "");
  close(idle);
  EXPECT_LT(ConnectLoopback(port), 0) << "still listening after the destructor";
}

}  // namespace
}  // namespace coupon::metrics
