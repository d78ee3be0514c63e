-- A chain may require its owner's approval before support staff enter its
-- portal. Support asks (a request with a reason); an owner grants it for a
-- time box within which the visit must start, or refuses it; a grant is used
-- by exactly one visit. Safe to run twice (see 00120).

-- +goose Up
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS support_consent_required boolean NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS support_visit_requests (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    support_user_id uuid NOT NULL REFERENCES platform_users (id),
    reason          text NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'granted', 'refused', 'used')),
    decided_by      uuid,        -- the chain's user who granted or refused
    decided_at      timestamptz,
    usable_until    timestamptz, -- a grant starts no visit after this
    visit_id        uuid REFERENCES support_visits (id),
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK ((status IN ('granted', 'used')) = (usable_until IS NOT NULL)),
    CHECK ((status = 'used') = (visit_id IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS support_visit_requests_tenant_idx ON support_visit_requests (tenant_id, requested_at DESC);
-- One pending request per support user and chain: asking again finds it.
CREATE UNIQUE INDEX IF NOT EXISTS support_visit_requests_pending ON support_visit_requests (tenant_id, support_user_id) WHERE status = 'pending';

-- +goose Down
DROP TABLE support_visit_requests;
ALTER TABLE tenants DROP COLUMN support_consent_required;
