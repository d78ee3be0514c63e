-- The calendar's portal slice: the promoter as billed on events and holds;
-- an event's on-sale schedule (the public on-sale time and one presale
-- window with its access code); and the challenge of a 1st hold by a hold
-- behind it (Prism-style: the 1st hold must confirm or release before its
-- deadline, else it is released and the challenger may confirm).

-- +goose Up
ALTER TABLE cal_events
    ADD COLUMN promoter text NOT NULL DEFAULT '' CHECK (length(promoter) <= 200),
    ADD COLUMN on_sale_at timestamptz,
    ADD COLUMN presale_starts_at timestamptz,
    ADD COLUMN presale_ends_at timestamptz,
    ADD COLUMN presale_code text CHECK (presale_code ~ '^[A-Z0-9-]{4,40}$'),
    -- A presale is a whole window with a code, and it ends by the on-sale.
    ADD CONSTRAINT cal_events_presale_check CHECK (
        (presale_starts_at IS NULL AND presale_ends_at IS NULL AND presale_code IS NULL)
        OR (presale_starts_at IS NOT NULL AND presale_ends_at IS NOT NULL AND presale_code IS NOT NULL
            AND on_sale_at IS NOT NULL AND presale_ends_at > presale_starts_at AND presale_ends_at <= on_sale_at));
ALTER TABLE cal_holds
    ADD COLUMN promoter text NOT NULL DEFAULT '' CHECK (length(promoter) <= 200),
    ADD COLUMN challenged_by uuid REFERENCES cal_holds (id),
    ADD COLUMN challenge_deadline timestamptz,
    ADD COLUMN close_reason text,
    ADD CONSTRAINT cal_holds_challenge_check CHECK ((challenged_by IS NULL) = (challenge_deadline IS NULL));
-- The deadline job and the sweeper look for lapsed challenges of live holds.
CREATE INDEX cal_holds_challenge_idx ON cal_holds (challenge_deadline) WHERE status = 'active' AND challenge_deadline IS NOT NULL;

-- +goose Down
DROP INDEX cal_holds_challenge_idx;
ALTER TABLE cal_holds DROP CONSTRAINT cal_holds_challenge_check, DROP COLUMN close_reason,
    DROP COLUMN challenge_deadline, DROP COLUMN challenged_by, DROP COLUMN promoter;
ALTER TABLE cal_events DROP CONSTRAINT cal_events_presale_check, DROP COLUMN presale_code,
    DROP COLUMN presale_ends_at, DROP COLUMN presale_starts_at, DROP COLUMN on_sale_at, DROP COLUMN promoter;
