package search

import (
	"html"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// fold lower-cases and strips accents, as public.marquee_fold does in the
// database, so the page marks the words the query matched there. Plain
// ASCII, most of what a page holds, needs only lower-casing.
func fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.ToLower(out)
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) }

// term is one folded word of the query, with its trigrams.
type term struct {
	word   string
	prefix bool // the query's last word: every word it begins matches
	grams  []string
}

// matcher marks the words of a page's fields that answer a query. It
// remembers each folded word's answer: the words of a page repeat (venue
// names, "live", the query's own words), and a typo check is the costly
// part of a search answer.
type matcher struct {
	terms []term
	seen  map[string]bool
}

// newMatcher folds the query's words; the last is also a prefix, as the
// search takes it.
func newMatcher(q string) *matcher {
	ws := strings.FieldsFunc(fold(q), func(r rune) bool { return !isWordRune(r) })
	m := &matcher{terms: make([]term, len(ws)), seen: map[string]bool{}}
	for i, w := range ws {
		m.terms[i] = term{word: w, prefix: i == len(ws)-1, grams: trigrams(w)}
	}
	return m
}

// matches says whether a folded word of a field answers one of the terms.
func (m *matcher) matches(word string) bool {
	if v, ok := m.seen[word]; ok {
		return v
	}
	var grams []string // computed once, if a typo check needs them
	ok := false
	for _, t := range m.terms {
		if t.prefix && strings.HasPrefix(word, t.word) {
			ok = true
			break
		}
		if sameWord(word, t.word) {
			ok = true
			break
		}
		if len(t.word) >= 4 && len(word) >= 4 {
			limit := 1
			if len(t.word) >= 8 {
				limit = 2
			}
			if grams == nil {
				grams = trigrams(word)
			}
			if similarity(grams, t.grams) >= 0.45 || editDistance(word, t.word) <= limit {
				ok = true
				break
			}
		}
	}
	m.seen[word] = ok
	return ok
}

// sameWord: the same word, or the same stem (one is the other plus a short
// ending: "concerts", "concert").
func sameWord(word, term string) bool {
	return word == term ||
		len(term) >= 4 && strings.HasPrefix(word, term) && len(word)-len(term) <= 3 ||
		len(word) >= 4 && strings.HasPrefix(term, word) && len(term)-len(word) <= 3
}

// trigrams of a word as pg_trgm makes them (padded with two spaces before
// and one after), each once.
func trigrams(w string) []string {
	r := []rune("  " + w + " ")
	out := make([]string, 0, len(r))
	for i := 0; i+3 <= len(r); i++ {
		g := string(r[i : i+3])
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// similarity is pg_trgm's: shared trigrams over all distinct trigrams.
func similarity(a, b []string) float64 {
	common := 0
	for _, g := range a {
		if slices.Contains(b, g) {
			common++
		}
	}
	union := len(a) + len(b) - common
	if union == 0 {
		return 0
	}
	return float64(common) / float64(union)
}

// editDistance is the Levenshtein distance between two words (runes).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// highlight returns the field as HTML with the words that match the query
// in <mark>, whether anything matched, and — for long text — a snippet of
// about width runes around the first match.
func highlight(text string, m *matcher, width int) (string, bool) {
	if m == nil || len(m.terms) == 0 || text == "" {
		return html.EscapeString(text), false
	}
	rs := []rune(text)
	type span struct{ from, to int }
	var spans []span
	for i := 0; i < len(rs); {
		if !isWordRune(rs[i]) {
			i++
			continue
		}
		j := i
		for j < len(rs) && isWordRune(rs[j]) {
			j++
		}
		if m.matches(fold(string(rs[i:j]))) {
			spans = append(spans, span{i, j})
		}
		i = j
	}
	if len(spans) == 0 {
		if width > 0 && len(rs) > width {
			return html.EscapeString(string(rs[:width])) + "…", false
		}
		return html.EscapeString(text), false
	}
	from, to := 0, len(rs)
	if width > 0 && len(rs) > width {
		from = max(0, spans[0].from-width/3)
		to = min(len(rs), from+width)
	}
	var b strings.Builder
	if from > 0 {
		b.WriteString("…")
	}
	at := from
	for _, s := range spans {
		if s.from < from || s.to > to {
			continue
		}
		b.WriteString(html.EscapeString(string(rs[at:s.from])))
		b.WriteString("<mark>" + html.EscapeString(string(rs[s.from:s.to])) + "</mark>")
		at = s.to
	}
	b.WriteString(html.EscapeString(string(rs[at:to])))
	if to < len(rs) {
		b.WriteString("…")
	}
	return b.String(), true
}
