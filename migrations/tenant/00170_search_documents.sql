-- Search: one document per upcoming event, the search module's own copy of
-- what the calendar (event, venue, coordinates) and the inventory (all-in
-- prices, availability) say about it, plus the storefront copy the chain
-- writes here (artist line, description). Kept fresh by the owners' change
-- hooks and rebuilt by a periodic job; never joined to their tables.

-- +goose Up
CREATE TABLE srch_listings (
    event_id    uuid PRIMARY KEY,
    artist      text NOT NULL DEFAULT '' CHECK (length(artist) <= 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE srch_documents (
    event_id     uuid PRIMARY KEY,
    venue_id     uuid NOT NULL,
    title        text NOT NULL,
    artist       text NOT NULL DEFAULT '',
    venue_name   text NOT NULL,
    description  text NOT NULL DEFAULT '',
    category     text NOT NULL,
    status       text NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    timezone     text NOT NULL,
    latitude     double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude    double precision CHECK (longitude BETWEEN -180 AND 180),
    sells        boolean NOT NULL DEFAULT false, -- the inventory offers tickets
    min_price    bigint,                         -- all-in, minor units
    max_price    bigint,
    range_min    bigint,                         -- all-in bounds of demand-priced tiers
    range_max    bigint,
    currency     char(3),
    available    integer NOT NULL DEFAULT 0,
    dynamic      boolean NOT NULL DEFAULT false,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    -- Weighted: a title or artist match outranks a venue match, which
    -- outranks one in the description.
    doc tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('public.marquee_search', title), 'A') ||
        setweight(to_tsvector('public.marquee_search', artist), 'A') ||
        setweight(to_tsvector('public.marquee_search', venue_name), 'B') ||
        setweight(to_tsvector('public.marquee_search', description), 'C')) STORED,
    -- The venue's point on the earth, computed once when the document is
    -- written rather than per row a distance query reads. Not a generated
    -- column: ll_to_earth names earthdistance's functions without their
    -- schema, and a restore (tenant move) runs with an empty search_path.
    earth public.earth,
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);
CREATE INDEX srch_documents_doc_idx ON srch_documents USING gin (doc);
CREATE INDEX srch_documents_starts_idx ON srch_documents (starts_at, event_id);
CREATE INDEX srch_documents_price_idx ON srch_documents (min_price, event_id);
CREATE INDEX srch_documents_earth_idx ON srch_documents USING gist (earth) WHERE earth IS NOT NULL;

-- The lexicon: every folded word of the documents' titles, artists and
-- venue names. A query word that is not in it is looked up here by
-- trigram similarity (typos) and the closest words are searched for as
-- well: a small table scanned through its trigram index, instead of a
-- similarity computed for every document.
CREATE TABLE srch_words (
    word text PRIMARY KEY CHECK (length(word) BETWEEN 3 AND 80)
);
CREATE INDEX srch_words_trgm_idx ON srch_words USING gin (word public.gin_trgm_ops);

-- +goose Down
DROP TABLE srch_words;
DROP TABLE srch_documents;
DROP TABLE srch_listings;
