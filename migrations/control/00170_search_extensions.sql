-- Search: the extensions the storefront search needs, created once in public
-- (tenant schemas find them through "<tenant>, public"): unaccent folds
-- accents, pg_trgm tolerates typos, cube + earthdistance measure distances
-- from venue coordinates. Created from a tenant migration they would land in
-- that tenant's schema (see ARCHITECTURE.md, known traps).

-- +goose Up
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS cube WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS earthdistance WITH SCHEMA public;

-- unaccent() is only STABLE (its dictionary could change); naming the
-- dictionary makes a wrapper that indexes and generated columns may use.
CREATE OR REPLACE FUNCTION public.marquee_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;

-- English stemming after accent folding: "Beyoncé" and "beyonce" are one
-- word, "concerts" finds "concert".
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
                   WHERE c.cfgname = 'marquee_search' AND n.nspname = 'public') THEN
        CREATE TEXT SEARCH CONFIGURATION public.marquee_search (COPY = pg_catalog.english);
        ALTER TEXT SEARCH CONFIGURATION public.marquee_search
            ALTER MAPPING FOR hword, hword_part, word WITH public.unaccent, pg_catalog.english_stem;
    END IF;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP TEXT SEARCH CONFIGURATION IF EXISTS public.marquee_search;
DROP FUNCTION IF EXISTS public.marquee_fold(text);
