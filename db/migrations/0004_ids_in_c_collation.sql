-- Request ids and user ids are opaque keys: the service compares them for
-- equality and never sorts them for anyone. Under the database's collation
-- (C.UTF-8 here, a locale elsewhere) every comparison in their indexes goes
-- through strcoll; under "C" it is a memcmp. Equality is the same either way,
-- so no answer changes. The sold-out storm inserts one issue_results row per
-- call and probes user_coupons by (coupon_id, user_id) for each: these are
-- the comparisons it makes most.
-- Changing a column's collation keeps the rows but rebuilds the indexes on
-- it, under an ACCESS EXCLUSIVE lock: on a large issue_results, apply this
-- between sales.
ALTER TABLE issue_results ALTER COLUMN request_id TYPE text COLLATE "C",
                          ALTER COLUMN user_id TYPE text COLLATE "C";
ALTER TABLE user_coupons ALTER COLUMN request_id TYPE text COLLATE "C",
                         ALTER COLUMN user_id TYPE text COLLATE "C";
