-- Staffing: the chain's staff members, the roles they can work and the
-- certifications they hold (with expiry and an inclusion hierarchy), shifts
-- per event with their assignments, per-event requirements, publishing of a
-- venue's day, and the outbox of what staff are told.
--
-- Correctness lives here: one person is never in two overlapping shifts
-- (stf_assignments_no_overlap, an exclusion constraint over the person and a
-- half-open range, so back-to-back shifts do not collide), and a shift is
-- never over-filled (filled <= places, moved by a conditional UPDATE in the
-- same statement that inserts the assignment). btree_gist lives in public
-- (control 00001); this file never creates an extension.

-- +goose Up
CREATE TABLE stf_certs (
    id         uuid PRIMARY KEY,
    key        text NOT NULL UNIQUE CHECK (key ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Holding cert_id counts as holding included_id too (a senior first aider is
-- a first aider), as ephios' included_qualifications.
CREATE TABLE stf_cert_includes (
    cert_id     uuid NOT NULL REFERENCES stf_certs (id) ON DELETE CASCADE,
    included_id uuid NOT NULL REFERENCES stf_certs (id) ON DELETE CASCADE,
    PRIMARY KEY (cert_id, included_id),
    CHECK (cert_id <> included_id)
);

-- The reflexive, transitive closure of stf_cert_includes, rewritten with it
-- in one transaction: "does holding cert_id satisfy satisfies_id" is one
-- index probe inside the sign-up statement.
CREATE TABLE stf_cert_closure (
    satisfies_id uuid NOT NULL REFERENCES stf_certs (id) ON DELETE CASCADE,
    cert_id      uuid NOT NULL REFERENCES stf_certs (id) ON DELETE CASCADE,
    PRIMARY KEY (satisfies_id, cert_id)
);

CREATE TABLE stf_roles (
    id         uuid PRIMARY KEY,
    key        text NOT NULL UNIQUE CHECK (key ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- how staff get on a shift of this role by themselves: open (instant),
    -- approve (a request a manager approves), closed (managers assign)
    signup     text NOT NULL DEFAULT 'closed' CHECK (signup IN ('open', 'approve', 'closed')),
    cert_id    uuid REFERENCES stf_certs (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stf_staff (
    id          uuid PRIMARY KEY,
    -- the chain user this person signs in as (core's users; no foreign key
    -- across owners), so "my shifts" finds them
    user_id     uuid UNIQUE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email       text NOT NULL DEFAULT '' CHECK (length(email) <= 320),
    phone       text NOT NULL DEFAULT '' CHECK (length(phone) <= 40),
    home_venues uuid[] NOT NULL DEFAULT '{}',
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX stf_staff_email_key ON stf_staff (lower(email)) WHERE email <> '';
CREATE INDEX stf_staff_name_idx ON stf_staff (name, id);

CREATE TABLE stf_staff_roles (
    staff_id uuid NOT NULL REFERENCES stf_staff (id) ON DELETE CASCADE,
    role_id  uuid NOT NULL REFERENCES stf_roles (id),
    PRIMARY KEY (staff_id, role_id)
);

-- A certification stops counting on expires_on (in the shift's venue
-- zone): it must be unexpired when the assignment is made and through the
-- shift's end. NULL: it does not expire.
CREATE TABLE stf_staff_certs (
    staff_id   uuid NOT NULL REFERENCES stf_staff (id) ON DELETE CASCADE,
    cert_id    uuid NOT NULL REFERENCES stf_certs (id),
    expires_on date,
    PRIMARY KEY (staff_id, cert_id)
);
CREATE INDEX stf_staff_certs_expiry_idx ON stf_staff_certs (expires_on) WHERE expires_on IS NOT NULL;

-- The chain's rules (one row). A rule in 'hard' refuses the assignment
-- inside the sign-up statement; 'warn' records a warning on it.
CREATE TABLE stf_settings (
    id               boolean PRIMARY KEY DEFAULT true CHECK (id),
    min_rest_minutes integer NOT NULL DEFAULT 600 CHECK (min_rest_minutes BETWEEN 0 AND 2880),
    rest_rule        text NOT NULL DEFAULT 'warn' CHECK (rest_rule IN ('off', 'warn', 'hard')),
    max_week_minutes integer NOT NULL DEFAULT 2880 CHECK (max_week_minutes BETWEEN 60 AND 10080),
    week_rule        text NOT NULL DEFAULT 'warn' CHECK (week_rule IN ('off', 'warn', 'hard')),
    -- built-in requirement templates, on when their role is set
    crowd_role_id    uuid REFERENCES stf_roles (id),
    crowd_minimum    integer NOT NULL DEFAULT 2 CHECK (crowd_minimum BETWEEN 0 AND 1000),
    crowd_per        integer NOT NULL DEFAULT 250 CHECK (crowd_per BETWEEN 1 AND 100000),
    security_role_id uuid REFERENCES stf_roles (id),
    security_bands   jsonb NOT NULL DEFAULT '[{"from_capacity":0,"count":1},{"from_capacity":200,"count":2},{"from_capacity":800,"count":4},{"from_capacity":2000,"count":8},{"from_capacity":5000,"count":16}]',
    updated_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO stf_settings DEFAULT VALUES;

CREATE TABLE stf_shifts (
    id         uuid PRIMARY KEY,
    event_id   uuid NOT NULL, -- the calendar's event, read through the event directory
    venue_id   uuid NOT NULL,
    timezone   text NOT NULL,
    day        date NOT NULL, -- local date of the start at the venue: what publishing covers
    role_id    uuid NOT NULL REFERENCES stf_roles (id),
    zone       text NOT NULL DEFAULT '' CHECK (length(zone) <= 100),
    during     tstzrange NOT NULL CHECK (NOT isempty(during) AND lower_inc(during) AND NOT upper_inc(during)
                                         AND NOT lower_inf(during) AND NOT upper_inf(during)),
    places     integer NOT NULL CHECK (places BETWEEN 0 AND 1000),
    -- assignments holding a place (assigned, confirmed): moved only together
    -- with them, by conditional writes, never past places
    filled     integer NOT NULL DEFAULT 0 CHECK (filled >= 0 AND filled <= places),
    status     text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'cancelled')),
    version    integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stf_shifts_event_idx ON stf_shifts (event_id, role_id);
CREATE INDEX stf_shifts_venue_day_idx ON stf_shifts (venue_id, day);

CREATE TABLE stf_assignments (
    id          uuid PRIMARY KEY,
    shift_id    uuid NOT NULL REFERENCES stf_shifts (id),
    staff_id    uuid NOT NULL REFERENCES stf_staff (id),
    -- the shift's range, copied so the constraint sees it; moved with the shift
    during      tstzrange NOT NULL,
    status      text NOT NULL CHECK (status IN ('requested', 'assigned', 'confirmed', 'declined', 'cancelled')),
    by_manager  boolean NOT NULL DEFAULT false,
    warnings    text[] NOT NULL DEFAULT '{}',
    assigned_at timestamptz NOT NULL, -- the server clock the rules were checked at
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stf_assignments_no_overlap EXCLUDE USING gist (staff_id WITH =, during WITH &&)
        WHERE (status IN ('requested', 'assigned', 'confirmed'))
);
CREATE INDEX stf_assignments_shift_idx ON stf_assignments (shift_id, status);
CREATE INDEX stf_assignments_staff_idx ON stf_assignments (staff_id, (lower(during)));

-- Requirements per event and role: a fixed number, a ratio to attendance
-- with a minimum, or (security template) a band of the venue's capacity.
-- required is what the last computation gave; raised_from and raised_at
-- record the last recomputation that raised it (sales growing), so coverage
-- can say a gap was made by sales.
CREATE TABLE stf_requirements (
    event_id      uuid NOT NULL,
    role_id       uuid NOT NULL REFERENCES stf_roles (id),
    source        text NOT NULL CHECK (source IN ('manual', 'crowd_managers', 'security_bands')),
    rule          text NOT NULL CHECK (rule IN ('fixed', 'ratio', 'band')),
    fixed_count   integer CHECK (fixed_count BETWEEN 0 AND 10000),
    per_attendees integer CHECK (per_attendees BETWEEN 1 AND 100000),
    minimum       integer NOT NULL DEFAULT 0 CHECK (minimum BETWEEN 0 AND 10000),
    required      integer NOT NULL DEFAULT 0 CHECK (required >= 0),
    attendance    integer NOT NULL DEFAULT 0,
    basis         text NOT NULL DEFAULT 'none', -- what attendance was: sold, expected, capacity, none
    raised_from   integer,
    raised_at     timestamptz,
    computed_at   timestamptz,
    PRIMARY KEY (event_id, role_id),
    CHECK ((rule = 'fixed') = (fixed_count IS NOT NULL)),
    CHECK ((rule = 'ratio') = (per_attendees IS NOT NULL))
);

-- Attendance a manager expects (counts from doors on), and the tickets sold
-- when last read from the inventory's facts.
CREATE TABLE stf_attendance (
    event_id uuid PRIMARY KEY,
    expected integer CHECK (expected BETWEEN 0 AND 1000000),
    sold     integer NOT NULL DEFAULT 0,
    sold_at  timestamptz
);

-- A venue's day, published: staff see its shifts from then on, and every
-- change to them is pushed to the people it touches.
CREATE TABLE stf_publications (
    venue_id     uuid NOT NULL,
    day          date NOT NULL,
    published_at timestamptz NOT NULL,
    published_by uuid,
    PRIMARY KEY (venue_id, day)
);

-- The outbox of what staff are told, written in the transaction of the
-- change. No mail sender exists yet: sent_at stays empty until one does.
CREATE TABLE stf_notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id      uuid NOT NULL REFERENCES stf_staff (id),
    kind          text NOT NULL CHECK (kind IN ('published', 'assigned', 'moved', 'cancelled', 'removed', 'approved')),
    shift_id      uuid,
    assignment_id uuid,
    body          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz
);
CREATE INDEX stf_notifications_staff_idx ON stf_notifications (staff_id, id DESC);
CREATE INDEX stf_notifications_unsent_idx ON stf_notifications (id) WHERE sent_at IS NULL;

-- +goose Down
DROP TABLE stf_notifications;
DROP TABLE stf_publications;
DROP TABLE stf_attendance;
DROP TABLE stf_requirements;
DROP TABLE stf_assignments;
DROP TABLE stf_shifts;
DROP TABLE stf_settings;
DROP TABLE stf_staff_certs;
DROP TABLE stf_staff_roles;
DROP TABLE stf_staff;
DROP TABLE stf_roles;
DROP TABLE stf_cert_closure;
DROP TABLE stf_cert_includes;
DROP TABLE stf_certs;
