#include "issuer-worker/worker_metrics.h"

#include <string>

#include "common/domain/domain.h"

namespace coupon::worker {

WorkerMetrics::WorkerMetrics(metrics::Registry& r)
    : batch_events(
          r.AddHistogram(
               "coupon_worker_batch_events",
               "Events per batch (one poll, one transaction).", {},
               {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000})
              .WithLabelValues()),
      transaction_seconds(
          r.AddHistogram("coupon_worker_transaction_seconds",
                         "The batch's PostgreSQL transaction (lock, decide, "
                         "store, commit), when it committed.",
                         {}, metrics::LatencyBuckets())
              .WithLabelValues()),
      batch_seconds(r.AddHistogram("coupon_worker_batch_seconds",
                                   "A batch from its transaction to its "
                                   "offset commit, results acknowledged "
                                   "in between; batches done only.",
                                   {}, metrics::LatencyBuckets())
                        .WithLabelValues()),
      decisions(r.AddCounter("coupon_worker_decisions_total",
                             "Requests decided and stored, by outcome "
                             "(replays are not decided again).",
                             {"outcome"})),
      republished(r.AddCounter("coupon_worker_republished_total",
                               "Results of requests decided before "
                               "(redelivered events, repeated request ids) "
                               "published again unchanged.")
                      .WithLabelValues()),
      reused(r.AddCounter("coupon_worker_reused_request_ids_total",
                          "Requests refused REQUEST_ID_REUSED: their id "
                          "belongs to another coupon or user (never stored).")
                 .WithLabelValues()),
      dead_letters(r.AddCounter("coupon_worker_dead_letters_total",
                                "Events sent to the dead-letter topic.")
                       .WithLabelValues()),
      retries(r.AddCounter("coupon_worker_batch_retries_total",
                           "Batches given back to the log and tried again "
                           "(database or broker trouble).")
                  .WithLabelValues()),
      assigned(r.AddGauge("coupon_worker_assigned_partitions",
                          "Partitions of the request topic this member owns.")
                   .WithLabelValues()),
      lag(r.AddGauge("coupon_worker_consumer_lag",
                     "Events of an owned partition not yet committed by the "
                     "group (librdkafka's consumer_lag, every 5 s).",
                     {"topic", "partition"})) {
  for (Outcome o :
       {Outcome::kIssued, Outcome::kSoldOut, Outcome::kAlreadyIssued,
        Outcome::kNotStarted, Outcome::kExpired}) {
    decisions.WithLabelValues({std::string(OutcomeName(o))});
  }
}

}  // namespace coupon::worker
