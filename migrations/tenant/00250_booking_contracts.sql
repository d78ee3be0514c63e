-- Booking contracts: the chain's contract template (clauses it edits), the
-- contract rendered from an accepted terms version (a PDF in object storage,
-- with its SHA-256), each party's signature over that digest, and the seal:
-- one signed copy written once after every party signed, by a visible,
-- retried job (its attempts and last error are kept on the row).

-- +goose Up
CREATE TABLE bkg_contract_template (
    id         smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    clauses    jsonb NOT NULL,
    updated_by text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bkg_contracts (
    id              uuid PRIMARY KEY,
    booking_id      uuid NOT NULL UNIQUE REFERENCES bkg_bookings (id),
    terms_n         integer NOT NULL CHECK (terms_n >= 1),
    object_key      text NOT NULL,
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes      bigint NOT NULL CHECK (size_bytes > 0),
    -- what was rendered (chain, parties, terms, the clauses of the day), so
    -- the signed copy reproduces the same pages whatever the template became
    document        jsonb NOT NULL,
    -- signing: waiting for signatures; sealing: every party signed, the
    -- seal job runs (seal_attempts / seal_error say how it goes); sealed:
    -- the signed copy exists and nothing may sign or seal again.
    status          text NOT NULL DEFAULT 'signing' CHECK (status IN ('signing', 'sealing', 'sealed')),
    provider        text NOT NULL DEFAULT 'click' CHECK (provider IN ('click', 'esign')),
    envelope_id     text,
    seal_attempts   integer NOT NULL DEFAULT 0,
    seal_error      text NOT NULL DEFAULT '',
    sealed_key      text,
    sealed_sha256   text CHECK (sealed_sha256 ~ '^[0-9a-f]{64}$'),
    sealed_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'sealed') = (sealed_sha256 IS NOT NULL AND sealed_key IS NOT NULL AND sealed_at IS NOT NULL))
);
CREATE UNIQUE INDEX bkg_contracts_envelope_key ON bkg_contracts (envelope_id) WHERE envelope_id IS NOT NULL;

-- One signature per party per contract; the digest is the one the signer
-- was shown, and it must be the contract's.
CREATE TABLE bkg_signatures (
    contract_id     uuid NOT NULL REFERENCES bkg_contracts (id),
    party           text NOT NULL CHECK (party IN ('promoter', 'artist')),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    signed_at       timestamptz NOT NULL,
    ip              text NOT NULL DEFAULT '',
    document_sha256 text NOT NULL CHECK (document_sha256 ~ '^[0-9a-f]{64}$'),
    via             text NOT NULL DEFAULT 'click-to-sign',
    actor           text NOT NULL DEFAULT '',
    PRIMARY KEY (contract_id, party)
);

-- An e-signature provider's deliveries act in the history too (widening
-- the check: old code never writes the new value).
ALTER TABLE bkg_history DROP CONSTRAINT bkg_history_actor_kind_check;
ALTER TABLE bkg_history ADD CONSTRAINT bkg_history_actor_kind_check CHECK (actor_kind IN ('staff', 'agent', 'system', 'provider'));

-- +goose Down
ALTER TABLE bkg_history DROP CONSTRAINT bkg_history_actor_kind_check;
ALTER TABLE bkg_history ADD CONSTRAINT bkg_history_actor_kind_check CHECK (actor_kind IN ('staff', 'agent', 'system'));
DROP TABLE bkg_signatures;
DROP TABLE bkg_contracts;
DROP TABLE bkg_contract_template;
