-- Cancelling an event with sales: a durable record per event (written in the
-- calendar's cancelling transaction) and one refund row per paid order,
-- claimed through its state (pending -> refunding -> refunded) by the job
-- that settles the cancellation, so a worker killed midway resumes where it
-- stopped and never refunds an order twice.

-- +goose Up
CREATE TABLE inv_event_cancellations (
    event_id    uuid PRIMARY KEY,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((status = 'done') = (finished_at IS NOT NULL))
);

CREATE TABLE inv_cancellation_refunds (
    order_id         uuid PRIMARY KEY REFERENCES inv_orders (id),
    event_id         uuid NOT NULL REFERENCES inv_event_cancellations (event_id),
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'refunding', 'refunded')),
    attempts         integer NOT NULL DEFAULT 0,
    stripe_refund_id text,                     -- 'none' when nothing was charged through Stripe
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'refunded') = (stripe_refund_id IS NOT NULL))
);
CREATE INDEX inv_cancellation_refunds_todo_idx ON inv_cancellation_refunds (event_id, order_id) WHERE state <> 'refunded';

-- The outbox drain reads unsent mail in order.
CREATE INDEX inv_email_outbox_unsent_idx ON inv_email_outbox (created_at) WHERE sent_at IS NULL;

-- +goose Down
DROP INDEX inv_email_outbox_unsent_idx;
DROP TABLE inv_cancellation_refunds;
DROP TABLE inv_event_cancellations;
