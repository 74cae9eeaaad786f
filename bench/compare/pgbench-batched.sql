-- The worker's transaction for one batch of :batch events
-- (issuer-worker/pg_issuance_store.cc, pg::InsertCopiesAndResults), in its
-- two pipelined round trips: BEGIN, the coupons locked in id order, the
-- batch's earlier results and its users' copies; then the copies with their
-- results in one statement, the stock, and COMMIT. Event g of the batch asks
-- for coupon :coupon + g % :ncoupons; the first :issued events win a copy,
-- the others are decided SOLD_OUT (a result row, no copy), as a sale's mix.
-- The worker sends its ids as array parameters; here generate_series makes
-- them on the server. They are spread over the indexes as a sale's are (a
-- sale's request ids arrive in no order, each batch's land all over the
-- primary key): the leading number scatters them, the rest keeps them
-- unique. Ids that sort together, as these did until 2026-12-02, touch a
-- few index pages a batch where a sale's touch hundreds: the same statements
-- then took 11.3-12.0 ms a transaction against 16.3-17.5 (500 events, 25
-- copies, one coupon) and 21.1-22.4 against 30.0-30.5 (497 events, 249
-- copies, 100 coupons), while the worker's own took 16-17 and 27-28. The
-- earlier results are read as the worker reads them (one primary-key probe
-- per id). Run with pgbench -M prepared: pipeline mode, and each statement
-- parsed and planned once per connection, as the worker's are
-- (pg::Connection::Pipeline prepares each text once).
-- Events per second = transactions per second x :batch.
\set u random(1, 2000000000)
\startpipeline
BEGIN;
SELECT coupon_id, remaining_quantity FROM coupons
WHERE coupon_id = ANY (ARRAY(SELECT :coupon + g FROM generate_series(0, :ncoupons - 1) g))
ORDER BY coupon_id FOR UPDATE;
SELECT r.* FROM unnest(ARRAY(SELECT 'pgb-' || (:u::bigint + g * 2654435761) % 1000003 || '-' || :client_id || '-' || :u || '-' || g
                             FROM generate_series(1, :batch) g)) AS k(id)
CROSS JOIN LATERAL (SELECT request_id, coupon_id, user_id, outcome,
                           coalesce(user_coupon_id, 0), remaining_quantity,
                           (extract(epoch from decided_at) * 1000000)::bigint
                    FROM issue_results WHERE request_id = k.id LIMIT 1) r;
SELECT h.coupon_id, h.user_id, h.request_id
FROM generate_series(1, :batch) g
CROSS JOIN LATERAL (SELECT coupon_id, user_id, request_id FROM user_coupons uc
                    WHERE uc.coupon_id = :coupon + g % :ncoupons
                      AND uc.user_id = 'pgb-' || (:u::bigint + g * 2654435761) % 1000003 || '-' || :client_id || '-' || :u || '-' || g
                    LIMIT 1) h;
\endpipeline
\startpipeline
WITH copies AS (
  INSERT INTO user_coupons (coupon_id, user_id, request_id, issued_at)
  SELECT :coupon + g % :ncoupons, 'pgb-' || (:u::bigint + g * 2654435761) % 1000003 || '-' || :client_id || '-' || :u || '-' || g,
         'pgb-' || (:u::bigint + g * 2654435761) % 1000003 || '-' || :client_id || '-' || :u || '-' || g, now()
  FROM generate_series(1, :issued) g
  RETURNING request_id, user_coupon_id)
INSERT INTO issue_results (request_id, coupon_id, user_id, outcome, user_coupon_id,
                           remaining_quantity, decided_at)
SELECT x.r, x.c, x.r, CASE WHEN copies.user_coupon_id IS NULL THEN 'SOLD_OUT' ELSE 'ISSUED' END,
       copies.user_coupon_id, 0, now()
FROM (SELECT 'pgb-' || (:u::bigint + g * 2654435761) % 1000003 || '-' || :client_id || '-' || :u || '-' || g AS r, :coupon + g % :ncoupons AS c
      FROM generate_series(1, :batch) g) x
LEFT JOIN copies ON copies.request_id = x.r
RETURNING request_id, user_coupon_id;
UPDATE coupons AS c SET remaining_quantity = c.remaining_quantity - d.n
FROM (SELECT :coupon + g % :ncoupons AS id, count(*) AS n
      FROM generate_series(1, :issued) g GROUP BY 1) d
WHERE c.coupon_id = d.id;
SET LOCAL statement_timeout = 0;
COMMIT;
\endpipeline
