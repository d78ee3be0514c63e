-- Limits against hoarding and fraud: each chain's thresholds, and every
-- risk decision with its score, action and reasons (the review queue is
-- the decisions to review that nobody has reviewed yet).

-- +goose Up
CREATE TABLE inv_limit_thresholds (
    id                     smallint PRIMARY KEY CHECK (id = 1),
    -- Off until the chain turns them on (PUT /api/v1/limits).
    enabled                boolean NOT NULL DEFAULT false,
    max_tickets_per_email  integer NOT NULL DEFAULT 8 CHECK (max_tickets_per_email BETWEEN 1 AND 10000),
    max_tickets_per_ip     integer NOT NULL DEFAULT 24 CHECK (max_tickets_per_ip BETWEEN 1 AND 100000),
    declines_to_challenge  integer NOT NULL DEFAULT 2 CHECK (declines_to_challenge BETWEEN 1 AND 100),
    declines_to_block      integer NOT NULL DEFAULT 3 CHECK (declines_to_block BETWEEN 1 AND 100),
    min_checkout_seconds   integer NOT NULL DEFAULT 4 CHECK (min_checkout_seconds BETWEEN 0 AND 600),
    ip_holds_per_minute    integer NOT NULL DEFAULT 60 CHECK (ip_holds_per_minute BETWEEN 1 AND 100000),
    ip_orders_per_minute   integer NOT NULL DEFAULT 20 CHECK (ip_orders_per_minute BETWEEN 1 AND 100000),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK (declines_to_challenge <= declines_to_block)
);

CREATE TABLE inv_risk_decisions (
    id             uuid PRIMARY KEY,
    event_id       uuid NOT NULL,
    hold_id        uuid,
    buyer_id       text NOT NULL,
    email          text NOT NULL DEFAULT '',
    client_ip      text NOT NULL DEFAULT '',
    score          integer NOT NULL CHECK (score >= 0),
    action         text NOT NULL CHECK (action IN ('allow', 'challenge', 'review', 'block')),
    reasons        jsonb NOT NULL DEFAULT '[]',
    created_at     timestamptz NOT NULL DEFAULT now(),
    reviewed_at    timestamptz,
    reviewed_by    uuid,
    review_outcome text CHECK (review_outcome IN ('approved', 'rejected')),
    CHECK ((reviewed_at IS NULL) = (review_outcome IS NULL))
);
CREATE INDEX inv_risk_decisions_queue_idx ON inv_risk_decisions (created_at) WHERE action = 'review' AND reviewed_at IS NULL;
CREATE INDEX inv_risk_decisions_event_idx ON inv_risk_decisions (event_id, created_at);

-- +goose Down
DROP TABLE inv_risk_decisions;
DROP TABLE inv_limit_thresholds;
