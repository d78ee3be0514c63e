package ops

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Report is an event's compliance record: occupancy per zone and minute,
// with each zone's peak against its licensed capacity.
type Report struct {
	EventID     uuid.UUID    `json:"event_id"`
	Title       string       `json:"title"`
	Venue       string       `json:"venue"`
	Timezone    string       `json:"timezone"`
	StartsAt    time.Time    `json:"starts_at"`
	GeneratedAt time.Time    `json:"generated_at"`
	Zones       []ReportZone `json:"zones"`
	Alerts      []Alert      `json:"alerts"`
}

// ReportZone is one zone's history.
type ReportZone struct {
	Zone     string        `json:"zone"`
	Capacity int           `json:"capacity"`
	Peak     int           `json:"peak"`
	PeakAt   *time.Time    `json:"peak_at,omitempty"`
	Minutes  []ReportPoint `json:"minutes"`
	// OverCapacityMinutes counts minutes whose peak passed the capacity.
	OverCapacityMinutes int `json:"over_capacity_minutes"`
}

// ReportPoint is one minute of a zone.
type ReportPoint struct {
	Minute time.Time `json:"minute"`
	Inside int       `json:"inside"`
	Peak   int       `json:"peak"`
	Source string    `json:"source"`
}

// Report reads an event's history.
func (s *Service) Report(ctx context.Context, t tenants.Tenant, ev app.EventInfo) (Report, error) {
	rep := Report{EventID: ev.ID, Title: ev.Title, Venue: ev.VenueName, Timezone: ev.Timezone, StartsAt: ev.StartsAt,
		GeneratedAt: s.app.Now().UTC().Truncate(time.Second), Zones: []ReportZone{}}
	var rows []struct {
		Zone     string
		Capacity int
		Minute   time.Time
		Inside   int
		Peak     int
		Source   string
	}
	var zones []Zone
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) (err error) {
		if zones, err = zonesIn(tx, ev.ID); err != nil {
			return err
		}
		// The BRIN index on minute narrows the scan to the night's blocks.
		return tx.Raw(`SELECT z.name AS zone, m.capacity, m.minute, m.inside, m.peak, m.source FROM ops_occupancy_minutes m JOIN ops_zones z ON z.id = m.zone_id
			WHERE m.event_id = ? AND m.minute >= ? ORDER BY z.name, m.minute`, ev.ID, ev.StartsAt.Add(-24*time.Hour)).Scan(&rows).Error
	})
	if err != nil {
		return rep, err
	}
	for _, z := range zones {
		rz := ReportZone{Zone: z.Name, Capacity: z.Capacity, Minutes: []ReportPoint{}}
		for _, r := range rows {
			if r.Zone != z.Name {
				continue
			}
			rz.Minutes = append(rz.Minutes, ReportPoint{Minute: r.Minute, Inside: r.Inside, Peak: r.Peak, Source: r.Source})
			if r.Peak > rz.Peak || rz.PeakAt == nil {
				at := r.Minute
				rz.Peak, rz.PeakAt = r.Peak, &at
			}
			if r.Peak > r.Capacity {
				rz.OverCapacityMinutes++
			}
		}
		rep.Zones = append(rep.Zones, rz)
	}
	if rep.Alerts, err = s.Alerts(ctx, t, ev.ID, 500); err != nil {
		return rep, err
	}
	slices.Reverse(rep.Alerts) // a compliance record reads in time order
	return rep, nil
}

// WriteCSV writes one row per zone and minute.
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"zone", "minute_utc", "inside", "peak_in_minute", "capacity", "percent_of_capacity", "source", "zone_peak", "zone_peak_at_utc"})
	for _, z := range r.Zones {
		peakAt := ""
		if z.PeakAt != nil {
			peakAt = z.PeakAt.Format(time.RFC3339)
		}
		for _, p := range z.Minutes {
			_ = cw.Write([]string{z.Zone, p.Minute.Format(time.RFC3339), strconv.Itoa(p.Inside), strconv.Itoa(p.Peak), strconv.Itoa(z.Capacity),
				strconv.FormatFloat(float64(p.Peak)*100/float64(z.Capacity), 'f', 1, 64), p.Source, strconv.Itoa(z.Peak), peakAt})
		}
	}
	cw.Flush()
	return cw.Error()
}

// PDF renders the report: a summary per zone, a chart of occupancy over
// time against capacity, and the alerts raised.
func (r Report) PDF() ([]byte, error) {
	loc, err := app.Timezone(r.Timezone)
	if err != nil {
		loc = time.UTC
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle("Occupancy report: "+r.Title, true)
	pdf.SetAuthor("Marquee", true)
	pdf.SetCreationDate(r.GeneratedAt)
	pdf.AddPage()
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	pdf.SetFont("Helvetica", "B", 16)
	pdf.CellFormat(0, 9, tr("Occupancy compliance report"), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	pdf.CellFormat(0, 6, tr(fmt.Sprintf("%s - %s", r.Title, r.Venue)), "", 1, "L", false, 0, "")
	pdf.CellFormat(0, 6, tr(fmt.Sprintf("Show starts %s (%s). Generated %s UTC.", r.StartsAt.In(loc).Format("Mon 2 Jan 2006 15:04"), r.Timezone,
		r.GeneratedAt.Format("2006-01-02 15:04"))), "", 1, "L", false, 0, "")
	pdf.Ln(3)

	pdf.SetFont("Helvetica", "B", 10)
	pdf.SetFillColor(230, 230, 235)
	for i, h := range []string{"Zone", "Capacity", "Peak", "Peak at", "% of capacity", "Minutes over"} {
		pdf.CellFormat([]float64{50, 25, 25, 35, 30, 25}[i], 7, h, "1", 0, "C", true, 0, "")
	}
	pdf.Ln(-1)
	pdf.SetFont("Helvetica", "", 10)
	for _, z := range r.Zones {
		peakAt := "-"
		if z.PeakAt != nil {
			peakAt = z.PeakAt.In(loc).Format("15:04")
		}
		pct := float64(z.Peak) * 100 / float64(z.Capacity)
		if pct >= 100 {
			pdf.SetTextColor(180, 0, 0)
		}
		cells := []string{z.Zone, strconv.Itoa(z.Capacity), strconv.Itoa(z.Peak), peakAt, fmt.Sprintf("%.1f%%", pct), strconv.Itoa(z.OverCapacityMinutes)}
		for i, c := range cells {
			align := "R"
			if i == 0 {
				align = "L"
			}
			pdf.CellFormat([]float64{50, 25, 25, 35, 30, 25}[i], 7, tr(c), "1", 0, align, false, 0, "")
		}
		pdf.Ln(-1)
		pdf.SetTextColor(0, 0, 0)
	}
	pdf.Ln(4)
	r.chart(pdf, tr, loc)

	pdf.Ln(4)
	pdf.SetFont("Helvetica", "B", 12)
	pdf.CellFormat(0, 8, "Capacity alerts", "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	if len(r.Alerts) == 0 {
		pdf.CellFormat(0, 6, "None raised.", "", 1, "L", false, 0, "")
	}
	for _, a := range r.Alerts {
		pdf.CellFormat(0, 6, tr(fmt.Sprintf("%s  %s reached %d%% (%d of %d, %s)", a.RaisedAt.In(loc).Format("15:04:05"), a.Zone, a.Percent, a.Inside, a.Capacity, a.Source)),
			"", 1, "L", false, 0, "")
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var chartColors = [][3]int{{37, 99, 235}, {220, 38, 38}, {22, 163, 74}, {217, 119, 6}, {147, 51, 234}, {8, 145, 178}}

// chart draws each zone's occupancy as a share of its capacity over time,
// with the 100% line, so zones of different sizes read on one scale.
func (r Report) chart(pdf *fpdf.Fpdf, tr func(string) string, loc *time.Location) {
	var from, to time.Time
	for _, z := range r.Zones {
		for _, p := range z.Minutes {
			if from.IsZero() || p.Minute.Before(from) {
				from = p.Minute
			}
			if p.Minute.After(to) {
				to = p.Minute
			}
		}
	}
	pdf.SetFont("Helvetica", "B", 12)
	pdf.CellFormat(0, 8, "Occupancy over time (% of licensed capacity)", "", 1, "L", false, 0, "")
	if from.IsZero() {
		pdf.SetFont("Helvetica", "", 10)
		pdf.CellFormat(0, 6, "No readings recorded.", "", 1, "L", false, 0, "")
		return
	}
	if !to.After(from) {
		to = from.Add(time.Minute)
	}
	x0, y0, w, h := 25.0, pdf.GetY()+2, 165.0, 70.0
	const top = 120.0 // percent at the top of the chart
	y := func(pct float64) float64 { return y0 + h - min(pct, top)/top*h }
	x := func(t time.Time) float64 { return x0 + float64(t.Sub(from))/float64(to.Sub(from))*w }
	pdf.SetDrawColor(180, 180, 180)
	pdf.SetFont("Helvetica", "", 8)
	for _, pct := range []float64{0, 25, 50, 75, 100} {
		pdf.Line(x0, y(pct), x0+w, y(pct))
		pdf.Text(x0-10, y(pct)+1, fmt.Sprintf("%.0f%%", pct))
	}
	pdf.SetDrawColor(200, 0, 0)
	pdf.SetLineWidth(0.5)
	pdf.Line(x0, y(100), x0+w, y(100))
	pdf.SetLineWidth(0.2)
	for i := 0; i <= 4; i++ {
		at := from.Add(time.Duration(i) * to.Sub(from) / 4)
		pdf.Text(x(at)-4, y0+h+5, at.In(loc).Format("15:04"))
	}
	for i, z := range r.Zones {
		c := chartColors[i%len(chartColors)]
		pdf.SetDrawColor(c[0], c[1], c[2])
		pdf.SetLineWidth(0.6)
		for k := 1; k < len(z.Minutes); k++ {
			a, b := z.Minutes[k-1], z.Minutes[k]
			pdf.Line(x(a.Minute), y(float64(a.Peak)*100/float64(z.Capacity)), x(b.Minute), y(float64(b.Peak)*100/float64(z.Capacity)))
		}
		pdf.SetFillColor(c[0], c[1], c[2])
		pdf.Rect(x0+float64(i)*40, y0+h+8, 3, 3, "F")
		pdf.Text(x0+float64(i)*40+5, y0+h+10.5, tr(z.Zone))
	}
	pdf.SetLineWidth(0.2)
	pdf.SetDrawColor(0, 0, 0)
	pdf.SetY(y0 + h + 14)
}
