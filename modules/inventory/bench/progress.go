package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// progress reports how far a run is: a bar redrawn in place on a terminal,
// a plain line every plainEvery otherwise (a log or a CI job keeps every
// line, so a redrawn bar would fill it with carriage returns). Workers
// draw it from many goroutines at once.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	tty   bool
	last  time.Time
}

const plainEvery = 5 * time.Second

func newProgress(w io.Writer, start time.Time) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, start: start, tty: ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))}
}

func (p *progress) draw(done, total int, extra string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	elapsed := time.Since(p.start).Round(time.Second)
	if !p.tty {
		if time.Since(p.last) < plainEvery {
			return
		}
		p.last = time.Now()
		fmt.Fprintf(p.w, "%s  %5.1f%%  %s\n", elapsed, 100*frac, extra)
		return
	}
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%%  %s  %s   ", strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac, elapsed, extra)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
