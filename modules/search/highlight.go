package search

import (
	"html"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// fold lower-cases and strips accents, as public.marquee_fold does in the
// database, so the page marks the words the query matched there.
func fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.ToLower(out)
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) }

// terms are the query's folded words; the last ends in "*": the search
// takes it as a prefix too.
func terms(q string) []string {
	ts := strings.FieldsFunc(fold(q), func(r rune) bool { return !isWordRune(r) })
	if len(ts) > 0 {
		ts[len(ts)-1] += "*"
	}
	return ts
}

// trigrams of a word as pg_trgm makes them (padded with two spaces before
// and one after).
func trigrams(w string) map[string]bool {
	r := []rune("  " + w + " ")
	out := make(map[string]bool, len(r))
	for i := 0; i+3 <= len(r); i++ {
		out[string(r[i:i+3])] = true
	}
	return out
}

func similarity(a, b string) float64 {
	ta, tb := trigrams(a), trigrams(b)
	common := 0
	for g := range ta {
		if tb[g] {
			common++
		}
	}
	union := len(ta) + len(tb) - common
	if union == 0 {
		return 0
	}
	return float64(common) / float64(union)
}

// matches says whether a folded word of a field answers a folded query
// term: the same word, the same stem (one is the other plus a short ending:
// "concerts", "concert"), or a near spelling (typos); a term ending in "*"
// also matches every word it begins.
func matches(word, term string) bool {
	if p, ok := strings.CutSuffix(term, "*"); ok {
		return strings.HasPrefix(word, p) || matches(word, p)
	}
	switch {
	case word == term:
		return true
	case len(term) >= 4 && strings.HasPrefix(word, term) && len(word)-len(term) <= 3,
		len(word) >= 4 && strings.HasPrefix(term, word) && len(term)-len(word) <= 3:
		return true
	case len(term) >= 4 && len(word) >= 4:
		limit := 1
		if len(term) >= 8 {
			limit = 2
		}
		return similarity(word, term) >= 0.45 || editDistance(word, term) <= limit
	}
	return false
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
func highlight(text string, ts []string, width int) (string, bool) {
	if len(ts) == 0 || text == "" {
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
		w := fold(string(rs[i:j]))
		for _, t := range ts {
			if matches(w, t) {
				spans = append(spans, span{i, j})
				break
			}
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
