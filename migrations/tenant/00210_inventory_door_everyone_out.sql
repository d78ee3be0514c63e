-- "Everyone out at": an optional time per event after which everyone inside
-- counts as out (a venue cleared at curfew). It is not written as exit
-- records when the time comes: attendance and every later scan compare each
-- ticket's last passage with it, so the instant is exact whatever the lag of
-- a job, setting it twice changes nothing, and offline scans synced later
-- are judged at their corrected time against it. A ticket's next passage
-- after it folds the implied exit into inv_door_state (exits + 1).

-- +goose Up
ALTER TABLE inv_door_events ADD COLUMN everyone_out_at timestamptz;

-- +goose Down
ALTER TABLE inv_door_events DROP COLUMN everyone_out_at;
