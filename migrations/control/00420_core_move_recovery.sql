-- Moves that survive their process: each attempt records the status the
-- tenant had before it (restored when the move is undone), the step it has
-- reached, and the name its source schema is renamed to at the switch,
-- written before the rename, so `marquee tenant move SLUG --recover` can
-- tell a move that died before its switch from one that died inside it.

-- +goose Up
ALTER TABLE tenant_moves
    ADD COLUMN prior_status text,
    ADD COLUMN phase        text NOT NULL DEFAULT '',
    ADD COLUMN backup       text;

-- +goose Down
ALTER TABLE tenant_moves
    DROP COLUMN backup,
    DROP COLUMN phase,
    DROP COLUMN prior_status;
