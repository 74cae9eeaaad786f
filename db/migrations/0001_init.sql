-- The coupon issuance schema. The invariants live here, not only in code:
--   * a user holds at most one copy of a coupon        (user_coupons unique)
--   * never more copies issued than the coupon has     (remaining_quantity >= 0)
--   * one decided result per request id                (issue_results primary key)
-- Applied by scripts/migrate, each file in one transaction.

CREATE TABLE coupons (
  coupon_id          BIGSERIAL   PRIMARY KEY,
  name               TEXT        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  total_quantity     BIGINT      NOT NULL CHECK (total_quantity > 0),
  -- Stock left. The Kafka issuer decrements it in the same transaction as the
  -- UserCoupon insert; the Redis issuer's outbox scheduler decrements it later.
  remaining_quantity BIGINT      NOT NULL,
  starts_at          TIMESTAMPTZ,
  ends_at            TIMESTAMPTZ,
  created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
  CONSTRAINT remaining_within_total
    CHECK (remaining_quantity >= 0 AND remaining_quantity <= total_quantity),
  CONSTRAINT window_ordered
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);

CREATE TABLE user_coupons (
  user_coupon_id BIGSERIAL   PRIMARY KEY,
  coupon_id      BIGINT      NOT NULL REFERENCES coupons (coupon_id),
  user_id        TEXT        NOT NULL CHECK (octet_length(user_id) BETWEEN 1 AND 128),
  -- The request that won this copy.
  request_id     TEXT        NOT NULL UNIQUE,
  issued_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  CONSTRAINT one_copy_per_user UNIQUE (coupon_id, user_id)
);

CREATE INDEX user_coupons_by_user ON user_coupons (user_id, user_coupon_id);

-- The final result of every decided request, written in the same transaction
-- as the decision, so a replayed event republishes this row instead of being
-- decided again.
CREATE TABLE issue_results (
  request_id         TEXT        PRIMARY KEY CHECK (char_length(request_id) BETWEEN 1 AND 128),
  coupon_id          BIGINT      NOT NULL REFERENCES coupons (coupon_id),
  user_id            TEXT        NOT NULL,
  outcome            TEXT        NOT NULL
    CHECK (outcome IN ('ISSUED', 'SOLD_OUT', 'ALREADY_ISSUED', 'NOT_STARTED', 'EXPIRED')),
  user_coupon_id     BIGINT      REFERENCES user_coupons (user_coupon_id),
  remaining_quantity BIGINT      NOT NULL,
  decided_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
  CONSTRAINT issued_has_user_coupon
    CHECK ((outcome = 'ISSUED') = (user_coupon_id IS NOT NULL))
);
