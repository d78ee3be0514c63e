package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress redraws one status line on a terminal; written anywhere else (a
// file, a pipe, CI's log) it draws nothing, since every redraw would be a
// line of its own.
type progress struct {
	w     io.Writer
	start time.Time
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) draw(done, total int, extra string) {
	if !isTerminal(p.w) {
		return
	}
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%%  %s  %s   ", strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac,
		time.Since(p.start).Round(time.Second), extra)
}

func (p *progress) finish() {
	if isTerminal(p.w) {
		fmt.Fprintln(p.w)
	}
}
