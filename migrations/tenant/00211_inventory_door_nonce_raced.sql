-- A scan is one statement in one round trip, in its own implicit
-- transaction (no BEGIN / COMMIT): when its log insert finds its nonce
-- committed meanwhile by a concurrent twin, the statement must undo what it
-- wrote, so it raises this error (SQLSTATE MQD01) and the caller answers the
-- twin's record. A volatile function, so the planner never evaluates it
-- ahead of the condition that calls it.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION inv_door_nonce_raced() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'inv_door_nonce_raced' USING ERRCODE = 'MQD01';
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION inv_door_nonce_raced();
