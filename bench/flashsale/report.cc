#include "bench/flashsale/report.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace coupon::bench {
namespace {

double PerSecond(int64_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0;
}

double CpuPer1000(const CpuUsage& cpu, int64_t requests) {
  return requests > 0 ? cpu.seconds * 1000.0 / static_cast<double>(requests) : 0;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

std::string Ms(int64_t us) { return absl::StrFormat("%.2f", us / 1000.0); }

std::string LatencyLine(const LatencySummary& s, bool with_p999) {
  if (s.count == 0) return "(no samples)";
  return absl::StrCat("p50 ", Ms(s.p50_us), "  p95 ", Ms(s.p95_us), "  p99 ",
                      Ms(s.p99_us),
                      with_p999 ? absl::StrCat("  p99.9 ", Ms(s.p999_us)) : "",
                      "  max ", Ms(s.max_us), "  (n=", s.count, ")");
}

/// Builds one JSON object; one thread.
class JsonObject {
 public:
  JsonObject& Num(const std::string& key, double v) {
    return Raw(key, absl::StrFormat("%.6g", v));
  }
  JsonObject& Int(const std::string& key, int64_t v) {
    return Raw(key, absl::StrCat(v));
  }
  JsonObject& Str(const std::string& key, const std::string& v) {
    return Raw(key, Quote(v));
  }
  JsonObject& Bool(const std::string& key, bool v) {
    return Raw(key, v ? "true" : "false");
  }
  JsonObject& Raw(const std::string& key, const std::string& json) {
    absl::StrAppend(&body_, body_.empty() ? "" : ", ", Quote(key), ": ", json);
    return *this;
  }
  std::string Done() const { return absl::StrCat("{", body_, "}"); }

  static std::string Quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        absl::StrAppendFormat(&out, "\\u%04x", c);
      } else {
        out += c;
      }
    }
    return out + "\"";
  }

 private:
  std::string body_;
};

std::string CountsJson(const std::map<std::string, int64_t>& counts) {
  JsonObject o;
  for (const auto& [k, v] : counts) o.Int(k, v);
  return o.Done();
}

std::string LatencyJson(const LatencySummary& s) {
  return JsonObject()
      .Int("count", static_cast<int64_t>(s.count))
      .Num("p50_ms", s.p50_us / 1000.0)
      .Num("p95_ms", s.p95_us / 1000.0)
      .Num("p99_ms", s.p99_us / 1000.0)
      .Num("p999_ms", s.p999_us / 1000.0)
      .Num("max_ms", s.max_us / 1000.0)
      .Num("mean_ms", s.mean_us / 1000.0)
      .Done();
}

std::string StringsJson(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  for (const std::string& s : items) quoted.push_back(JsonObject::Quote(s));
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

std::string CountsLine(const std::map<std::string, int64_t>& counts) {
  if (counts.empty()) return "none";
  std::vector<std::string> parts;
  for (const auto& [k, v] : counts) parts.push_back(absl::StrCat(k, " ", v));
  return absl::StrJoin(parts, ", ");
}

}  // namespace

void PrintReport(const RunReport& r, std::ostream& out) {
  const Ledger::Counters& c = r.counters;
  out << "== flashsale " << r.run_id << " against " << r.target << " ("
      << r.workload << " workload, " << r.issuer << " issuer)\n";
  out << absl::StrFormat(
      "setup      %d coupon(s) x stock %d; %d users; %d ids per user, the first "
      "sent %d more times; %d calls measured after %d sell-out calls; %s "
      "(max %d in flight)\n",
      r.coupons, r.stock, r.users, r.repeat, r.resend, r.requests, r.presell,
      r.mode, r.max_in_flight);
  out << absl::StrFormat(
      "answers    %d of %d calls: ACCEPTED %d (%d requests); final at gateway %d "
      "(%s); %d retries\n",
      c.answered, c.sent, r.measured_accepted, c.accepted, c.final_at_gateway,
      CountsLine(r.final_at_gateway), r.retries);
  out << absl::StrFormat("errors     %d (%s)\n", c.errors, CountsLine(r.errors));
  out << absl::StrFormat(
      "send phase %.2f s: %.0f requests/s, %.0f accepted/s\n", r.send_seconds,
      PerSecond(r.measured_answered, r.send_seconds),
      PerSecond(r.measured_accepted, r.send_seconds));
  if (!r.decisions_source.empty()) {
    out << absl::StrFormat("decisions  %d in %.2f s: %.0f/s  [%s]\n", r.decisions,
                           r.decisions_seconds,
                           PerSecond(r.decisions, r.decisions_seconds),
                           r.decisions_source);
  }
  out << "IssueCoupon latency ms  " << LatencyLine(r.issue_latency, true) << "\n";
  out << "end-to-end latency ms   " << LatencyLine(r.e2e_latency, false)
      << "  [send -> result on the coupon stream]\n";
  out << absl::StrFormat(
      "results    %d (%s); live %d, late %d, ACCEPTED still missing %d; "
      "duplicates %d live, %d late\n",
      c.results, CountsLine(r.results), r.results_live, r.results_late,
      r.accepted_missing, c.duplicates_live, c.duplicates_late);
  out << absl::StrFormat("first send -> last result  %.2f s\n",
                         r.first_send_to_last_result_seconds);
  if (r.stock_sync_seconds >= 0) {
    out << absl::StrFormat(
        "stock sync  PostgreSQL's stock agreed %.2f s after the last answer "
        "(outbox scheduler)\n",
        r.stock_sync_seconds);
  }
  for (const std::string& p : r.watch_problems) out << "watch      " << p << "\n";
  for (const CouponVerdict& cv : r.verification.coupons) {
    out << absl::StrFormat(
        "coupon %-6d issued %d of %d (remaining %d); %d users asked, %d answered\n",
        cv.coupon_id, cv.issued, cv.stock, cv.remaining, cv.users_sent,
        cv.users_answered);
  }
  out << absl::StrFormat(
      "CPU over %.2f s (send + result wait), seconds per 1000 requests "
      "(total seconds, cores busy):\n",
      r.cpu_window_seconds);
  for (const CpuUsage& cpu : r.cpu) {
    if (cpu.seconds < 0) {
      out << absl::StrFormat("  %-12s pid %-8d unknown: %s\n", cpu.name, cpu.pid,
                             cpu.error);
      continue;
    }
    out << absl::StrFormat(
        "  %-12s %-12s %8.4f  (%.2f s, %.2f cores)\n", cpu.name,
        cpu.pid ? absl::StrCat("pid ", cpu.pid) : "", CpuPer1000(cpu, r.requests),
        cpu.seconds,
        r.cpu_window_seconds > 0 ? cpu.seconds / r.cpu_window_seconds : 0);
  }
  if (!r.verified) {
    out << "invariants not checked (--verify=false: a ceiling run)\n";
    return;
  }
  const Verification& v = r.verification;
  out << absl::StrFormat(
      "database   %d issue_results rows; %d ISSUED seen on streams/answers; %d "
      "failed calls were decided anyway\n",
      v.decided_rows, v.issued_seen, v.errored_but_decided);
  for (const std::string& w : v.warnings) out << "WARNING    " << w << "\n";
  if (v.ok()) {
    out << "invariants OK (" << v.checks << " checks)\n";
  } else {
    out << "INVARIANTS VIOLATED (" << v.violations.size() << " kinds, "
        << v.checks << " checks):\n";
    for (const std::string& line : v.violations) out << "  - " << line << "\n";
  }
}

absl::Status WriteJson(const RunReport& r, const std::string& path) {
  const Ledger::Counters& c = r.counters;
  std::vector<std::string> coupons;
  for (const CouponVerdict& cv : r.verification.coupons) {
    coupons.push_back(JsonObject()
                          .Int("coupon_id", cv.coupon_id)
                          .Int("stock", cv.stock)
                          .Int("issued", cv.issued)
                          .Int("remaining", cv.remaining)
                          .Int("users_sent", cv.users_sent)
                          .Int("users_answered", cv.users_answered)
                          .Done());
  }
  std::vector<std::string> cpu;
  for (const CpuUsage& u : r.cpu) {
    JsonObject o;
    o.Str("name", u.name).Int("pid", u.pid);
    if (u.seconds >= 0) {
      o.Num("seconds", u.seconds).Num("seconds_per_1000_requests", CpuPer1000(u, r.requests));
    } else {
      o.Str("error", u.error);
    }
    cpu.push_back(o.Done());
  }
  const std::string json =
      JsonObject()
          .Str("run_id", r.run_id)
          .Str("target", r.target)
          .Str("workload", r.workload)
          .Str("issuer", r.issuer)
          .Str("mode", r.mode)
          .Int("resend", r.resend)
          .Int("presell", r.presell)
          .Int("retries", r.retries)
          .Int("measured_answered", r.measured_answered)
          .Int("measured_accepted", r.measured_accepted)
          .Int("decisions", r.decisions)
          .Num("decisions_seconds", r.decisions_seconds)
          .Num("decisions_per_second", PerSecond(r.decisions, r.decisions_seconds))
          .Str("decisions_source", r.decisions_source)
          .Bool("verified", r.verified)
          .Int("coupons", r.coupons)
          .Int("stock", r.stock)
          .Int("users", r.users)
          .Int("repeat", r.repeat)
          .Int("requests", r.requests)
          .Int("sent", c.sent)
          .Int("answered", c.answered)
          .Int("accepted", c.accepted)
          .Int("final_at_gateway", c.final_at_gateway)
          .Raw("final_at_gateway_by_outcome", CountsJson(r.final_at_gateway))
          .Int("errors", c.errors)
          .Raw("errors_by_code", CountsJson(r.errors))
          .Int("max_in_flight", r.max_in_flight)
          .Num("send_seconds", r.send_seconds)
          .Num("requests_per_second", PerSecond(r.measured_answered, r.send_seconds))
          .Num("accepted_per_second", PerSecond(r.measured_accepted, r.send_seconds))
          .Raw("issue_latency", LatencyJson(r.issue_latency))
          .Raw("end_to_end_latency", LatencyJson(r.e2e_latency))
          .Int("results", c.results)
          .Raw("results_by_outcome", CountsJson(r.results))
          .Int("results_live", r.results_live)
          .Int("results_late", r.results_late)
          .Int("accepted_missing", r.accepted_missing)
          .Int("duplicates_live", c.duplicates_live)
          .Int("duplicates_late", c.duplicates_late)
          .Num("first_send_to_last_result_seconds",
               r.first_send_to_last_result_seconds)
          .Num("stock_sync_seconds", r.stock_sync_seconds)
          .Raw("watch_problems", StringsJson(r.watch_problems))
          .Raw("issued_per_coupon", absl::StrCat("[", absl::StrJoin(coupons, ", "), "]"))
          .Num("cpu_window_seconds", r.cpu_window_seconds)
          .Raw("cpu", absl::StrCat("[", absl::StrJoin(cpu, ", "), "]"))
          .Int("decided_rows", r.verification.decided_rows)
          .Int("errored_but_decided", r.verification.errored_but_decided)
          .Int("told_issued_missing", r.verification.told_issued_missing)
          .Int("accepted_lost", r.verification.accepted_lost)
          .Int("sold_out_to_holders", r.verification.sold_out_to_holders)
          .Int("checks", r.verification.checks)
          .Bool("invariants_ok", r.verified && r.verification.ok())
          .Raw("violations", StringsJson(r.verification.violations))
          .Raw("warnings", StringsJson(r.verification.warnings))
          .Done();
  return WriteFile(path, json + "\n");
}

absl::Status WriteMarkdown(const RunReport& r, const std::string& path) {
  auto cpu_cell = [&](const std::string& name) -> std::string {
    for (const CpuUsage& u : r.cpu) {
      if (u.name == name && u.seconds >= 0) {
        return absl::StrFormat("%.4f", CpuPer1000(u, r.requests));
      }
    }
    return "–";
  };
  auto lat = [](const LatencySummary& l) {
    return l.count == 0 ? std::string("–")
                        : absl::StrCat(Ms(l.p50_us), " / ", Ms(l.p95_us), " / ",
                                       Ms(l.p99_us), " / ", Ms(l.p999_us));
  };
  std::string md = absl::StrCat(
      "| figure | ", r.workload, ", ", r.issuer, " |\n|---|---|\n",
      "| calls measured | ", r.requests, " (", r.mode, ") |\n",
      absl::StrFormat("| requests/s | %.0f |\n",
                      PerSecond(r.measured_answered, r.send_seconds)),
      absl::StrFormat("| accepted/s | %.0f |\n",
                      PerSecond(r.measured_accepted, r.send_seconds)),
      "| errors | ", r.counters.errors, " |\n",
      "| IssueCoupon p50 / p95 / p99 / p99.9 ms | ", lat(r.issue_latency), " |\n",
      "| end-to-end p50 / p95 / p99 / p99.9 ms | ", lat(r.e2e_latency), " |\n",
      absl::StrFormat("| first send → last result | %.2f s |\n",
                      r.first_send_to_last_result_seconds),
      r.decisions_source.empty()
          ? ""
          : absl::StrFormat("| decisions/s | %.0f |\n",
                            PerSecond(r.decisions, r.decisions_seconds)));
  for (const CpuUsage& u : r.cpu) {
    absl::StrAppend(&md, "| CPU s / 1,000 requests: ", u.name, " | ",
                    cpu_cell(u.name), " |\n");
  }
  absl::StrAppend(&md, "| invariants | ",
                  !r.verified              ? "not checked"
                  : r.verification.ok()    ? absl::StrCat("OK (", r.verification.checks, " checks)")
                                           : "VIOLATED",
                  " |\n");
  return WriteFile(path, md);
}

absl::Status WritePlotData(const RunReport& r, const std::string& prefix) {
  std::string timeline = "# t_s\tanswered_per_s\taccepted_per_s\tresults_per_s\tissued_total\n";
  const double step = r.timeline_step_seconds;
  for (const TimelineStep& t : r.timeline) {
    absl::StrAppendFormat(&timeline, "%.2f\t%.0f\t%.0f\t%.0f\t%d\n", t.t,
                          t.answered / step, t.accepted / step, t.results / step,
                          t.issued_total);
  }
  absl::Status s = WriteFile(absl::StrCat(prefix, ".timeline.tsv"), timeline);
  if (!s.ok()) return s;
  std::string latency = "# quantile\tissue_ms\te2e_ms\n";
  for (size_t i = 0; i < r.issue_cdf.size(); ++i) {
    const double e2e = i < r.e2e_cdf.size() ? r.e2e_cdf[i].second : 0;
    absl::StrAppendFormat(&latency, "%.4f\t%.3f\t%.3f\n", r.issue_cdf[i].first,
                          r.issue_cdf[i].second, e2e);
  }
  return WriteFile(absl::StrCat(prefix, ".latency.tsv"), latency);
}

}  // namespace coupon::bench
