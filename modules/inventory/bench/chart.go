package bench

import (
	"fmt"
	"html"
	"strings"
)

// Line is one series of a chart.
type Line struct {
	Name   string
	Color  string
	Points []float64 // one per second
}

// SVGChart draws latency over time (one point per second) as a small,
// dependency-free SVG.
func SVGChart(title, unit string, lines []Line) string {
	// The legend has a column of its own right of the plot, never over a line.
	const w, h, left, right, top, bottom = 1000.0, 360.0, 60.0, 130.0, 40.0, 40.0
	maxY, maxX := 1.0, 1
	for _, l := range lines {
		for _, p := range l.Points {
			maxY = max(maxY, p)
		}
		maxX = max(maxX, len(l.Points))
	}
	maxY *= 1.1
	x := func(i int) float64 { return left + float64(i)*(w-left-right)/float64(max(maxX-1, 1)) }
	y := func(v float64) float64 { return h - bottom - v*(h-top-bottom)/maxY }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`, w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/><text x="%.0f" y="22" font-size="15" font-weight="bold">%s</text>`, left, html.EscapeString(title))
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#e3e1ec"/><text x="%.0f" y="%.1f" text-anchor="end" fill="#6b6880">%.0f</text>`,
			left, w-right, y(v), y(v), left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="14" y="%.0f" transform="rotate(-90 14 %.0f)" fill="#6b6880">%s</text>`, h/2, h/2, html.EscapeString(unit))
	for s := 0; s < maxX; s += max(1, maxX/10) {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#6b6880">%ds</text>`, x(s), h-bottom+18, s)
	}
	for i, l := range lines {
		var pts []string
		for j, p := range l.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(j), y(p)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, l.Color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%d" width="12" height="3" fill="%s"/><text x="%.0f" y="%d">%s</text>`,
			w-right+14, int(top)+i*18, l.Color, w-right+32, int(top)+5+i*18, html.EscapeString(l.Name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
