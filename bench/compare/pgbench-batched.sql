-- One transaction per :batch events, as the worker does per poll: the same
-- statements as pgbench-naive.sql, each over the whole batch with arrays and
-- generate_series. Events per second = transactions per second x :batch.
\set u random(1, 2000000000)
BEGIN;
SELECT remaining_quantity FROM coupons WHERE coupon_id = :coupon FOR UPDATE;
SELECT request_id, outcome FROM issue_results
WHERE request_id = ANY (ARRAY(SELECT 'pgb-' || :client_id || '-' || :u || '-' || g
                              FROM generate_series(1, :batch) g));
SELECT u.user_id FROM unnest(ARRAY(SELECT 'pgb-' || :client_id || '-' || :u || '-' || g
                                   FROM generate_series(1, :batch) g)) AS w(user_id)
CROSS JOIN LATERAL (SELECT user_id FROM user_coupons
                    WHERE coupon_id = :coupon AND user_id = w.user_id) u;
WITH copy AS (
  INSERT INTO user_coupons (coupon_id, user_id, request_id)
  SELECT :coupon, 'pgb-' || :client_id || '-' || :u || '-' || g,
         'pgb-' || :client_id || '-' || :u || '-' || g
  FROM generate_series(1, :batch) g
  ON CONFLICT DO NOTHING
  RETURNING user_coupon_id, user_id, request_id)
INSERT INTO issue_results (request_id, coupon_id, user_id, outcome, user_coupon_id, remaining_quantity)
SELECT request_id, :coupon, user_id, 'ISSUED', user_coupon_id, 0 FROM copy
ON CONFLICT DO NOTHING;
UPDATE coupons SET remaining_quantity = remaining_quantity - :batch WHERE coupon_id = :coupon;
COMMIT;
