-- Staffing: hourly rates per role, timesheets (check-in and check-out of a
-- person on a shift) and shift swaps between colleagues.
--
-- A timesheet belongs to one assignment (its primary key): checking in
-- twice is the same row, and check-out must come after check-in. The rate
-- is copied at check-in, so a later change of rates does not rewrite what
-- a night cost.
--
-- A swap is a person's request that a colleague take their place on a
-- shift. One swap per assignment is live at a time (asked or accepted); it
-- is taken by one colleague only (a conditional UPDATE from asked to
-- accepted), and a manager's approval moves the place inside one
-- transaction that keeps every guarantee of an assignment.

-- +goose Up
CREATE TABLE stf_role_rates (
    role_id      uuid PRIMARY KEY REFERENCES stf_roles (id),
    hourly_minor bigint NOT NULL CHECK (hourly_minor BETWEEN 0 AND 100000000),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stf_timesheets (
    assignment_id  uuid PRIMARY KEY REFERENCES stf_assignments (id),
    staff_id       uuid NOT NULL REFERENCES stf_staff (id),
    shift_id       uuid NOT NULL REFERENCES stf_shifts (id),
    event_id       uuid NOT NULL,
    venue_id       uuid NOT NULL,
    checked_in_at  timestamptz NOT NULL,
    checked_out_at timestamptz,
    in_by          uuid, -- the user who checked the person in (themselves or a lead)
    out_by         uuid,
    hourly_minor   bigint CHECK (hourly_minor >= 0),
    currency       text CHECK (currency ~ '^[A-Z]{3}$'),
    CHECK (checked_out_at IS NULL OR checked_out_at > checked_in_at),
    CHECK ((hourly_minor IS NULL) = (currency IS NULL))
);
CREATE INDEX stf_timesheets_event_idx ON stf_timesheets (event_id);
CREATE INDEX stf_timesheets_venue_in_idx ON stf_timesheets (venue_id, checked_in_at);

CREATE TABLE stf_swaps (
    id                uuid PRIMARY KEY,
    assignment_id     uuid NOT NULL REFERENCES stf_assignments (id),
    shift_id          uuid NOT NULL REFERENCES stf_shifts (id),
    from_staff        uuid NOT NULL REFERENCES stf_staff (id),
    -- the colleague asked; NULL: any colleague who can work the shift
    to_staff          uuid REFERENCES stf_staff (id),
    taker             uuid REFERENCES stf_staff (id),
    status            text NOT NULL CHECK (status IN ('asked', 'accepted', 'approved', 'refused', 'withdrawn')),
    new_assignment_id uuid REFERENCES stf_assignments (id),
    created_at        timestamptz NOT NULL,
    accepted_at       timestamptz,
    decided_at        timestamptz,
    decided_by        uuid,
    CHECK ((status IN ('accepted', 'approved')) <= (taker IS NOT NULL)),
    CHECK ((status = 'approved') = (new_assignment_id IS NOT NULL)),
    CHECK (to_staff IS NULL OR to_staff <> from_staff),
    CHECK (taker IS NULL OR taker <> from_staff)
);
CREATE UNIQUE INDEX stf_swaps_live_key ON stf_swaps (assignment_id) WHERE status IN ('asked', 'accepted');
CREATE INDEX stf_swaps_shift_idx ON stf_swaps (shift_id, status);

-- +goose Down
DROP TABLE stf_swaps;
DROP TABLE stf_timesheets;
DROP TABLE stf_role_rates;
