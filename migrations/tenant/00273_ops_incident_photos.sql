-- Photos attached to incidents: the bytes in the core's object storage
-- (ops/incidents/<incident>/<photo>), what they are here; each upload is
-- also a step of the incident's append-only timeline.

-- +goose Up
CREATE TABLE ops_incident_photos (
    id           uuid PRIMARY KEY,
    incident_id  uuid NOT NULL REFERENCES ops_incidents (id),
    object_key   text NOT NULL UNIQUE,
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
    sha256       text NOT NULL,
    uploaded_by  uuid,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ops_incident_photos_incident ON ops_incident_photos (incident_id, created_at);

ALTER TABLE ops_incident_timeline DROP CONSTRAINT ops_incident_timeline_kind_check,
    ADD CONSTRAINT ops_incident_timeline_kind_check CHECK (kind IN ('reported', 'acknowledged', 'assigned', 'note', 'resolved', 'photo'));

-- +goose Down
ALTER TABLE ops_incident_timeline DROP CONSTRAINT ops_incident_timeline_kind_check,
    ADD CONSTRAINT ops_incident_timeline_kind_check CHECK (kind IN ('reported', 'acknowledged', 'assigned', 'note', 'resolved')) NOT VALID;
DROP TABLE ops_incident_photos;
