package search

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"marquee/app"
)

// Sorts a search may ask for.
const (
	SortRelevance = "relevance"
	SortDate      = "date"
	SortPrice     = "price"
	SortDistance  = "distance"
)

// Limits of a query.
const (
	MaxQueryLen  = 200
	MaxRadiusKm  = 500.0 // wider than any chain's reach; Ticketmaster's Discovery API stops at 500 too
	DefaultLimit = 20
	MaxLimit     = 50
)

// Query is a parsed, validated search.
type Query struct {
	Text      string
	From, To  *time.Time
	Category  string
	MinPrice  *int64
	MaxPrice  *int64
	Available bool
	Near      *Point
	RadiusKm  float64
	Sort      string
	Limit     int
	After     *cursor
}

// Point is a position in decimal degrees.
type Point struct{ Lat, Lng float64 }

// queryChar says whether a rune may appear in a search text: letters,
// marks, digits, spaces and the punctuation titles use ("AC/DC", "Guns N'
// Roses", "Earth, Wind & Fire"). What else a query brings (; = < > \ { } |
// * ` ~ ^ $ %) is what injection attempts and markup are made of, and no
// title needs it.
func queryChar(r rune) bool {
	if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == ' ' {
		return true
	}
	return strings.ContainsRune(`'’-&.,!?:"/+()#@`, r)
}

var categoryRE = regexp.MustCompile(`^[a-z][a-z0-9_]{1,39}$`)

// ParseQuery validates the search's URL parameters; every refusal is a
// problem naming the field.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Limit: DefaultLimit}
	for k, vs := range v {
		switch k {
		case "q", "from", "to", "category", "min_price", "max_price", "available", "near", "radius_km", "sort", "cursor", "limit":
			if len(vs) > 1 {
				return Query{}, app.InvalidField("invalid_filter", k, "%s is given more than once", k)
			}
		default:
			return Query{}, app.InvalidField("invalid_filter", k, "unknown parameter %q", k)
		}
	}
	text := strings.TrimSpace(v.Get("q"))
	if !utf8.ValidString(text) || utf8.RuneCountInString(text) > MaxQueryLen {
		return Query{}, app.InvalidField("invalid_query", "q", "q must be UTF-8 text of at most %d characters", MaxQueryLen)
	}
	for _, r := range text {
		if !queryChar(r) {
			return Query{}, app.InvalidField("invalid_query", "q", "q may not contain %q: search with words, numbers and ordinary punctuation", r)
		}
	}
	q.Text = strings.Join(strings.Fields(text), " ")
	for _, f := range []struct {
		name string
		dst  **time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		s := v.Get(f.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			d, err2 := time.Parse("2006-01-02", s)
			if err2 != nil {
				return Query{}, app.InvalidField("invalid_filter", f.name, "%s must be a date (2026-05-01) or an RFC 3339 time", f.name)
			}
			t = d
		}
		t = t.UTC()
		*f.dst = &t
	}
	if q.From != nil && q.To != nil && !q.To.After(*q.From) {
		return Query{}, app.InvalidField("invalid_filter", "to", "to must be after from")
	}
	if c := v.Get("category"); c != "" {
		if !categoryRE.MatchString(c) {
			return Query{}, app.InvalidField("invalid_filter", "category", "category must be a category name such as concert")
		}
		q.Category = c
	}
	for _, f := range []struct {
		name string
		dst  **int64
	}{{"min_price", &q.MinPrice}, {"max_price", &q.MaxPrice}} {
		s := v.Get(f.name)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > 100_000_000 {
			return Query{}, app.InvalidField("invalid_filter", f.name, "%s must be an amount in minor units from 0 to 100000000", f.name)
		}
		*f.dst = &n
	}
	if q.MinPrice != nil && q.MaxPrice != nil && *q.MaxPrice < *q.MinPrice {
		return Query{}, app.InvalidField("invalid_filter", "max_price", "max_price must be at least min_price")
	}
	switch v.Get("available") {
	case "", "false":
	case "true":
		q.Available = true
	default:
		return Query{}, app.InvalidField("invalid_filter", "available", "available must be true or false")
	}
	if s := v.Get("near"); s != "" {
		p, ok := parsePoint(s)
		if !ok {
			return Query{}, app.InvalidField("invalid_near", "near", "near must be latitude,longitude in decimal degrees (e.g. 52.52,13.405)")
		}
		q.Near = &p
		q.RadiusKm = 50
	}
	if s := v.Get("radius_km"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		switch {
		case q.Near == nil:
			return Query{}, app.InvalidField("invalid_radius", "radius_km", "radius_km needs near")
		case err != nil || math.IsNaN(r) || r <= 0 || r > MaxRadiusKm:
			return Query{}, app.InvalidField("invalid_radius", "radius_km", "radius_km must be above 0 and at most %g", MaxRadiusKm)
		}
		q.RadiusKm = r
	}
	q.Sort = v.Get("sort")
	switch q.Sort {
	case "":
		q.Sort = SortDate
		if q.Text != "" {
			q.Sort = SortRelevance
		}
	case SortRelevance:
		if q.Text == "" {
			return Query{}, app.InvalidField("invalid_filter", "sort", "sort=relevance needs q")
		}
	case SortDate, SortPrice:
	case SortDistance:
		if q.Near == nil {
			return Query{}, app.InvalidField("invalid_filter", "sort", "sort=distance needs near")
		}
	default:
		return Query{}, app.InvalidField("invalid_filter", "sort", "sort must be relevance, date, price or distance")
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return Query{}, app.InvalidField("invalid_filter", "limit", "limit must be 1 to %d", MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// parsePoint reads "lat,lng" in decimal degrees, refusing NaN, infinities,
// exponents and values off the globe.
func parsePoint(s string) (Point, bool) {
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return Point{}, false
	}
	num := regexp.MustCompile(`^-?\d{1,3}(\.\d{1,10})?$`)
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if !num.MatchString(a) || !num.MatchString(b) {
		return Point{}, false
	}
	lat, err1 := strconv.ParseFloat(a, 64)
	lng, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil || lat < -90 || lat > 90 || lng < -180 || lng > 180 {
		return Point{}, false
	}
	return Point{lat, lng}, true
}

// fingerprint names the search a cursor belongs to: every parameter but the
// cursor, normalised, and the chain.
func (q Query) fingerprint(tenant string) string {
	var b strings.Builder
	b.WriteString(tenant + "\x00" + q.Text + "\x00" + q.Category + "\x00" + q.Sort + "\x00" + strconv.Itoa(q.Limit))
	for _, t := range []*time.Time{q.From, q.To} {
		if t != nil {
			b.WriteString("\x00" + t.Format(time.RFC3339Nano))
		} else {
			b.WriteString("\x00-")
		}
	}
	for _, p := range []*int64{q.MinPrice, q.MaxPrice} {
		if p != nil {
			b.WriteString("\x00" + strconv.FormatInt(*p, 10))
		} else {
			b.WriteString("\x00-")
		}
	}
	b.WriteString("\x00" + strconv.FormatBool(q.Available))
	if q.Near != nil {
		b.WriteString("\x00" + strconv.FormatFloat(q.Near.Lat, 'g', -1, 64) + "," + strconv.FormatFloat(q.Near.Lng, 'g', -1, 64) +
			"," + strconv.FormatFloat(q.RadiusKm, 'g', -1, 64))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:12])
}

// cursor is where a page ended: the last row's sort key and id, for the
// search it was made for.
type cursor struct {
	Key string    `json:"k"`
	ID  uuid.UUID `json:"i"`
	FP  string    `json:"f"`
}

// signCursor makes a tamper-evident cursor: JSON, then an HMAC over it.
func signCursor(key []byte, c cursor) string {
	raw, _ := json.Marshal(c)
	m := hmac.New(sha256.New, key)
	m.Write(raw)
	return base64.RawURLEncoding.EncodeToString(raw) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var errCursor = app.InvalidField("invalid_cursor", "cursor", "the cursor is not one this search gave out; start again without it")

// openCursor checks a cursor's signature and that it belongs to this search.
func openCursor(key []byte, s, fingerprint string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > 512 {
		return nil, errCursor
	}
	body, sig, ok := strings.Cut(s, ".")
	if !ok {
		return nil, errCursor
	}
	raw, err1 := base64.RawURLEncoding.DecodeString(body)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return nil, errCursor
	}
	m := hmac.New(sha256.New, key)
	m.Write(raw)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return nil, errCursor
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.FP != fingerprint {
		return nil, errCursor
	}
	return &c, nil
}
