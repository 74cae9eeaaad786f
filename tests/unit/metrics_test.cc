// The registry's exposition, read back by a strict parser
// (tests/testing/exposition.h), and its arithmetic under concurrency.

#include "common/metrics/metrics.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/exposition.h"

namespace coupon::metrics {
namespace {

using ::coupon::testing::FindSample;
using ::coupon::testing::LabelSet;
using ::coupon::testing::ParseExposition;
using ::testing::HasSubstr;

TEST(Metrics, RenderedTextParsesWithEveryRule) {
  Registry r;
  CounterFamily& requests = r.AddCounter(
      "test_requests_total", "Requests by outcome.", {"outcome", "code"});
  requests.WithLabelValues({"accepted", "OK"}).Inc();
  requests.WithLabelValues({"error", "UNAVAILABLE"}).Inc(3);
  r.AddGauge("test_open_streams", "Open streams.").WithLabelValues().Set(4);
  HistogramFamily& latency = r.AddHistogram(
      "test_latency_seconds", "Latency.", {"outcome"}, LatencyBuckets());
  latency.WithLabelValues({"accepted"}).Observe(0.003);
  latency.WithLabelValues({"accepted"}).Observe(42);
  latency.WithLabelValues({"error"}).Observe(0.0001);
  r.AddHistogram("test_empty_seconds", "Never observed.", {}, {1, 2});

  const std::string text = r.Render();
  auto families = ParseExposition(text);
  ASSERT_FALSE(::testing::Test::HasFailure()) << text;
  ASSERT_EQ(families.size(), 4u);
  // Families in name order, each with HELP and TYPE.
  EXPECT_EQ(families[0].name, "test_empty_seconds");
  EXPECT_EQ(families[0].type, "histogram");
  EXPECT_EQ(families[1].name, "test_latency_seconds");
  EXPECT_EQ(families[2].name, "test_open_streams");
  EXPECT_EQ(families[2].type, "gauge");
  EXPECT_EQ(families[3].name, "test_requests_total");
  EXPECT_EQ(families[3].type, "counter");
  EXPECT_EQ(families[3].help, "Requests by outcome.");

  EXPECT_EQ(FindSample(families, "test_requests_total",
                       {{"outcome", "error"}, {"code", "UNAVAILABLE"}}),
            3);
  EXPECT_EQ(FindSample(families, "test_open_streams"), 4);
  EXPECT_EQ(FindSample(families, "test_latency_seconds_count", {{"outcome", "accepted"}}),
            2);
  EXPECT_EQ(FindSample(families, "test_empty_seconds_count"), 0);
  EXPECT_THAT(text, HasSubstr("# TYPE test_latency_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr(
      "test_latency_seconds_bucket{outcome=\"accepted\",le=\"+Inf\"} 2\n"));
}

TEST(Metrics, HistogramBucketsAreCumulativeAndInclusive) {
  Registry r;
  Histogram& h =
      r.AddHistogram("test_seconds", "h", {}, {0.001, 0.01, 0.1, 10}).WithLabelValues();
  for (double v : {0.001, 0.003, 0.02, 7.0, 100.0}) h.Observe(v);
  h.Observe(std::nan(""));  // dropped

  auto families = ParseExposition(r.Render());
  auto bucket = [&](const std::string& le) {
    return FindSample(families, "test_seconds_bucket", {{"le", le}});
  };
  EXPECT_EQ(bucket("0.001"), 1);  // le is "less than or equal"
  EXPECT_EQ(bucket("0.01"), 2);
  EXPECT_EQ(bucket("0.1"), 3);
  EXPECT_EQ(bucket("10"), 4);
  EXPECT_EQ(bucket("+Inf"), 5);
  EXPECT_EQ(FindSample(families, "test_seconds_count"), 5);
  EXPECT_DOUBLE_EQ(*FindSample(families, "test_seconds_sum"), 107.024);
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  Registry r;
  const std::string nasty = "a\"b\\c\nd}e,f=g";
  r.AddCounter("test_escapes_total", "Help with \\ and\nnewline.", {"v"})
      .WithLabelValues({nasty})
      .Inc();
  const std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("# HELP test_escapes_total Help with \\\\ and\\nnewline.\n"));
  EXPECT_THAT(text,
              HasSubstr("test_escapes_total{v=\"a\\\"b\\\\c\\nd}e,f=g\"} 1\n"));
  auto families = ParseExposition(text);
  ASSERT_FALSE(::testing::Test::HasFailure()) << text;
  EXPECT_EQ(families[0].help, "Help with \\ and\nnewline.");
  EXPECT_EQ(FindSample(families, "test_escapes_total", {{"v", nasty}}), 1);
}

TEST(Metrics, ValuesAreFormattedForPrometheus) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(12345678), "12345678");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(0.0005), "0.0005");
  EXPECT_EQ(FormatValue(HUGE_VAL), "+Inf");
  EXPECT_EQ(FormatValue(-HUGE_VAL), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(Metrics, SameNameIsTheSameFamily) {
  Registry r;
  CounterFamily& a = r.AddCounter("test_x_total", "x", {"k"});
  CounterFamily& b = r.AddCounter("test_x_total", "x", {"k"});
  EXPECT_EQ(&a, &b);
  a.WithLabelValues({"1"}).Inc();
  EXPECT_EQ(b.WithLabelValues({"1"}).Value(), 1);
  EXPECT_EQ(&a.WithLabelValues({"1"}), &b.WithLabelValues({"1"}));
}

TEST(MetricsDeathTest, ProgrammerErrorsAreCaught) {
  Registry r;
  r.AddCounter("test_x_total", "x", {"k"});
  EXPECT_DEATH(r.AddGauge("test_x_total", "x", {"k"}), "another type or labels");
  EXPECT_DEATH(r.AddCounter("test_x", "x"), "must end in _total");
  EXPECT_DEATH(r.AddGauge("test-bad", "x"), "metric name");
  EXPECT_DEATH(r.AddHistogram("test_h", "x", {"le"}, {1}), "label le");
  EXPECT_DEATH(r.AddHistogram("test_h2", "x", {}, {2, 1}), "must increase");
  EXPECT_DEATH(r.AddCounter("test_x_total", "x", {"k"}).WithLabelValues({}),
               "label values");
}

TEST(Metrics, CountersIgnoreNegativeAndGaugesGoBothWays) {
  Registry r;
  Counter& c = r.AddCounter("test_c_total", "c").WithLabelValues();
  c.Inc(2);
  c.Inc(-5);
  EXPECT_EQ(c.Value(), 2);
  Gauge& g = r.AddGauge("test_g", "g").WithLabelValues();
  g.Inc(3);
  g.Dec();
  EXPECT_EQ(g.Value(), 2);
  g.Set(-1.5);
  EXPECT_EQ(g.Value(), -1.5);
}

TEST(Metrics, RemovedChildrenAreNotRendered) {
  Registry r;
  GaugeFamily& lag = r.AddGauge("test_lag", "lag", {"partition"});
  lag.WithLabelValues({"0"}).Set(5);
  lag.WithLabelValues({"1"}).Set(7);
  lag.Remove({"0"});
  auto families = ParseExposition(r.Render());
  EXPECT_FALSE(FindSample(families, "test_lag", {{"partition", "0"}}).has_value());
  EXPECT_EQ(FindSample(families, "test_lag", {{"partition", "1"}}), 7);
  EXPECT_EQ(lag.Children().size(), 1u);
}

// Many writers and a scraper at once: the totals are exact, and every scrape
// in between is valid exposition with consistent histograms.
TEST(Metrics, ConcurrentUpdatesAreExactAndScrapesStayConsistent) {
  Registry r;
  CounterFamily& counter = r.AddCounter("test_n_total", "n", {"t"});
  Histogram& hist =
      r.AddHistogram("test_v_seconds", "v", {}, LatencyBuckets()).WithLabelValues();
  Gauge& gauge = r.AddGauge("test_in_flight", "g").WithLabelValues();
  constexpr int kThreads = 8, kEach = 50'000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) {
      ParseExposition(r.Render());
      if (::testing::Test::HasFailure()) return;
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      Counter& mine = counter.WithLabelValues({t % 2 ? "odd" : "even"});
      for (int i = 0; i < kEach; ++i) {
        mine.Inc();
        gauge.Inc();
        hist.Observe(0.001 * (i % 20));
        gauge.Dec();
      }
    });
  }
  for (auto& w : writers) w.join();
  done.store(true);
  scraper.join();

  EXPECT_EQ(counter.WithLabelValues({"odd"}).Value() +
                counter.WithLabelValues({"even"}).Value(),
            kThreads * kEach);
  EXPECT_EQ(gauge.Value(), 0);
  const Histogram::Snapshot s = hist.Take();
  EXPECT_EQ(s.count(), static_cast<uint64_t>(kThreads * kEach));
  // i % 20 in 0..19 ms: 0.0 and 0.001 fall in le=0.001, i.e. 2 of 20.
  EXPECT_EQ(s.cumulative[1], static_cast<uint64_t>(kThreads * kEach / 10));
  EXPECT_NEAR(s.sum, kThreads * (kEach / 20) * 0.19, 1e-4);
}

}  // namespace
}  // namespace coupon::metrics
