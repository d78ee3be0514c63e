package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Service keeps the search documents and answers searches.
type Service struct {
	app *app.Core
	key []byte // signs cursors
}

// NewService returns the search service on the core.
func NewService(a *app.Core) *Service {
	return &Service{app: a, key: a.SigningKey("search cursor v1")}
}

// public lists the statuses buyers may find.
var public = []string{"on_sale", "sold_out"}

// Hit is one event found.
type Hit struct {
	EventID     uuid.UUID `json:"event_id"`
	Title       string    `json:"title"`
	Artist      string    `json:"artist,omitempty"`
	VenueID     uuid.UUID `json:"venue_id"`
	VenueName   string    `json:"venue_name"`
	Category    string    `json:"category"`
	Status      string    `json:"status"`
	StartsAt    time.Time `json:"starts_at"`
	LocalTime   string    `json:"local_time"` // in the venue's timezone
	Timezone    string    `json:"timezone"`
	MinPrice    *int64    `json:"min_price,omitempty"` // all-in, every mandatory fee included
	MaxPrice    *int64    `json:"max_price,omitempty"`
	RangeMin    *int64    `json:"range_min,omitempty"` // all-in bounds a demand price may move in
	RangeMax    *int64    `json:"range_max,omitempty"`
	Currency    string    `json:"currency,omitempty"`
	Available   int       `json:"available"`
	Dynamic     bool      `json:"dynamic_pricing"`
	DistanceKm  *float64  `json:"distance_km,omitempty"`
	Score       *float64  `json:"score,omitempty"`
	MatchedIn   []string  `json:"matched_fields"`
	Highlights  Highlight `json:"highlights"`
	description string
	sortKey     string
}

// Highlight is each searchable field as HTML with the matched words in
// <mark> (everything else escaped); Description is a snippet.
type Highlight struct {
	Title       string `json:"title"`
	Artist      string `json:"artist,omitempty"`
	VenueName   string `json:"venue_name"`
	Description string `json:"description,omitempty"`
}

// Results is a page of hits.
type Results struct {
	Items      []Hit  `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
	Sort       string `json:"sort"`
}

// trigramThreshold is how alike a query word and a word of the lexicon
// must be (pg_trgm similarity) to be searched for as its typo.
const trigramThreshold = "0.3"

// expand turns the query's words into a tsquery: each word folded as the
// documents are, and, when the lexicon does not know it, or-ed with the up
// to three lexicon words most like it (typos). The last word is also a
// prefix (people search as they type: "radi" finds Radiohead, "sigur r"
// finds Sigur Rós). The words are split on anything but letters and digits, so
// the tsquery holds quoted lexemes only.
func expand(tx *tenants.Pgx, text string) (string, error) {
	if _, err := tx.Exec(`SET LOCAL pg_trgm.similarity_threshold = ` + trigramThreshold); err != nil {
		return "", err
	}
	rows, err := tx.Query(`SELECT t.term, w.word IS NOT NULL AS known,
			CASE WHEN w.word IS NULL AND length(t.term) >= 4 THEN
				array(SELECT l.word FROM srch_words l WHERE l.word % t.term ORDER BY public.similarity(l.word, t.term) DESC, l.word LIMIT 3)
			ELSE '{}'::text[] END AS alts
		FROM unnest(regexp_split_to_array(public.marquee_fold($1), '[^[:alnum:]]+')) WITH ORDINALITY AS t(term, n)
		LEFT JOIN srch_words w ON w.word = t.term
		WHERE t.term <> '' ORDER BY t.n`, text)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var words [][]string
	var last string
	for rows.Next() {
		var term string
		var known bool
		var alts []string
		if err := rows.Scan(&term, &known, &alts); err != nil {
			return "", err
		}
		w := []string{quoteLexeme(term)}
		for _, a := range alts {
			w = append(w, quoteLexeme(a))
		}
		words, last = append(words, w), term
	}
	if err := rows.Err(); err != nil || len(words) == 0 {
		return "", err
	}
	// The prefix covers the word itself.
	words[len(words)-1][0] = quoteLexeme(last) + ":*"
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = w[0]
		if len(w) > 1 {
			parts[i] = "(" + strings.Join(w, " | ") + ")"
		}
	}
	return strings.Join(parts, " & "), nil
}

// quoteLexeme quotes a word for to_tsquery (it holds letters and digits
// only; a quote is doubled all the same).
func quoteLexeme(w string) string { return "'" + strings.ReplaceAll(w, "'", "''") + "'" }

// Statement builds the search's SQL and named arguments (the bench runs
// the same statement directly).
func (q Query) Statement() (string, pgx.NamedArgs) {
	args := pgx.NamedArgs{"statuses": public, "limit": q.Limit + 1}
	var where []string
	score, dist := "NULL::float8", "NULL::float8"
	if q.Text != "" {
		args["tsq"] = "" // the expanded words: Run fills them in from the lexicon
		where = append(where, `d.doc @@ to_tsquery('public.marquee_search', @tsq)`)
		score = `round(ts_rank(d.doc, to_tsquery('public.marquee_search', @tsq))::numeric, 6)::float8`
	}
	if q.From != nil {
		where, args["from"] = append(where, `d.starts_at >= @from`), *q.From
	}
	if q.To != nil {
		where, args["to"] = append(where, `d.starts_at < @to`), *q.To
	}
	if q.Category != "" {
		where, args["category"] = append(where, `d.category = @category`), q.Category
	}
	if q.MinPrice != nil {
		where, args["min_price"] = append(where, `d.min_price >= @min_price`), *q.MinPrice
	}
	if q.MaxPrice != nil {
		where, args["max_price"] = append(where, `d.min_price <= @max_price`), *q.MaxPrice
	}
	if q.Available {
		where = append(where, `d.available > 0`)
	}
	if q.Near != nil {
		args["lat"], args["lng"], args["radius_m"] = q.Near.Lat, q.Near.Lng, q.RadiusKm*1000
		// The box finds candidates through the GiST index; the distance
		// keeps those truly inside the circle.
		where = append(where, `public.earth_box(public.ll_to_earth(@lat, @lng), @radius_m) @> d.earth`,
			`public.earth_distance(public.ll_to_earth(@lat, @lng), d.earth) <= @radius_m`, `d.earth IS NOT NULL`)
		dist = `round((public.earth_distance(public.ll_to_earth(@lat, @lng), d.earth) / 1000)::numeric, 3)::float8`
	}
	inner := `SELECT d.event_id, d.venue_id, d.title, d.artist, d.venue_name, d.description, d.category, d.status, d.starts_at, d.timezone,
			d.min_price, d.max_price, d.range_min, d.range_max, d.currency, d.available, d.dynamic,
			` + score + ` AS score, ` + dist + ` AS distance_km, coalesce(d.min_price, 9000000000000000) AS price_key
		FROM srch_documents d
		WHERE d.starts_at > now() AND d.status = ANY(@statuses)`
	for _, w := range where {
		inner += "\n\t\t  AND " + w
	}
	var order, after string
	switch q.Sort {
	case SortRelevance:
		order, after = `s.score DESC, s.event_id`, `(s.score < @ck::float8 OR (s.score = @ck::float8 AND s.event_id > @cid))`
	case SortPrice:
		order, after = `s.price_key, s.event_id`, `(s.price_key, s.event_id) > (@ck::bigint, @cid)`
	case SortDistance:
		order, after = `s.distance_km, s.event_id`, `(s.distance_km, s.event_id) > (@ck::float8, @cid)`
	default:
		order, after = `s.starts_at, s.event_id`, `(s.starts_at, s.event_id) > (@ck::timestamptz, @cid)`
	}
	stmt := `SELECT s.* FROM (` + inner + `) s`
	if q.After != nil {
		stmt += ` WHERE ` + after
		args["ck"], args["cid"] = q.After.Key, q.After.ID
	}
	return stmt + ` ORDER BY ` + order + ` LIMIT @limit`, args
}

// Search answers a query with one page of hits.
func (s *Service) Search(ctx context.Context, t tenants.Tenant, q Query, rawCursor string) (Results, error) {
	fp := q.fingerprint(t.Slug)
	c, err := openCursor(s.key, rawCursor, fp)
	if err != nil {
		return Results{}, err
	}
	q.After = c
	hits, err := s.Run(ctx, t, q)
	if err != nil {
		return Results{}, err
	}
	res := Results{Items: app.NonNil(hits), Sort: q.Sort}
	if len(hits) > q.Limit {
		res.Items = hits[:q.Limit]
		last := res.Items[q.Limit-1]
		res.NextCursor = signCursor(s.key, cursor{Key: last.sortKey, ID: last.EventID, FP: fp})
	}
	m := newMatcher(q.Text)
	for i := range res.Items {
		decorate(&res.Items[i], m)
	}
	return res, nil
}

// Run executes the query's statement in the tenant's schema and returns up
// to Limit+1 rows, undecorated.
func (s *Service) Run(ctx context.Context, t tenants.Tenant, q Query) ([]Hit, error) {
	stmt, args := q.Statement()
	var hits []Hit
	err := s.app.PgxTx(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *tenants.Pgx) error {
		hits = hits[:0]
		if q.Text != "" {
			tsq, err := expand(tx, q.Text)
			if err != nil {
				return err
			}
			if tsq == "" {
				return nil // no words to find
			}
			args["tsq"] = tsq
		}
		rows, err := tx.Query(stmt, args)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h Hit
			var cur *string
			var priceKey int64
			if err := rows.Scan(&h.EventID, &h.VenueID, &h.Title, &h.Artist, &h.VenueName, &h.description, &h.Category, &h.Status,
				&h.StartsAt, &h.Timezone, &h.MinPrice, &h.MaxPrice, &h.RangeMin, &h.RangeMax, &cur, &h.Available, &h.Dynamic, &h.Score, &h.DistanceKm, &priceKey); err != nil {
				return err
			}
			if cur != nil {
				h.Currency = *cur
			}
			switch q.Sort {
			case SortRelevance:
				h.sortKey = strconv.FormatFloat(*h.Score, 'g', -1, 64)
			case SortPrice:
				h.sortKey = strconv.FormatInt(priceKey, 10)
			case SortDistance:
				h.sortKey = strconv.FormatFloat(*h.DistanceKm, 'g', -1, 64)
			default:
				h.sortKey = h.StartsAt.UTC().Format(time.RFC3339Nano)
			}
			hits = append(hits, h)
		}
		return rows.Err()
	})
	return hits, err
}

// decorate fills what a hit says about itself: local time, highlights and
// the fields that matched.
func decorate(h *Hit, m *matcher) {
	h.StartsAt = h.StartsAt.UTC()
	loc, err := app.Timezone(h.Timezone)
	if err != nil {
		loc = time.UTC
	}
	h.LocalTime = h.StartsAt.In(loc).Format("Mon 2 Jan 2006, 15:04 MST")
	h.MatchedIn = []string{}
	mark := func(field, text string, width int) string {
		out, ok := highlight(text, m, width)
		if ok {
			h.MatchedIn = append(h.MatchedIn, field)
		}
		return out
	}
	h.Highlights = Highlight{Title: mark("title", h.Title, 0), Artist: mark("artist", h.Artist, 0),
		VenueName: mark("venue_name", h.VenueName, 0), Description: mark("description", h.description, 160)}
	if h.Score != nil && math.IsNaN(*h.Score) {
		h.Score = nil
	}
}

// Categories lists the categories of events buyers can find now.
func (s *Service) Categories(ctx context.Context, t tenants.Tenant) ([]string, error) {
	out := []string{}
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT DISTINCT category FROM srch_documents WHERE starts_at > now() AND status IN ? ORDER BY category`, public).Scan(&out).Error
	})
	return out, err
}

// ---- keeping the documents fresh

type docRow struct {
	EventID     uuid.UUID `json:"event_id"`
	VenueID     uuid.UUID `json:"venue_id"`
	Title       string    `json:"title"`
	Artist      string    `json:"artist"`
	VenueName   string    `json:"venue_name"`
	Description string    `json:"description"`
	Category    string    `json:"category"`
	Status      string    `json:"status"`
	StartsAt    time.Time `json:"starts_at"`
	EndsAt      time.Time `json:"ends_at"`
	Timezone    string    `json:"timezone"`
	Latitude    *float64  `json:"latitude"`
	Longitude   *float64  `json:"longitude"`
	Sells       bool      `json:"sells"`
	MinPrice    *int64    `json:"min_price"`
	MaxPrice    *int64    `json:"max_price"`
	RangeMin    *int64    `json:"range_min"`
	RangeMax    *int64    `json:"range_max"`
	Currency    *string   `json:"currency"`
	Available   int       `json:"available"`
	Dynamic     bool      `json:"dynamic"`
}

// Refresh rebuilds the documents of the given events from the owners'
// contracts: an event the calendar no longer shows to buyers loses its
// document.
func (s *Service) Refresh(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) error {
	dir := s.app.Events()
	if dir == nil || len(ids) == 0 {
		return nil
	}
	var evs []app.EventInfo
	var gone []uuid.UUID
	for _, id := range ids {
		ev, err := dir.Event(ctx, t, id)
		if err != nil {
			var e *app.Error
			if errors.As(err, &e) && e.Kind == app.KindNotFound {
				gone = append(gone, id)
				continue
			}
			return err
		}
		evs = append(evs, ev)
	}
	return s.store(ctx, t, evs, gone)
}

// store writes documents for events (the visible ones) and deletes those of
// the rest and of gone.
func (s *Service) store(ctx context.Context, t tenants.Tenant, evs []app.EventInfo, gone []uuid.UUID) error {
	var keep []app.EventInfo
	for _, ev := range evs {
		if isPublic(ev.Status) {
			keep = append(keep, ev)
		} else {
			gone = append(gone, ev.ID)
		}
	}
	ids := make([]uuid.UUID, len(keep))
	for i, ev := range keep {
		ids[i] = ev.ID
	}
	offers := map[uuid.UUID]app.EventOffer{}
	if o := s.app.Offers(); o != nil && len(ids) > 0 {
		var err error
		if offers, err = o.Offers(ctx, t, ids); err != nil {
			return err
		}
	}
	return s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		if len(gone) > 0 {
			if err := tx.Exec(`DELETE FROM srch_documents WHERE event_id IN ?`, gone).Error; err != nil {
				return err
			}
		}
		if len(keep) == 0 {
			return nil
		}
		var listings []struct {
			EventID     uuid.UUID `gorm:"column:event_id"`
			Artist      string    `gorm:"column:artist"`
			Description string    `gorm:"column:description"`
		}
		if err := tx.Raw(`SELECT event_id, artist, description FROM srch_listings WHERE event_id IN ?`, ids).Scan(&listings).Error; err != nil {
			return err
		}
		copyOf := map[uuid.UUID]int{}
		for i, l := range listings {
			copyOf[l.EventID] = i
		}
		rows := make([]docRow, 0, len(keep))
		for _, ev := range keep {
			r := docRow{EventID: ev.ID, VenueID: ev.VenueID, Title: ev.Title, VenueName: ev.VenueName, Category: ev.Category,
				Status: ev.Status, StartsAt: ev.StartsAt, EndsAt: ev.EndsAt, Timezone: ev.Timezone}
			if ev.Latitude != 0 || ev.Longitude != 0 {
				lat, lng := ev.Latitude, ev.Longitude
				r.Latitude, r.Longitude = &lat, &lng
			}
			if i, ok := copyOf[ev.ID]; ok {
				r.Artist, r.Description = listings[i].Artist, listings[i].Description
			}
			if o, ok := offers[ev.ID]; ok {
				minP, maxP, lo, hi, cur := o.MinPrice, o.MaxPrice, o.RangeMin, o.RangeMax, o.Currency
				r.Sells, r.MinPrice, r.MaxPrice, r.Currency, r.Available, r.Dynamic = true, &minP, &maxP, &cur, o.Available, o.Dynamic
				r.RangeMin, r.RangeMax = &lo, &hi
			}
			rows = append(rows, r)
		}
		raw, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		if err := tx.Exec(`INSERT INTO srch_documents (event_id, venue_id, title, artist, venue_name, description, category, status,
				starts_at, ends_at, timezone, latitude, longitude, earth, sells, min_price, max_price, range_min, range_max, currency, available, dynamic, refreshed_at)
			SELECT r.event_id, r.venue_id, r.title, r.artist, r.venue_name, r.description, r.category, r.status,
				r.starts_at, r.ends_at, r.timezone, r.latitude, r.longitude, public.ll_to_earth(r.latitude, r.longitude), r.sells, r.min_price, r.max_price, r.range_min, r.range_max, r.currency, r.available, r.dynamic, now()
			FROM jsonb_to_recordset(?::jsonb) AS r(event_id uuid, venue_id uuid, title text, artist text, venue_name text, description text,
				category text, status text, starts_at timestamptz, ends_at timestamptz, timezone text, latitude float8, longitude float8,
				sells boolean, min_price bigint, max_price bigint, range_min bigint, range_max bigint, currency text, available int, dynamic boolean)
			ON CONFLICT (event_id) DO UPDATE SET venue_id = EXCLUDED.venue_id, title = EXCLUDED.title, artist = EXCLUDED.artist,
				venue_name = EXCLUDED.venue_name, description = EXCLUDED.description, category = EXCLUDED.category, status = EXCLUDED.status,
				starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, timezone = EXCLUDED.timezone, latitude = EXCLUDED.latitude,
				longitude = EXCLUDED.longitude, earth = EXCLUDED.earth, sells = EXCLUDED.sells, min_price = EXCLUDED.min_price, max_price = EXCLUDED.max_price, range_min = EXCLUDED.range_min, range_max = EXCLUDED.range_max,
				currency = EXCLUDED.currency, available = EXCLUDED.available, dynamic = EXCLUDED.dynamic, refreshed_at = now()`, string(raw)).Error; err != nil {
			return err
		}
		// The lexicon learns the words of these documents (it only grows;
		// a word no document holds any more finds nothing).
		return tx.Exec(`INSERT INTO srch_words (word)
			SELECT DISTINCT w FROM srch_documents d,
				regexp_split_to_table(public.marquee_fold(d.title || ' ' || d.artist || ' ' || d.venue_name), '[^[:alnum:]]+') AS w
			WHERE d.event_id IN ? AND length(w) BETWEEN 3 AND 80
			ON CONFLICT DO NOTHING`, ids).Error
	})
}

func isPublic(status string) bool { return status == "on_sale" || status == "sold_out" }

// indexWindow is how far back a rebuild keeps documents: past events stay
// a while (the query leaves them out) so a late correction finds its row.
const indexWindow = 365 * 24 * time.Hour

// Rebuild rewrites every document from the owners' contracts and drops the
// documents of events no longer listed: what a lost hook missed is repaired
// here. It returns how many documents it wrote.
func (s *Service) Rebuild(ctx context.Context, t tenants.Tenant) (int, error) {
	dir := s.app.Events()
	if dir == nil {
		return 0, nil
	}
	started := time.Now()
	var after uuid.UUID
	n := 0
	for {
		evs, err := dir.Events(ctx, t, app.EventFilter{Statuses: public, From: started.Add(-indexWindow), After: after, Limit: 500})
		if err != nil {
			return n, err
		}
		if len(evs) == 0 {
			break
		}
		if err := s.store(ctx, t, evs, nil); err != nil {
			return n, err
		}
		n += len(evs)
		after = evs[len(evs)-1].ID
		if len(evs) < 500 {
			break
		}
	}
	// What the calendar stopped listing (cancelled, moved out of the
	// window) was not touched by this round.
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`DELETE FROM srch_documents WHERE refreshed_at < ?`, started).Error
	})
	return n, err
}

// ---- the chain's storefront copy

// Listing is the storefront copy of an event the chain writes: the artist
// line and a description, searched with the calendar's title and venue.
type Listing struct {
	Artist      string `json:"artist"`
	Description string `json:"description"`
}

// Validate refuses copy that does not fit.
func (l Listing) Validate() error {
	switch {
	case len([]rune(l.Artist)) > 200:
		return app.InvalidField("invalid_storefront_listing", "artist", "artist must be at most 200 characters")
	case len([]rune(l.Description)) > 4000:
		return app.InvalidField("invalid_storefront_listing", "description", "description must be at most 4000 characters")
	}
	return nil
}

// SetListing stores an event's storefront copy and refreshes its document.
func (s *Service) SetListing(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, l Listing) (Listing, error) {
	if err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO srch_listings (event_id, artist, description) VALUES (?, ?, ?)
			ON CONFLICT (event_id) DO UPDATE SET artist = EXCLUDED.artist, description = EXCLUDED.description, updated_at = now()`,
			eventID, l.Artist, l.Description).Error
	}); err != nil {
		return Listing{}, err
	}
	return l, s.Refresh(ctx, t, []uuid.UUID{eventID})
}

// describe is for logs.
func describe(ids []uuid.UUID) string {
	if len(ids) == 1 {
		return ids[0].String()
	}
	return fmt.Sprintf("%d events", len(ids))
}

// Listing reads an event's storefront copy (empty when none was written).
func (s *Service) Listing(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (Listing, error) {
	var l []Listing
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT artist, description FROM srch_listings WHERE event_id = ?`, eventID).Scan(&l).Error
	})
	if err != nil || len(l) == 0 {
		return Listing{}, err
	}
	return l[0], nil
}
