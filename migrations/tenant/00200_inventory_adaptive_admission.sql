-- Adaptive admission: a waiting room finds how many buyers the platform
-- serves within its latency objective, its admit_per_second and max_active
-- being upper bounds. On by default (a chain need not guess the numbers);
-- off, the room admits at exactly the configured rate and cap.

-- +goose Up
ALTER TABLE waiting_rooms ADD COLUMN adaptive boolean NOT NULL DEFAULT true;

-- +goose Down
ALTER TABLE waiting_rooms DROP COLUMN adaptive;
