-- issue_results grows by one row per decided request (hundreds of thousands in
-- a sold-out storm), and its foreign key to coupons cost a trigger call per
-- row: 6.4 ms of every 500-row batch, about an eighth of the transaction. The
-- worker writes these rows in the transaction that holds the coupon's row
-- lock, so the coupon exists by construction. user_coupons keeps its foreign
-- key: it is small (one row per copy) and the copies are what must never dangle.
ALTER TABLE issue_results DROP CONSTRAINT issue_results_coupon_id_fkey;
