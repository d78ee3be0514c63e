package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress redraws one status line on a terminal-like writer.
type progress struct {
	w     io.Writer
	start time.Time
}

func (p *progress) draw(done, total int, extra string) {
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%%  %s  %s   ", strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac,
		time.Since(p.start).Round(time.Second), extra)
}

func (p *progress) finish() { fmt.Fprintln(p.w) }
