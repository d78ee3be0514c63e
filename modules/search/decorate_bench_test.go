package search

import (
	"testing"
	"time"
)

// BenchmarkDecorate is the work a text query's page of 20 hits adds after
// the SQL: local times and highlighted fields.
func BenchmarkDecorate(b *testing.B) {
	q := "metalica tour"
	hit := Hit{Title: "Metallica live", Artist: "Metallica", VenueName: "Lindenpark Potsdam",
		description: "night tour anthems acoustic live special guests album release party standing seated late show",
		Timezone:    "Europe/Berlin", StartsAt: time.Date(2026, 12, 24, 19, 0, 0, 0, time.UTC)}
	b.ReportAllocs()
	for b.Loop() {
		m := newMatcher(q) // one per answer, as Search makes it
		for range 20 {
			h := hit
			decorate(&h, m)
		}
	}
}
