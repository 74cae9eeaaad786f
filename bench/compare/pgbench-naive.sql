-- One transaction per event: what the worker would do without batching. The
-- statements are the worker's (bench/README.md): lock the coupon row, look
-- for the request's earlier result and the user's copy, insert the copy and
-- the result, decrement the stock. :coupon is a coupon made for the run with
-- a stock that never runs out; pgbench's own :client_id and a random user
-- keep ids unique.
\set u random(1, 2000000000)
BEGIN;
SELECT remaining_quantity FROM coupons WHERE coupon_id = :coupon FOR UPDATE;
SELECT outcome FROM issue_results WHERE request_id = 'pgb-' || :client_id || '-' || :u;
SELECT 1 FROM user_coupons WHERE coupon_id = :coupon AND user_id = 'pgb-' || :client_id || '-' || :u;
WITH copy AS (
  INSERT INTO user_coupons (coupon_id, user_id, request_id)
  VALUES (:coupon, 'pgb-' || :client_id || '-' || :u, 'pgb-' || :client_id || '-' || :u)
  ON CONFLICT DO NOTHING
  RETURNING user_coupon_id, user_id, request_id)
INSERT INTO issue_results (request_id, coupon_id, user_id, outcome, user_coupon_id, remaining_quantity)
SELECT request_id, :coupon, user_id, 'ISSUED', user_coupon_id, 0 FROM copy
ON CONFLICT DO NOTHING;
UPDATE coupons SET remaining_quantity = remaining_quantity - 1 WHERE coupon_id = :coupon;
COMMIT;
