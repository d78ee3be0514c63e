-- Offline scanning (inventory's door room, internal/door/sync.go): scans
-- that devices made without the network and upload later. Expand only: the
-- code before this release never reads the new columns or the new table, and
-- its inserts get the defaults.

-- +goose Up

-- A synced scan keeps what the device showed (device_result), the device's
-- clock offset measured when the batch was sent (server time minus device
-- time, in ms) and the corrected time it happened (happened_at = scanned_at +
-- offset), by which the earliest of several admissions of one ticket is
-- chosen. Online scans leave happened_at NULL: they happened when received.
ALTER TABLE inv_checkins
    ADD COLUMN offline         boolean NOT NULL DEFAULT false,
    ADD COLUMN device_result   text CHECK (device_result IN ('admit', 'exited', 'already_admitted', 'not_inside', 'wrong_zone',
                                                             'wrong_event', 'revoked', 'not_yet_valid', 'expired')),
    ADD COLUMN clock_offset_ms bigint,
    ADD COLUMN happened_at     timestamptz,
    ADD CONSTRAINT inv_checkins_offline_check CHECK (NOT offline OR (device_result IS NOT NULL AND clock_offset_ms IS NOT NULL AND happened_at IS NOT NULL));

-- Conflicts: a scan that let a ticket's holder in although another scan of
-- the ticket (the admission: the earliest) had already done so. Several
-- offline devices admitting one ticket, or an offline admission that
-- happened before an online one, or a re-entry the event does not allow.
-- One row per such scan; when a later-synced scan turns out earlier, the
-- rows move to it (admission_id is always the ticket's admission).
CREATE TABLE inv_door_conflicts (
    checkin_id   uuid PRIMARY KEY,
    event_id     uuid NOT NULL,
    ticket_id    uuid NOT NULL,
    admission_id uuid NOT NULL,
    reason       text NOT NULL CHECK (reason IN ('double_admission', 'reentry')),
    found_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (admission_id <> checkin_id)
);
CREATE INDEX inv_door_conflicts_event_idx ON inv_door_conflicts (event_id, found_at);
CREATE INDEX inv_door_conflicts_admission_idx ON inv_door_conflicts (admission_id);

-- +goose Down
DROP TABLE inv_door_conflicts;
ALTER TABLE inv_checkins DROP CONSTRAINT inv_checkins_offline_check,
    DROP COLUMN offline, DROP COLUMN device_result, DROP COLUMN clock_offset_ms, DROP COLUMN happened_at;
